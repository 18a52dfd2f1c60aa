"""One operation through the gate, the policy and graphql-core, without strawberry's extensions.

strawberry runs an operation through its extensions: per request it makes each extension anew,
a runner, and for each of four stages a context manager that looks up and wraps every
extension's hook, around the gate's one hook and the policy's one: a quarter of the 0.48 ms of
CPU a query of one constant field took over HTTP went to ``strawberry.Schema.execute`` outside
graphql-core and those hooks.
:func:`run` calls the same steps in the same order — ``schema.gate.admit``, strawberry's check
of the operation's name and type (the first operation when none is named, as strawberry picks),
``schema.policy.decide``, graphql-core's ``execute`` with the schema's execution context,
``schema.policy.record``, ``schema.gate.finish`` — and answers what strawberry would: results of
the same types with the same data, errors and extensions, the same exceptions raised, the same
audit entries (``tests/schema/test_direct.py`` runs every case both ways and compares them).

Only ``CityGraphSchema`` (``schema.builder``) takes this path, and only for what it can run so:
a request's operation (with a ``RequestContext``, no operation extensions) on a schema without
strawberry directives or incremental delivery. Anything else, and a subgraph's schema with its
tracing, goes through strawberry's ``execute`` with the same two extensions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from graphql import (
    ExecutionResult as GraphQLExecutionResult,
    GraphQLError,
    execute,
)
from strawberry.execution import optimized_is_awaitable
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType
from strawberry.utils.operation import get_first_operation, get_operation_type

from resolvers.context import RequestContext
from schema.gate import admit, finish
from schema.limits import Limits
from schema.operation import summarize
from schema.policy import decide, record

if TYPE_CHECKING:
    from graphql import ASTValidationRule
    from strawberry import Schema


async def run(
    schema: Schema,
    limits: Limits,
    rules: tuple[type[ASTValidationRule], ...],
    query: str,
    variables: dict[str, Any] | None,
    context: RequestContext,
    root_value: Any,
    operation_name: str | None,
    allowed: Iterable[OperationType],
) -> ExecutionResult:
    """Run one operation as ``strawberry.Schema.execute`` would with the gate and the policy
    extension; raises what it raises (an operation that is missing or of a type not allowed), and
    ends the operation with any other exception as its one error, as it does."""
    gql = schema._schema
    try:
        try:
            admission = admit(gql, query, operation_name, variables, limits, rules)
        except GraphQLError as syntax:  # coded by the HTTP layer, as from strawberry
            return _refused(schema, [syntax])
        # Without a name, strawberry runs the first operation (graphql-core would refuse a
        # document of several); the gate's cost check and the summary pick the same one.
        name = operation_name
        if name is None:
            first = get_first_operation(admission.document)
            name = first.name.value if first is not None and first.name is not None else None
        try:
            operation_type = get_operation_type(admission.document, name)
        except RuntimeError as error:
            raise CannotGetOperationTypeError(name) from error
        if operation_type not in allowed:
            raise InvalidOperationTypeError(operation_type)
        if admission.invalid:
            refused = _refused(schema, admission.invalid)
            finish(refused)
            return refused
        if admission.too_complex is not None:  # nothing read: nothing to decide or audit
            result = ExecutionResult(data=None, errors=[admission.too_complex], extensions={})
            schema._process_errors(result.errors or [])
            finish(result)
            return result
        summary = summarize(gql, admission.document, name, variables)
        groups = await decide(context, summary)
        outcome = execute(
            gql,
            admission.document,
            root_value=root_value,
            variable_values=variables,
            operation_name=name,
            context_value=context,
            is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]  # its bool is the TypeGuard
            executor_class=schema.execution_context_class,
            operation_extensions=None,
        )
        if not isinstance(outcome, GraphQLExecutionResult):
            outcome = await outcome
        if outcome.errors:
            schema._process_errors(outcome.errors)
        result = ExecutionResult(data=outcome.data, errors=outcome.errors, extensions={})
        await record(context, summary, groups, result, query, admission.document)
        finish(result)
        return result
    except (CannotGetOperationTypeError, InvalidOperationTypeError):
        raise
    except Exception as exc:  # as strawberry's execute: the operation ends with this error
        return _refused(schema, [exc if isinstance(exc, GraphQLError) else GraphQLError(str(exc), original_error=exc)])


def _refused(schema: Schema, errors: list[GraphQLError]) -> PreExecutionError:
    """The result of an operation that ended before or instead of its execution, as strawberry
    returns it (its extensions' results: none of ours has any)."""
    schema._process_errors(errors)
    return PreExecutionError(data=None, errors=errors, extensions={})


__all__ = ["run"]
