"""``release_tracebacks``: an operation's errors let go of the frames they were raised through."""

from __future__ import annotations

from typing import TypeVar

from graphql import GraphQLError

from schema.errors import release_tracebacks

E = TypeVar("E", bound=Exception)


def _raised(error: E) -> E:
    try:
        raise error
    except Exception:  # raised, so that it carries a traceback
        return error


def test_the_whole_chain_is_released() -> None:
    root = _raised(OSError("backend gone"))
    wrapped = _raised(ValueError("read failed"))
    wrapped.__cause__ = root
    during = _raised(KeyError("while handling"))
    wrapped.__context__ = during
    during.__context__ = wrapped  # a loop in the chain must not hang
    located = GraphQLError("Connector unavailable.", original_error=wrapped)  # copies its traceback
    error = _raised(located)
    assert all(e.__traceback__ is not None for e in (error, wrapped, root, during))
    release_tracebacks([error])
    assert [e.__traceback__ for e in (error, wrapped, root, during)] == [None, None, None, None]
    # What the client reads is untouched.
    assert error.message == "Connector unavailable."
    assert error.original_error is wrapped and wrapped.__cause__ is root
