"""Operation limits enforced during validation: depth, aliases and cost (``QUERY_TOO_COMPLEX``).

Token count is bounded earlier, by the parser (``schema.gate``), and body size by the HTTP
middleware. Cost estimates the rows an operation can return: each field costs 1 times the number
of parent rows; a field with ``first`` (a variable's default counts) multiplies its children by
it, and a list without one (``records``, or ``nodes`` outside a paged connection) by
``DEFAULT_LIST_SIZE``, so ``first: 500`` pages nested inside each other are refused before any
connector is called.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from graphql import (
    ArgumentNode,
    DocumentNode,
    ExecutableDefinitionNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    VariableNode,
)

from schema.operation import effective_variables
from schema.per_document import PerDocument

DEFAULT_LIST_SIZE = 10
#: List fields without a ``first`` argument; under a paged connection they are the page itself.
LIST_FIELDS = frozenset({"nodes", "edges", "records", "licenses"})


@dataclass(frozen=True, slots=True)
class Limits:
    """The configured ceilings; a request over any of them is refused whole."""

    max_depth: int = 10
    max_aliases: int = 15
    max_cost: int = 50_000
    max_tokens: int = 2_000


@dataclass(slots=True)
class _Stats:
    depth: int = 0
    aliases: int = 0
    cost: int = 0


def _first(node: FieldNode, variables: Mapping[str, object]) -> int | None:
    for arg in node.arguments or ():
        if arg.name.value in _SIZE_ARGUMENTS:
            if isinstance(arg.value, IntValueNode):
                return int(arg.value.value)
            if isinstance(arg.value, VariableNode):
                return _size(variables.get(arg.value.name.value))
    return None


def _size(value: object) -> int | None:
    """A sizing variable's value as graphql-core's ``Int`` takes it: an ``int``, or a ``float`` with
    no fractional part (JSON ``500.0`` is 500); any other value sizes nothing, and its coercion
    fails before anything is read."""
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _measure(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, object],
    stats: _Stats,
    depth: int,
    rows: int,
    visiting: frozenset[str],
    paged: bool = False,
) -> None:
    """Walk a selection set; ``paged`` means the parent field already multiplied by its ``first``."""
    if selection_set is None:
        return
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.alias:
                stats.aliases += 1
            if selection.name.value == "__typename":
                continue
            stats.depth = max(stats.depth, depth + 1)  # introspection fields count for depth too
            if selection.name.value.startswith("__"):
                _measure(selection.selection_set, fragments, variables, stats, depth + 1, rows, visiting)
                continue
            stats.cost += rows
            if selection.selection_set is not None:
                first = _first(selection, variables)
                child_rows = rows * (first if first is not None else 1)
                if first is None and not paged and selection.name.value in LIST_FIELDS:
                    child_rows = rows * DEFAULT_LIST_SIZE
                _measure(
                    selection.selection_set,
                    fragments,
                    variables,
                    stats,
                    depth + 1,
                    child_rows,
                    visiting,
                    first is not None,
                )
        elif isinstance(selection, InlineFragmentNode):
            _measure(selection.selection_set, fragments, variables, stats, depth, rows, visiting, paged)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in visiting or name not in fragments:
                continue  # cycles and unknown fragments are reported by the standard rules
            _measure(fragments[name].selection_set, fragments, variables, stats, depth, rows, visiting | {name}, paged)


def _too_complex(what: str, value: int, ceiling: int, node: OperationDefinitionNode | None) -> GraphQLError:
    return GraphQLError(
        f"Query too complex: {what} {value} exceeds the limit of {ceiling}. "
        "Ask for fewer nested lists or smaller pages (first:).",
        node,
        extensions={"code": "QUERY_TOO_COMPLEX"},
    )


def limits_rule(limits: Limits) -> type[ValidationRule]:
    """A validation rule class for what the document alone decides: depth and aliases.

    It depends on nothing but the document, so validation results stay cacheable; the cost,
    which depends on variables (``first: $n``), is checked by ``cost_problem`` at execution.
    """

    class OperationLimits(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: object) -> None:
            fragments = {
                d.name.value: d for d in self.context.document.definitions if isinstance(d, FragmentDefinitionNode)
            }
            stats = _Stats()
            _measure(node.selection_set, fragments, {}, stats, 0, 1, frozenset())
            for what, value, ceiling in (
                ("depth", stats.depth, limits.max_depth),
                ("aliases", stats.aliases, limits.max_aliases),
            ):
                if value > ceiling:
                    self.report_error(_too_complex(what, value, ceiling, node))

    return OperationLimits


def cost_problem(
    limits: Limits,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, object] | None,
    schema: GraphQLSchema,
) -> GraphQLError | None:
    """The QUERY_TOO_COMPLEX error when the operation's estimated cost is over the limit.

    The estimate depends on the document and on the integer values of the variables its
    ``first``/``last``/``k`` arguments name, nothing else: it is computed once per (schema,
    document, operation, those values), not walked again on every request."""
    chosen = _COST_OPERATIONS.get(schema, document, operation_name, lambda: _operation(document, operation_name))
    if chosen is None:
        return None
    operation, reads = chosen
    given = effective_variables(operation, variables) if reads else {}
    values = tuple(_size(given.get(name)) for name in reads)
    cost = _COSTS.get(schema, document, (operation_name, values), lambda: _cost(document, operation, given))
    return _too_complex("estimated cost", cost, limits.max_cost, operation) if cost > limits.max_cost else None


def _operation(
    document: DocumentNode, operation_name: str | None
) -> tuple[OperationDefinitionNode, tuple[str, ...]] | None:
    """The operation ``operation_name`` names (the first when ``None``) and the variables whose
    values the cost estimate reads (those of ``first``, ``last`` and ``k`` arguments), sorted."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = next(
        (o for o in operations if operation_name is None or (o.name and o.name.value == operation_name)), None
    )
    if chosen is None:
        return None
    reads = {
        node.value.name.value
        for node in _arguments(document)
        if node.name.value in _SIZE_ARGUMENTS and isinstance(node.value, VariableNode)
    }
    return chosen, tuple(sorted(reads))


def _arguments(document: DocumentNode) -> Iterator[ArgumentNode]:
    """Every field argument in the document (all operations and fragments: a superset is safe)."""
    pending: list[SelectionSetNode] = [
        d.selection_set for d in document.definitions if isinstance(d, ExecutableDefinitionNode)
    ]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                yield from selection.arguments or ()
            inner = getattr(selection, "selection_set", None)  # fields and inline fragments
            if inner is not None:
                pending.append(inner)


def _cost(document: DocumentNode, operation: OperationDefinitionNode, variables: Mapping[str, object]) -> int:
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    stats = _Stats()
    _measure(operation.selection_set, fragments, variables, stats, 0, 1, frozenset())
    return stats.cost


#: The arguments whose values multiply the rows below a field (``_first``).
_SIZE_ARGUMENTS = frozenset({"first", "last", "k"})
#: Per (schema, document, operation name): the operation and the variables its estimate reads.
_COST_OPERATIONS: PerDocument[tuple[OperationDefinitionNode, tuple[str, ...]] | None] = PerDocument(1024)
#: Per (schema, document, operation name and those variables' sizes): the estimate. More entries
#: than documents: a client may page with several sizes. Both keep their documents alive, as every
#: ``PerDocument`` does, but never one parsed from a text too long for the parse cache.
_COSTS: PerDocument[int] = PerDocument(4096)


__all__ = ["DEFAULT_LIST_SIZE", "Limits", "cost_problem", "limits_rule"]
