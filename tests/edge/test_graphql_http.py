"""The GraphQL-over-HTTP front: the cached operation-type lookup and the log level."""

from __future__ import annotations

import pytest
import structlog
from graphql import OperationType
from structlog.testing import capture_logs

from edge import graphql_http
from edge.graphql_http import _NoOperation, _operation_type
from edge.logs import configure_logging
from schema.gate import CACHED_QUERY_CHARS

TWO_OPERATIONS = "query A { gatewayVersion } mutation B { anything }"


def test_cached_document_still_resolves_each_operation_name() -> None:
    graphql_http._cached_operations.cache_clear()
    assert _operation_type(TWO_OPERATIONS, "A", 2000) is OperationType.QUERY
    assert _operation_type(TWO_OPERATIONS, "B", 2000) is OperationType.MUTATION  # from the cache
    with pytest.raises(_NoOperation, match="no operation named 'C'"):
        _operation_type(TWO_OPERATIONS, "C", 2000)
    info = graphql_http._cached_operations.cache_info()
    assert (info.misses, info.hits) == (1, 2)


def test_syntax_errors_are_left_to_the_executor_and_long_documents_are_not_cached() -> None:
    graphql_http._cached_operations.cache_clear()
    assert _operation_type("{ unclosed", None, 2000) is None
    long = "query Long { gatewayVersion }" + " " * CACHED_QUERY_CHARS
    assert _operation_type(long, None, 2000) is OperationType.QUERY
    assert graphql_http._cached_operations.cache_info().currsize == 1  # only the short one


def test_token_limit_is_part_of_the_cache_key() -> None:
    graphql_http._cached_operations.cache_clear()
    assert _operation_type("{ gatewayVersion }", None, 2000) is OperationType.QUERY
    assert _operation_type("{ gatewayVersion }", None, 2) is None  # too many tokens: not parsed


@pytest.mark.parametrize(("level", "expected"), [("info", []), ("debug", ["decision"])])
def test_log_level_drops_lower_lines_before_they_are_formatted(level: str, expected: list[str]) -> None:
    try:
        configure_logging(level)
        with capture_logs() as lines:
            structlog.get_logger("citygraph").debug("decision", allow=True)
        assert [line["event"] for line in lines] == expected
    finally:
        configure_logging("info")
