"""Pure-ASGI middleware: request id, body size limit, authentication and purpose of use.

Each class passes non-HTTP scopes straight through and keeps no request state on ``self``.
What they establish goes into ``scope["state"]`` (Starlette's ``request.state``):
``request_id``, ``principal`` and ``purpose``.
"""

from __future__ import annotations

import os
import re

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge.identity import InvalidToken, TokenVerifier
from policies.principal import PUBLIC, Purpose

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_PURPOSE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# Quotes and backslashes are refused: the embedded Rego engine would see them still escaped.
_CASE_REF = re.compile(r'^[^\x00-\x1f\x7f"\\]{1,64}$')


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def send_error(
    send: Send, status: int, code: str, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    """A JSON error body in the GraphQL response shape, so clients parse one format."""
    body = orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestIdMiddleware:
    """Adopts a well-formed ``X-Request-Id`` or makes one, and echoes it on the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        # 32 random hex digits, as uuid4().hex gave, without building a UUID (a fifth of the cost).
        request_id = given if given and _SAFE_ID.match(given) else os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await self.app(scope, receive, send_with_id)


class _TooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    """Refuses bodies over ``max_bytes`` with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None and not length.isdigit():
            await send_error(send, 400, "BAD_REQUEST", "Content-Length must be a number of bytes.")
            return
        if length is not None and int(length) > self.max_bytes:
            await send_error(send, 413, "PAYLOAD_TOO_LARGE", f"Request body over {self.max_bytes} bytes.")
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await send_error(send, 413, "PAYLOAD_TOO_LARGE", f"Request body over {self.max_bytes} bytes.")


class AuthenticationMiddleware:
    """Verifies ``Authorization: Bearer`` into a Principal; no token means the public principal.

    A token that is present but invalid is refused with 401 (never downgraded to public), and
    malformed ``X-Purpose-Of-Use``/``X-Case-Ref`` headers with 400.
    """

    def __init__(self, app: ASGIApp, verifier: TokenVerifier) -> None:
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        authorization = _header(scope, b"authorization")
        if authorization is None:
            state["principal"] = PUBLIC
        else:
            scheme, _, token = authorization.partition(" ")
            try:
                if scheme.lower() != "bearer" or not token.strip():
                    raise InvalidToken("expected 'Authorization: Bearer <token>'")
                state["principal"] = self.verifier.verify(token.strip())
            except InvalidToken as exc:
                challenge = f'Bearer error="invalid_token", error_description="{exc}"'.encode()
                await send_error(
                    send,
                    401,
                    "UNAUTHENTICATED",
                    f"Invalid bearer token: {exc}.",
                    ((b"www-authenticate", challenge),),
                )
                return
        purpose, case_ref = _header(scope, b"x-purpose-of-use"), _header(scope, b"x-case-ref")
        if purpose is not None and not _PURPOSE.match(purpose):
            await send_error(
                send,
                400,
                "BAD_USER_INPUT",
                "X-Purpose-Of-Use must be a purpose code such as law_enforcement.",
            )
            return
        if case_ref is not None:
            try:
                case_ref = case_ref.encode("latin-1").decode("utf-8")
            except UnicodeDecodeError:
                case_ref = ""
            if not _CASE_REF.match(case_ref):
                await send_error(
                    send, 400, "BAD_USER_INPUT", 'X-Case-Ref must be 1-64 printable UTF-8 characters without " or \\.'
                )
                return
        state["purpose"] = Purpose(code=purpose, case_ref=case_ref)
        await self.app(scope, receive, send)


__all__ = ["AuthenticationMiddleware", "BodySizeLimitMiddleware", "RequestIdMiddleware", "send_error"]
