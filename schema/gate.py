"""The gate every operation passes before its policy decisions, as one strawberry extension.

In order: the parser's token limit, parsing (cached per query text), validation with the
operation limits (cached per parsed document), the cost limit, and at the end error codes
(``schema.errors``). These were six extensions, seven with introspection off — strawberry's
``MaxTokensLimiter``, ``AddValidationRules``, ``ParserCache`` and ``DisableIntrospection``, and
our validation cache, cost limit and ``ErrorCodes`` — doing the same work. strawberry makes
every extension anew per request and wraps each hook of each one in a context manager at each
of its four stages; the gate does all its work in one hook, so strawberry finds the document
parsed and validated and does neither again. One hook for their six took the dossier from
7.26 M to 6.98 M instructions a request (``bench/instructions.py``). The checks and their errors
are the same; validation and cost now run before strawberry's own check of the operation's name
and type, which refuses the same requests with the same errors either way.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

from graphql import DocumentNode, ExecutionResult, GraphQLError, ValidationRule, parse
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


def gate(limits: Limits, *, introspection: bool = True) -> type[SchemaExtension]:
    """The gate extension for a schema with ``limits``; ``introspection=False`` refuses
    introspection during validation (``__schema`` and ``__type``; ``__typename`` stays)."""
    rules: tuple[type[ValidationRule], ...] = (limits_rule(limits),)  # one class per schema: cacheable
    if not introspection:
        rules += (NoSchemaIntrospectionCustomRule,)

    class Gate(SchemaExtension):
        # One hook, not one per stage: strawberry wraps each hook of each extension in a context
        # manager per request. A document parsed and validated here is one strawberry neither
        # parses nor validates again. A syntax error raised here ends the operation as it did
        # from strawberry's ParserCache: strawberry returns it without a code, before this hook
        # resumes, and the HTTP layer gives it one (edge.graphql_http._format_errors).
        def on_operation(self) -> Iterator[None]:
            ec = self.execution_context
            ec.parse_options["max_tokens"] = limits.max_tokens
            ec.validation_rules = chosen = (*ec.validation_rules, *rules)
            if ec.query and ec.graphql_document is None:  # strawberry reports a missing or empty query
                ec.graphql_document = document = _parse(ec.query, limits.max_tokens)
                schema = ec.schema._schema
                ec.pre_execution_errors = errors = _VALIDATED.get(
                    schema, document, chosen, lambda: validate_document(schema, document, chosen)
                )
                if not errors:
                    problem = cost_problem(limits, document, ec.operation_name, ec.variables, schema)
                    if problem is not None:
                        # A result set before execution makes strawberry skip executing the operation.
                        ec.result = ExecutionResult(data=None, errors=[problem])
            yield
            result = ec.result
            if result is None or not result.errors:
                return
            executed = result.data is not None
            originals = result.errors
            result.errors = [normalise(e, executed) for e in originals]
            release_tracebacks(originals)

    return Gate


__all__ = ["CACHED_QUERY_CHARS", "gate"]
