"""GraphQL over HTTP (the GraphQL-over-HTTP spec) for the one schema.

- ``POST`` with ``Content-Type: application/json`` and a JSON object body; anything else is 415
  (which also blocks "simple" cross-site form posts, i.e. CSRF); a batch (JSON array) is 400.
- ``GET`` with ``?query=`` for queries only; a mutation over GET is 405 with ``Allow: POST``.
- ``Accept: application/graphql-response+json`` gets spec status codes (4xx when the request
  never executed); ``application/json`` (the default) always gets 200 for well-formed requests.
- ``Accept-Language: zh-CN`` turns error messages into Chinese; the English text stays in
  ``extensions.detail``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import orjson
from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse
from starlette.requests import Request
from starlette.responses import Response
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from resolvers.context import RequestContext, Runtime
from schema.errors import ZH_MESSAGES, normalise
from schema.gate import CACHED_QUERY_CHARS

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"


def _error_response(status: int, code: str, message: str, media: str = JSON, **headers: str) -> Response:
    body = orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})
    return Response(body, status_code=status, media_type=media, headers=headers)


def negotiate(accept: str | None) -> str | None:
    """The response media type for an Accept header, or None when nothing acceptable."""
    if not accept:
        return JSON
    types = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    if GRAPHQL_RESPONSE in types:
        return GRAPHQL_RESPONSE
    if JSON in types or "*/*" in types or "application/*" in types:
        return JSON
    return None


def wants_chinese(accept_language: str | None) -> bool:
    """True when the client's first language preference is Chinese."""
    return bool(accept_language) and accept_language.strip().lower().startswith("zh")  # type: ignore[union-attr]


def _params_from_get(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = {"query": request.query_params.get("query")}
    params["operationName"] = request.query_params.get("operationName")
    raw = request.query_params.get("variables")
    if raw:
        try:
            params["variables"] = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ValueError("variables must be a JSON object") from exc
    return params


class _NoOperation(ValueError):
    """The document parses but has no operation to run (or none with the requested name)."""


def _parse_operations(query: str, max_tokens: int) -> tuple[tuple[str | None, OperationType], ...] | None:
    """The (name, type) of each operation in ``query``; None when it does not parse."""
    try:
        document = parse(query, max_tokens=max_tokens)
    except GraphQLError:
        return None  # the executor reports the syntax error with its code
    return tuple(
        (d.name.value if d.name else None, d.operation)
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
    )


# Clients send the same few documents again and again, and parsing one costs more than a cached
# policy decision (the executor's own parse is cached the same way, by schema.gate).
_cached_operations = functools.lru_cache(maxsize=512)(_parse_operations)


def _operation_type(query: str, operation_name: str | None, max_tokens: int) -> OperationType | None:
    """The type of the operation that would run; None when the document does not parse."""
    if len(query) <= CACHED_QUERY_CHARS:
        operations = _cached_operations(query, max_tokens)
    else:
        operations = _parse_operations(query, max_tokens)
    if operations is None:
        return None
    for name, operation in operations:
        if operation_name is None or name == operation_name:
            return operation
    if operation_name is not None:
        raise _NoOperation(f"The document has no operation named {operation_name!r}.")
    raise _NoOperation("The document contains no operation to execute.")


def _format_errors(errors: list[GraphQLError], chinese: bool) -> list[dict[str, Any]]:
    out = []
    for error in errors:
        if "code" not in (error.extensions or {}):
            # Raised outside the extensions' reach (e.g. inside validation): normalise here too.
            error = normalise(error, executed=error.path is not None)
        formatted = error.formatted
        extensions = dict(formatted.get("extensions") or {})
        code = extensions.get("code")
        if chinese and isinstance(code, str) and code in ZH_MESSAGES:
            extensions["detail"] = formatted["message"]
            formatted = {**formatted, "message": ZH_MESSAGES[code]}
        formatted["extensions"] = extensions
        out.append(dict(formatted))
    return out


async def execute_http(request: Request, runtime: Runtime, schema: Any, max_tokens: int) -> Response:
    """Handle one GraphQL-over-HTTP request (see the module docstring)."""
    media = negotiate(request.headers.get("accept"))
    if media is None:
        return _error_response(406, "NOT_ACCEPTABLE", f"Accept {JSON} or {GRAPHQL_RESPONSE}.")
    if request.method == "POST":
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != JSON:
            return _error_response(415, "UNSUPPORTED_MEDIA_TYPE", f"POST bodies must be {JSON}.", media)
        try:
            params = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _error_response(400, "BAD_REQUEST", "The request body is not valid JSON.", media)
    else:
        try:
            params = _params_from_get(request)
        except ValueError as exc:
            return _error_response(400, "BAD_REQUEST", str(exc), media)
    if not isinstance(params, Mapping):
        return _error_response(
            400, "BAD_REQUEST", "The body must be one JSON object (batching is not supported).", media
        )
    query, variables, operation_name = (
        params.get("query"),
        params.get("variables"),
        params.get("operationName"),
    )
    if not isinstance(query, str) or not query.strip():
        return _error_response(400, "BAD_REQUEST", "A 'query' string is required.", media)
    if variables is not None and not isinstance(variables, Mapping):
        return _error_response(400, "BAD_REQUEST", "'variables' must be a JSON object.", media)
    if operation_name is not None and not isinstance(operation_name, str):
        return _error_response(400, "BAD_REQUEST", "'operationName' must be a string.", media)
    try:
        op_type = _operation_type(query, operation_name, max_tokens)
    except _NoOperation as exc:
        return _error_response(400, "BAD_REQUEST", str(exc), media)
    if request.method == "GET" and op_type not in (None, OperationType.QUERY):
        return _error_response(
            405, "METHOD_NOT_ALLOWED", "Only queries may be sent with GET; use POST.", media, allow="POST"
        )
    if op_type is OperationType.SUBSCRIPTION:
        return _error_response(400, "BAD_REQUEST", "Subscriptions are not served over this endpoint.", media)
    state = request.state
    ctx = RequestContext(
        runtime=runtime,
        principal=state.principal,
        purpose=state.purpose,
        request_id=state.request_id,
        language="zh" if wants_chinese(request.headers.get("accept-language")) else "en",
    )
    try:
        result = await schema.execute(
            query,
            variable_values=dict(variables) if variables else None,
            context_value=ctx,
            operation_name=operation_name,
        )
    except (CannotGetOperationTypeError, InvalidOperationTypeError) as exc:
        return _error_response(400, "BAD_REQUEST", f"The operation cannot be executed here: {exc}", media)
    finally:
        ctx.close()
    body: dict[str, Any] = {}
    if result.errors:
        body["errors"] = _format_errors(result.errors, ctx.language == "zh")
    # Execution errors carry a path (or withhold data after the fact, like AUDIT_UNAVAILABLE);
    # errors of a request that never executed (parse, validation, limits, variables) do not.
    never_executed = result.data is None and all(
        e.path is None and (e.extensions or {}).get("code") != "AUDIT_UNAVAILABLE" for e in result.errors or []
    )
    body["data"] = result.data
    if result.extensions:
        body["extensions"] = result.extensions  # e.g. ftv1 traces for a federation router
    if never_executed and media == GRAPHQL_RESPONSE and result.errors:
        del body["data"]  # the request failed before execution: spec says no data entry, 4xx
        status = 400
    else:
        status = 200
    return Response(orjson.dumps(body), status_code=status, media_type=media)


__all__ = ["GRAPHQL_RESPONSE", "execute_http", "negotiate", "wants_chinese"]
