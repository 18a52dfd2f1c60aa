"""One operation through the gate, the policy and graphql-core, without strawberry's extensions.

strawberry runs an operation through its extensions: per request it makes each extension anew,
a runner, and for each of four stages a context manager that looks up and wraps every
extension's hook, around the gate's one hook and the policy's one. That machinery cost more than
the work it wrapped on small operations: a query of one constant field took 0.48 ms of CPU over
HTTP, a quarter of it in ``strawberry.Schema.execute`` outside graphql-core and our hooks.
:func:`run` calls the same steps in the same order — ``schema.gate.admit``, strawberry's check
of the operation's name and type, ``schema.policy.decide``, graphql-core's ``execute`` with the
schema's execution context, ``schema.policy.record``, ``schema.gate.finish`` — and answers what
strawberry would: the same results, errors and exceptions (the test suite runs both ways,
``tests/schema/test_direct.py``).

Only ``CityGraphSchema`` (``schema.builder``) takes this path, for operations it can run exactly
so; anything else (a subgraph's schema with its tracing, no request context, operation
extensions, a missing query) goes through strawberry's ``execute`` with the same two extensions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from graphql import ExecutionResult as GraphQLExecutionResult, GraphQLError, execute
from strawberry.execution import optimized_is_awaitable
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.execution import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.utils.operation import get_operation_type

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
    extension; raises what it raises (an operation that is missing or of a type not allowed)."""
    gql = schema._schema
    try:
        admission = admit(gql, query, operation_name, variables, limits, rules)
    except GraphQLError as syntax:
        return _result(None, [syntax])  # coded by the HTTP layer, as from strawberry
    try:
        operation_type = get_operation_type(admission.document, operation_name)
    except RuntimeError as error:
        raise CannotGetOperationTypeError(operation_name) from error
    if operation_type not in allowed:
        raise InvalidOperationTypeError(operation_type)
    if admission.errors:
        refused = _result(None, admission.errors)
        finish(refused)
        return refused
    try:
        summary = summarize(gql, admission.document, operation_name, variables)
        groups = await decide(context, summary)
        outcome = execute(
            gql,
            admission.document,
            root_value=root_value,
            variable_values=variables,
            operation_name=operation_name,
            context_value=context,
            is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]  # a bool, as strawberry passes it
            executor_class=schema.execution_context_class,
            operation_extensions=None,
        )
        if not isinstance(outcome, GraphQLExecutionResult):
            outcome = await outcome
        result = _result(outcome.data, outcome.errors)
        await record(context, summary, groups, result, query, admission.document)
    except Exception as exc:  # as strawberry's execute: the operation ends with this error
        failure = exc if isinstance(exc, GraphQLError) else GraphQLError(str(exc), original_error=exc)
        return _result(None, [failure])
    finish(result)
    return result


def _result(data: dict[str, Any] | None, errors: list[GraphQLError] | None) -> ExecutionResult:
    # strawberry's results carry the extensions' results, none of ours has any: an empty dict.
    return ExecutionResult(data=data, errors=errors, extensions={})


__all__ = ["run"]
