"""Every error leaves with a stable ``extensions.code`` and a message that leaks nothing.

Codes: GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, BAD_USER_INPUT, QUERY_TOO_COMPLEX,
FORBIDDEN, PURPOSE_REQUIRED, CASE_REF_REQUIRED, POLICY_UNAVAILABLE, CONNECTOR_UNAVAILABLE,
CAMERA_OFFLINE, AUDIT_UNAVAILABLE, UNAUTHENTICATED, INTERNAL_SERVER_ERROR. Validation messages
lose graphql-core's "Did you mean ...?" hints (they disclose schema that introspection may hide);
unexpected exceptions become "Unexpected error." with an error id that the server log carries
next to the stack trace.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

import structlog
from graphql import GraphQLError, GraphQLSyntaxError

log = structlog.get_logger(__name__)

_SUGGESTION = re.compile(r"\s*Did you mean .*\?$")
_TOKENS = "tokens"

#: zh-CN messages for clients that send ``Accept-Language: zh-CN``.
ZH_MESSAGES = {
    "GRAPHQL_PARSE_FAILED": "查询语法错误。",
    "GRAPHQL_VALIDATION_FAILED": "查询不符合模式定义。",
    "BAD_USER_INPUT": "输入参数有误。",
    "QUERY_TOO_COMPLEX": "查询过于复杂（深度、别名或规模超出限制）。",
    "FORBIDDEN": "无权读取该字段。",
    "PURPOSE_REQUIRED": "需要声明使用目的（X-Purpose-Of-Use 请求头）。",
    "CASE_REF_REQUIRED": "需要提供案件编号（X-Case-Ref 请求头）。",
    "POLICY_UNAVAILABLE": "策略引擎无法作出决定，敏感数据未返回。",
    "CONNECTOR_UNAVAILABLE": "该字段所属的部门系统未响应。",
    "CAMERA_OFFLINE": "该摄像机当前离线或故障，无法提供实时流。",
    "AUDIT_UNAVAILABLE": "审计日志无法记录本次读取，数据未返回。",
    "INTERNAL_SERVER_ERROR": "服务器内部错误。",
    "UNAUTHENTICATED": "身份令牌无效或已过期。",
}


def _code_of(error: GraphQLError, executed: bool) -> str:
    code = (error.extensions or {}).get("code")
    if isinstance(code, str):
        return code
    original = error.original_error
    if isinstance(original, GraphQLError):
        inner = (original.extensions or {}).get("code")
        if isinstance(inner, str):
            return inner
    if isinstance(error, GraphQLSyntaxError):
        return "QUERY_TOO_COMPLEX" if _TOKENS in error.message else "GRAPHQL_PARSE_FAILED"
    if original is not None and not isinstance(original, GraphQLError):
        return "INTERNAL_SERVER_ERROR"
    if error.message.startswith("Variable '$"):
        return "BAD_USER_INPUT"
    return "INTERNAL_SERVER_ERROR" if executed else "GRAPHQL_VALIDATION_FAILED"


def normalise(error: GraphQLError, executed: bool) -> GraphQLError:
    """A copy of ``error`` that is safe to send, with its code in ``extensions``."""
    code = _code_of(error, executed)
    message = _SUGGESTION.sub("", error.message)
    extensions = dict(error.extensions or {})
    extensions["code"] = code
    if code == "INTERNAL_SERVER_ERROR":
        error_id = uuid.uuid4().hex
        log.error("unexpected error", error_id=error_id, path=error.path, exc_info=error.original_error)
        message, extensions = "Unexpected error.", {"code": code, "errorId": error_id}
    elif code == "GRAPHQL_VALIDATION_FAILED" and message != error.message:
        message = message.rstrip()
    return GraphQLError(message, nodes=error.nodes, path=error.path, extensions=extensions)


def release_tracebacks(errors: Iterable[BaseException]) -> None:
    """Drop the tracebacks of ``errors`` and of the exceptions they wrap, cause or follow.

    A field error's traceback holds graphql-core's frames, whose locals hold the executor (which
    keeps the error among its collected errors) and the parent record (which holds a denied
    field's error as its value): cycles that left every response with an error, and everything
    its request held, to the cyclic collector. Once the operation has ended and unexpected errors
    have been logged (``normalise``), nothing reads them: the client gets messages and paths.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = list(errors)
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        error.__traceback__ = None
        pending.extend((error.__cause__, error.__context__, getattr(error, "original_error", None)))


__all__ = ["ZH_MESSAGES", "normalise", "release_tracebacks"]
