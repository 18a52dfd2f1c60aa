"""Operation limits enforced during validation: depth, aliases and cost (``QUERY_TOO_COMPLEX``).

Token count is bounded earlier, by the parser (``schema.gate``), and body size by the HTTP
middleware. Cost estimates the rows an operation can return: each field costs 1 times the number
of parent rows; a field with ``first`` (a variable's default counts) multiplies its children by
it, and a list without one (``records``, or ``nodes`` outside a paged connection) by
``DEFAULT_LIST_SIZE``, so ``first: 500`` pages nested inside each other are refused before any
connector is called.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    VariableNode,
)

from schema.operation import effective_variables

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
        if arg.name.value in ("first", "last", "k"):
            if isinstance(arg.value, IntValueNode):
                return int(arg.value.value)
            if isinstance(arg.value, VariableNode):
                value = variables.get(arg.value.name.value)
                return value if isinstance(value, int) else None
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
    limits: Limits, document: DocumentNode, operation_name: str | None, variables: Mapping[str, object] | None
) -> GraphQLError | None:
    """The QUERY_TOO_COMPLEX error when the operation's estimated cost is over the limit."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = next(
        (o for o in operations if operation_name is None or (o.name and o.name.value == operation_name)), None
    )
    if chosen is None:
        return None
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    stats = _Stats()
    _measure(chosen.selection_set, fragments, effective_variables(chosen, variables), stats, 0, 1, frozenset())
    return _too_complex("estimated cost", stats.cost, limits.max_cost, chosen) if stats.cost > limits.max_cost else None


__all__ = ["DEFAULT_LIST_SIZE", "Limits", "cost_problem", "limits_rule"]
