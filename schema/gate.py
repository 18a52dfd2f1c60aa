"""The gate every operation passes before its policy decisions: :func:`admit` and :func:`finish`,
which ``schema.direct`` calls, and the same two as one strawberry extension (:func:`gate`).

In order: the parser's token limit, parsing (cached per query text), validation with the
operation limits (cached per parsed document), the cost limit, and at the end error codes
(``schema.errors``). These were six extensions, seven with introspection off — strawberry's
``MaxTokensLimiter``, ``AddValidationRules``, ``ParserCache`` and ``DisableIntrospection``, and
our validation cache, cost limit and ``ErrorCodes`` — doing the same work. strawberry makes
every extension anew per request and wraps each hook of each one in a context manager at each
of its four stages; the gate extension does all its work in one hook, so strawberry finds the
document parsed and validated and does neither again (``schema.direct`` now does without the
extensions altogether). One hook for their six took the dossier from
7.26 M to 6.98 M instructions a request (``bench/instructions.py``). The checks and their errors
are the same; validation and cost now run before strawberry's own check of the operation's name
and type, which refuses the same requests with the same errors either way.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from graphql import (
    ASTValidationRule,
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    parse,
    specified_rules,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from schema.errors import normalise, release_tracebacks
from schema.limits import Limits, cost_problem, limits_rule
from schema.per_document import CACHED_QUERY_CHARS, PerDocument

#: Validation results of recent documents, by the parsed document's identity (``PerDocument``).
_VALIDATED: PerDocument[list[GraphQLError]] = PerDocument(256)

# Texts over ``CACHED_QUERY_CHARS`` (``schema.per_document``, which keeps nothing per document for
# them either) are parsed on every request, so the two parse caches (this one and the HTTP layer's)
# hold at most about 15 million characters of query text, and their parsed documents, however large
# the string literals clients send: the request body may be up to a megabyte. Real queries are far
# shorter.


def _parse(query: str, max_tokens: int) -> DocumentNode:
    """The parsed document; one per query text (and token limit) for texts up to
    ``CACHED_QUERY_CHARS``. A syntax error is raised, never kept.

    Every schema shares the cache, as they shared strawberry's ``ParserCache``; the document's
    identity then keys the validation and plan caches."""
    if len(query) <= CACHED_QUERY_CHARS:
        return _cached_parse(query, max_tokens)
    return parse(query, max_tokens=max_tokens)


@functools.lru_cache(maxsize=256)
def _cached_parse(query: str, max_tokens: int) -> DocumentNode:
    return parse(query, max_tokens=max_tokens)


@dataclass(frozen=True, slots=True)
class Admission:
    """A parsed document and what stops it before execution, if anything: its validation errors,
    or else the cost limit's error (normalised later, with the rest, by :func:`finish`)."""

    document: DocumentNode
    invalid: list[GraphQLError]
    too_complex: GraphQLError | None = None


def rules_for(limits: Limits, *, introspection: bool = True) -> tuple[type[ASTValidationRule], ...]:
    """The validation rules: the specification's and the operation limits for ``limits``;
    ``introspection=False`` refuses introspection (``__schema`` and ``__type``; ``__typename``
    stays). strawberry adds its own two to any rules it validates with (``validate_document``)."""
    rules: tuple[type[ASTValidationRule], ...] = (*specified_rules, limits_rule(limits))  # one class per schema
    if not introspection:
        rules += (NoSchemaIntrospectionCustomRule,)
    return rules


def admit(
    schema: GraphQLSchema,
    query: str,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    limits: Limits,
    rules: tuple[type[ASTValidationRule], ...],
) -> Admission:
    """Parse (cached), validate with ``rules`` (cached per document) and check the cost limit.
    A syntax error is raised."""
    document = _parse(query, limits.max_tokens)
    invalid = _VALIDATED.get(schema, document, rules, lambda: validate_document(schema, document, rules))
    if invalid:
        return Admission(document, invalid)
    return Admission(document, invalid, cost_problem(limits, document, operation_name, variables, schema))


class Result(Protocol):
    """An operation's result as graphql-core and strawberry both hold it."""

    data: dict[str, Any] | None
    errors: list[GraphQLError] | None


def finish(result: Result) -> None:
    """Give every error of ``result`` its code (``schema.errors``), in place."""
    if not result.errors:
        return
    originals = result.errors
    result.errors = [normalise(e, result.data is not None) for e in originals]
    release_tracebacks(originals)


class GateExtension(SchemaExtension):
    """The type of :func:`gate`'s extensions: ``rules`` are the ones it validates with."""

    rules: tuple[type[ASTValidationRule], ...] = ()


def gate(limits: Limits, *, introspection: bool = True) -> type[GateExtension]:
    """The gate as a strawberry extension, for schemas that run operations through strawberry's
    extensions (a subgraph's); ``CityGraphSchema`` calls :func:`admit` and :func:`finish` itself."""
    chosen = rules_for(limits, introspection=introspection)

    class Gate(GateExtension):
        rules = chosen

        # One hook, not one per stage: strawberry wraps each hook of each extension in a context
        # manager per request. A document parsed and validated here is one strawberry neither
        # parses nor validates again. A syntax error raised here ends the operation as it did
        # from strawberry's ParserCache: strawberry returns it without a code, before this hook
        # resumes, and the HTTP layer gives it one (edge.graphql_http._format_errors).
        def on_operation(self) -> Iterator[None]:
            ec = self.execution_context
            ec.parse_options["max_tokens"] = limits.max_tokens
            ec.validation_rules = chosen
            if ec.query and ec.graphql_document is None:  # strawberry reports a missing or empty query
                admission = admit(ec.schema._schema, ec.query, ec.operation_name, ec.variables, limits, chosen)
                ec.graphql_document = admission.document
                ec.pre_execution_errors = admission.invalid
                if admission.too_complex is not None:
                    # A result set before execution makes strawberry skip executing the operation.
                    ec.result = ExecutionResult(data=None, errors=[admission.too_complex])
            yield
            if ec.result is not None:
                finish(ec.result)

    return Gate


__all__ = ["CACHED_QUERY_CHARS", "Admission", "GateExtension", "Result", "admit", "finish", "gate", "rules_for"]
