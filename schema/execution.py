"""Compiled list completion: lists of plain records completed without graphql-core's per-field machinery.

graphql-core completes every field of every list item through ``execute_field`` ->
``build_resolve_info`` -> the resolver -> ``complete_value``, about 3.5 µs a field
(``research-notes/compiled-execution.md``). For an *eligible* list this context builds a plan
once per list field (the item type's collected sub-fields; shared across requests for the same
parsed document when no variable can change its selections: no ``@skip``, ``@include``,
``@defer``, ``@stream`` or fragment arguments) and completes each item with a
function generated for the plan's shape (``schema.leaves.filler``): attribute reads for fields
that use strawberry's basic resolver, the leaf type's own coercion called directly for values of
plain types (a ``str`` of a String or ID and a ``bool`` of a Boolean copied as they are, which is
what coercion returns), then graphql-core's ``execute_field`` for the fields that need it (object
links, arguments). Where the filler cannot settle a value it stops, and an interpreted loop
completes the rest of the item with graphql-core's rules. Results are identical to graphql-core's:

- a list is eligible when it is a real ``list``/``tuple`` of a concrete object type without
  ``is_type_of``, no middleware is installed, and nothing is deferred or streamed;
- any surprise in an item — ``None`` in a non-null field, a missing attribute, an awaitable, an
  exception value in a non-null field, a serialiser error in a non-null field — hands that one
  item back to graphql-core's ``complete_list_item_value``, which produces the errors, paths and
  null propagation itself (the item's attributes are then read twice; records are plain data);
- an exception *value* in a nullable leaf (a field the policy denied) is reported with
  graphql-core's own ``handle_field_error`` at the same path, so it stays on the fast path.

A link field declared with a batch resolver (``schema.directives.resolved(batch=...)``) and
selected without arguments is resolved once for all the items that completed on the fast path,
not once per item: one call returns every item's value, and the values are completed together
(a nullable object field's values as one more compiled collection, a list field's per item). No
coroutine, task or loader future per item; the loaders still batch and cache per request.
A failed value becomes that item's field error, with graphql-core's null propagation. A batch
resolver runs in a task, one pass of the event loop after its list completed, as graphql-core's
per-item resolvers do, so loads of different paths at one level still meet in one backend call.
One difference in errors is possible: when a non-null field nulls an item while a sibling's own
errors are still in flight, graphql-core keeps the errors recorded before the nulling and drops
those after, and which come first depends on scheduling, in either executor.

``FALLBACKS`` counts items and lists that took the generic path, by reason, so an innocent-looking
change that removes the speed-up shows in ``/metrics`` and in the tests.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from types import CoroutineType, GeneratorType, GetSetDescriptorType
from typing import Any

import structlog
from graphql import (
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    OperationDefinitionNode,
    SelectionSetNode,
    is_leaf_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.execution.executor import to_nodes
from graphql.pyutils import Path, gather_with_cancel
from prometheus_client import Counter

from schema.acyclic import AcyclicExecutionContext
from schema.directives import BATCH, BatchResolver
from schema.leaves import MISSING, NO_ATTRIBUTES, Filler, Slot, coercions, filler, interpreted, not_plain, settle
from schema.per_document import PerDocument

log = structlog.get_logger(__name__)
FALLBACKS = Counter(
    "citygraph_compiled_fallbacks", "List completions that took graphql-core's generic path", ["reason"]
)
_INCLUDE_SKIP = frozenset({"include", "skip"})

# A plan step's kind: 0 leaf attribute, 1 __typename, 2 generic execute_field, 3 batch resolver.
_LEAF, _TYPENAME, _GENERIC, _BATCH = 0, 1, 2, 3

PathOf = Callable[[int], Path]


@dataclass(frozen=True, slots=True)
class _Step:
    key: str
    kind: int
    python_name: str | None
    leaf: GraphQLLeafType | None
    nullable: bool
    field_type: GraphQLOutputType
    details: FieldDetailsList
    field_def: GraphQLField | None = None  # batch steps
    batch: BatchResolver | None = None


@dataclass(slots=True)
class _Plan:
    """How to complete items of one object type for one selection: the steps in response order,
    their slots for the generated filler (``schema.leaves.filler``), and the steps run after it."""

    type_name: str
    steps: tuple[_Step, ...]
    slots: tuple[Slot, ...]
    generic: tuple[_Step, ...]
    batched: tuple[_Step, ...]
    fill: Filler = interpreted

    @classmethod
    def of(cls, steps: list[_Step], type_name: str) -> _Plan:
        return cls(
            type_name,
            tuple(steps),
            tuple(_slot(step, type_name) for step in steps),
            tuple(s for s in steps if s.kind == _GENERIC),
            tuple(s for s in steps if s.kind == _BATCH),
        )

    def filler(self) -> Filler:
        """The filler for the plan's items. Until its shape is compiled it is asked for at every
        use: the second use compiles it, within the compile budget."""
        if self.fill is interpreted:
            self.fill = filler(self.slots)
        return self.fill


def _slot(step: _Step, type_name: str) -> Slot:
    if step.kind == _LEAF:
        return (step.key, step.python_name, step.leaf, step.nullable)
    return (step.key, None, type_name if step.kind == _TYPENAME else None, step.nullable)


#: A list's items to complete on the fast path: their plan, object type and slot type.
_Items = tuple[_Plan, GraphQLObjectType, GraphQLOutputType]


def _items_of(path: Path) -> PathOf:
    """The paths of a list's items at ``path``."""
    return lambda index: path.add_key(index, None)


def _items_at(path_at: PathOf, position: int) -> PathOf:
    """The paths of the items of a list at ``path_at(position)``, made when asked for."""
    return lambda index: path_at(position).add_key(index, None)


#: Item classes known to pass ``_record_class``, shared by every list (a set per list cost more
#: than it saved on lists of a few items); bounded, as resolvers may return any class.
_RECORDS: set[type] = set()
_MAX_RECORD_CLASSES = 256


def _known_record(cls: type) -> bool:
    """Whether ``cls`` passes ``_record_class``, remembered in ``_RECORDS`` while it has room."""
    if cls in _RECORDS:
        return True
    if len(_RECORDS) < _MAX_RECORD_CLASSES and _record_class(cls):
        _RECORDS.add(cls)
        return True
    return False


@functools.lru_cache(maxsize=256)
def _record_class(cls: type) -> bool:
    """True when no instance of exactly ``cls`` is None, an exception or awaitable by its class —
    the checks graphql-core makes of every list item, made once per class instead — and an
    instance's attributes are its ``__dict__``'s entries wherever it has one (the filler reads
    them there: ``schema.leaves.NO_ATTRIBUTES``).

    graphql-core's ``is_awaitable`` asks ``hasattr(item, "__await__")``: a class that answers
    attribute reads itself (``__getattr__``, ``__getattribute__``) is checked per item, and so is
    an instance without a ``__dict__``; the caller still looks for ``__await__`` in each
    instance's ``__dict__`` (a row with such a key would be one). So is a class with a data
    descriptor (a property, a slot), which ``getattr`` prefers to the ``__dict__``. A class is
    checked once (``_known_record``): one changed after its first list is not checked again.
    """
    if issubclass(cls, BaseException | CoroutineType | GeneratorType | Awaitable) or cls is type(None):
        return False
    if not cls.__dictoffset__:  # no instance __dict__ to look in
        return False
    # isinstance() believes a __class__ an object claims; only classes that claim nothing qualify,
    # and whose instances' __dict__ is the real one (the caller looks in it).
    hooks = ("__class__", "__getattr__", "__getattribute__")
    for base in cls.__mro__[:-1]:
        own = vars(base)
        if any(hook in own for hook in hooks):
            return False
        if "__dict__" in own and type(own["__dict__"]) is not GetSetDescriptorType:
            return False
        for name, value in own.items():
            kind = type(value)
            if name not in _OWN_DESCRIPTORS and (hasattr(kind, "__set__") or hasattr(kind, "__delete__")):
                return False
    return True


#: The data descriptors every class with instance dicts has, which name no attribute of a record.
_OWN_DESCRIPTORS = frozenset({"__dict__", "__weakref__"})


#: Plans shared across requests, by (schema, operation node, object type and field nodes): the
#: operation's document holds the nodes, and an entry holds the schema and the operation, so no id
#: in a key is reused while the entry lives (``PerDocument``). And per operation node, whether no
#: variable can change its selections (``_no_conditions``).
_SHARED: PerDocument[_Plan | None] = PerDocument(1024)
_UNCONDITIONAL: PerDocument[bool] = PerDocument(1024)
_CONDITIONS = frozenset({"include", "skip", "defer", "stream"})


def _no_conditions(operation: OperationDefinitionNode, fragments: Iterable[FragmentDefinitionNode]) -> bool:
    """True when no selection in the operation or its fragments has a directive that variables
    (or the executor) can turn on or off, and no fragment spread has arguments."""
    pending: list[SelectionSetNode] = [operation.selection_set, *(f.selection_set for f in fragments)]
    while pending:
        for selection in pending.pop().selections:
            if any(d.name.value in _CONDITIONS for d in selection.directives or ()):
                return False
            if getattr(selection, "arguments", None) and isinstance(selection, FragmentSpreadNode):
                return False
            inner = getattr(selection, "selection_set", None)
            if inner is not None:
                pending.append(inner)
    return True


class _Bail(Exception):
    """This item must be completed by graphql-core itself."""


def _fallback(reason: str) -> None:
    FALLBACKS.labels(reason=reason).inc()
    log.debug("compiled completion fell back", reason=reason)


class CompiledExecutionContext(AcyclicExecutionContext):
    """graphql-core's execution context with compiled completion of eligible lists."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plans: dict[tuple[int, int], tuple[FieldDetailsList, _Plan | None]] = {}

    def complete_list_value(
        self,
        return_type: GraphQLList[GraphQLOutputType],
        field_details_list: FieldDetailsList,
        info: Any,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        found = self._items_plan(return_type, field_details_list, path) if isinstance(result, list | tuple) else None
        if found is None:
            return super().complete_list_value(return_type, field_details_list, info, path, result, position_context)
        plan, object_type, item_type = found
        return self._complete_items(
            plan, object_type, item_type, field_details_list, info, _items_of(path), result, position_context,
        )  # fmt: skip

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        info: Any,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        """A root field's object whose selection is leaves and batch links (an enterprise's
        dossier), completed by its plan as a list's items are: leaves by the filler, links by
        their batch resolvers (``fn(context, [object])``). A failure propagates to the caller,
        which handles it as it handles graphql-core's (the object is null, or the error goes
        further). Any other object is left to graphql-core whole."""

        def path_of(_: int) -> Path:
            return path

        plan = self._root_plan(return_type, field_details_list, path, result)
        row: dict[str, Any] | None = None
        if plan is not None:
            row = {}
            attributes = result.__dict__  # a record class's (_root_plan): its attributes
            try:
                done = plan.filler()(result, row, attributes if type(attributes) is dict else NO_ATTRIBUTES)
                if done != len(plan.steps):
                    self._complete_rest(plan, done, result, row, path_of, 0)
            except _Bail:
                _fallback("object")
                row = None
        if plan is None or row is None:
            return super().complete_object_value(return_type, field_details_list, info, path, result, position_context)
        slot_type = GraphQLNonNull(return_type)  # a failure is the caller's to handle, as graphql-core's
        completed: list[Any] = [row]
        fast = [(0, row, result)]
        details = field_details_list
        batches = [
            self._run_batch(step, fast, return_type, slot_type, details, path_of, completed, position_context)
            for step in plan.batched
        ]
        if not batches:
            return row
        settled = self._settle(completed, [], batches, slot_type, details, path_of)

        async def one() -> Any:
            return (await settled)[0]

        return one()

    def _root_plan(
        self, object_type: GraphQLObjectType, details: FieldDetailsList, path: Path, result: Any
    ) -> _Plan | None:
        """The plan ``complete_object_value`` completes ``result`` by, or None (graphql-core's)."""
        if (
            path.prev is not None  # below the root, a nested object's timing is graphql-core's to keep
            or object_type.is_type_of is not None
            or not _known_record(type(result))
            or "__await__" in result.__dict__
            or self._has_middleware()
        ):
            return None
        plan = self._plan(object_type, details, path)
        # A field resolved by its own resolver (a connection's nodes, say) starts when graphql-core's
        # execute_fields starts it: done here, the loads below it would start a turn of the loop
        # apart from those of graphql-core's paths and miss their batch.
        return None if plan is None or plan.generic else plan

    def _has_middleware(self) -> bool:
        # strawberry always passes a MiddlewareManager; only one with resolvers changes resolution
        # (a schema extension with a resolve() hook): then every field must take the generic path.
        manager = self.middleware_manager
        if manager is not None and getattr(manager, "_middleware_resolvers", None):
            _fallback("middleware")
            return True
        return False

    def _plan(self, object_type: GraphQLObjectType, details: FieldDetailsList, path: Path) -> _Plan | None:
        key = (id(object_type), id(details))
        cached = self._plans.get(key)
        if cached is not None:
            return cached[1]
        # Across requests: an operation whose selections no variable can change (no @skip,
        # @include, @defer, @stream, fragment arguments) gets the same plan for the same field
        # nodes of the same parsed document (the parser cache hands out one object per text).
        if self._unconditional() and all(d.fragment_variable_values is None for d in details):
            extra = (id(object_type), *(id(d.node) for d in details))
            plan = _SHARED.get(self.schema, self.operation, extra, lambda: self._build_plan(object_type, details, path))
        else:
            plan = self._build_plan(object_type, details, path)
        self._plans[key] = (details, plan)  # keep ``details`` alive so its id is not reused
        return plan

    def _unconditional(self) -> bool:
        """Whether no variable can change what this operation selects (once per operation)."""
        operation = self.operation
        return _UNCONDITIONAL.get(
            self.schema, operation, None, lambda: _no_conditions(operation, self.fragment_definitions.values())
        )

    def _build_plan(self, object_type: GraphQLObjectType, details: FieldDetailsList, path: Path) -> _Plan | None:
        if object_type.is_type_of is not None:
            _fallback("is_type_of")
            return None
        if any(d.defer_usage is not None for d in details) or self.get_stream_usage(details, path) is not None:
            _fallback("defer_or_stream")
            return None
        collected = self.collect_subfields(object_type, details)
        if collected.new_defer_usages:
            _fallback("defer")
            return None
        steps: list[_Step] = []
        for response_key, field_details in collected.grouped_field_set.items():
            node = field_details[0].node
            name = node.name.value
            if name == "__typename":
                steps.append(_Step(response_key, _TYPENAME, None, None, True, object_type, field_details))
                continue
            field_def = self.schema.get_field(object_type, name)
            if field_def is None:
                continue  # graphql-core skips unknown fields the same way
            field_type = field_def.type
            nullable = not is_non_null_type(field_type)
            named = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
            basic = getattr(field_def.resolve, "_is_default", False) and not node.arguments
            plain = all(
                d.fragment_variable_values is None
                and all(directive.name.value in _INCLUDE_SKIP for directive in d.node.directives or ())
                for d in field_details
            )
            definition = field_def.extensions.get("strawberry-definition")
            python_name = getattr(definition, "python_name", None)
            batch = (getattr(definition, "metadata", None) or {}).get(BATCH)
            if basic and plain and is_leaf_type(named) and isinstance(python_name, str):
                leaf = named  # is_leaf_type narrowed it
                steps.append(
                    _Step(
                        response_key,
                        _LEAF,
                        python_name,
                        leaf,
                        nullable,
                        field_type,
                        field_details,
                    )
                )
            elif (
                callable(batch)
                and plain
                and not node.arguments
                and not getattr(definition, "extensions", None)  # field extensions run in its resolver
                and (nullable or isinstance(named, GraphQLList))  # a failure stays within the item
            ):
                steps.append(
                    _Step(response_key, _BATCH, None, None, nullable, field_type, field_details, field_def, batch)
                )
            else:
                steps.append(_Step(response_key, _GENERIC, None, None, True, field_type, field_details))
        return _Plan.of(steps, object_type.name)

    def _complete_items(
        self,
        plan: _Plan,
        object_type: GraphQLObjectType,
        slot_type: GraphQLOutputType,
        slot_details: FieldDetailsList,
        info: Any,
        path_of: PathOf,
        items: Sequence[Any],
        position_context: Any,
    ) -> Any:
        """Complete ``items``, each at ``path_of(index)`` in a slot of ``slot_type``: the items of a
        list, or one batch field's values across its parents. A failed item is handled as
        graphql-core handles that slot (null and an error, or propagated when it is non-null)."""
        completed: list[Any] = []
        awaitables: list[tuple[int, str | None, Any]] = []
        fast: list[tuple[int, dict[str, Any], Any]] = []
        batched = plan.batched
        try:
            self._complete_each(
                plan, object_type, slot_type, slot_details, info, path_of, items, position_context, completed,
                awaitables, fast if batched else None,
            )  # fmt: skip
        except Exception:
            # As graphql-core does: work already started for earlier items is settled in the
            # background instead of being orphaned, then the error propagates.
            if awaitables:
                self.settle_in_background([a for _, _, a in awaitables])
            raise
        # Batch fields resolve in the settle task below, for every item completed on the fast path.
        batches = [
            self._run_batch(step, fast, object_type, slot_type, slot_details, path_of, completed, position_context)
            for step in batched
            if fast
        ]
        if not awaitables and not batches:
            return completed
        return self._settle(completed, awaitables, batches, slot_type, slot_details, path_of)

    def _complete_each(
        self,
        plan: _Plan,
        object_type: GraphQLObjectType,
        slot_type: GraphQLOutputType,
        slot_details: FieldDetailsList,
        info: Any,
        path_of: PathOf,
        items: Iterable[Any],
        position_context: Any,
        completed: list[Any],
        awaitables: list[tuple[int, str | None, Any]],
        fast: list[tuple[int, dict[str, Any], Any]] | None,
    ) -> None:
        is_awaitable = self.is_awaitable
        slot_nullable = not is_non_null_type(slot_type)
        fill, size, generic = plan.filler(), len(plan.steps), plan.generic
        records = _RECORDS  # item classes whose instances are never None, failed or awaitable
        for index, item in enumerate(items):
            if type(item) not in records or "__await__" in (attributes := item.__dict__):
                if item is None:
                    if slot_nullable:
                        completed.append(None)
                        continue
                    self._generic_item(
                        item, completed, awaitables, index, slot_type, slot_details, info, path_of, position_context
                    )
                    continue
                if isinstance(item, Exception) and slot_nullable:
                    # A batch field's failed value (one object for every parent after a denial or
                    # a failed read) is reported as it is, as graphql-core would after raising it:
                    # each raise would add to the shared object's traceback, one more per parent.
                    self.handle_field_error(item, slot_type, slot_details, path_of(index))
                    completed.append(None)
                    continue
                if isinstance(item, Exception) or is_awaitable(item):
                    self._generic_item(
                        item, completed, awaitables, index, slot_type, slot_details, info, path_of, position_context
                    )
                    continue
                # Checked once per class from now on; this item's attributes read as a record's
                # only when its class is one (else by getattr: it may answer reads itself).
                attributes = item.__dict__ if _known_record(type(item)) else NO_ATTRIBUTES
            if type(attributes) is not dict:
                attributes = NO_ATTRIBUTES  # a dict subclass's lookups need not be getattr's
            row: dict[str, Any] = {}
            try:
                # Leaves first: a bail-out must happen before any resolver has been started. The
                # generated filler completes what it can; the general loop takes over where it stopped.
                done = fill(item, row, attributes)
                item_path = None if done == size else self._complete_rest(plan, done, item, row, path_of, index)
                if generic:
                    for key, value in self._execute_generic(plan, object_type, item, row, item_path, path_of, index,
                                                            position_context):  # fmt: skip
                        awaitables.append((index, key, value))
            except _Bail:
                _fallback("item")
                self._generic_item(
                    item, completed, awaitables, index, slot_type, slot_details, info, path_of, position_context
                )
                continue
            if fast is not None:
                fast.append((index, row, item))
            completed.append(row)

    def _execute_generic(
        self,
        plan: _Plan,
        object_type: GraphQLObjectType,
        item: Any,
        row: dict[str, Any],
        item_path: Path | None,
        path_of: PathOf,
        index: int,
        position_context: Any,
    ) -> list[tuple[str, Any]]:
        """Run the item's generic steps through ``execute_field``; the values still pending."""
        type_name = plan.type_name
        pending: list[tuple[str, Any]] = []
        for step in plan.generic:
            item_path = item_path or path_of(index)
            try:
                result = self.execute_field(
                    object_type, item, step.details, item_path.add_key(step.key, type_name), position_context
                )
            except Exception as error:
                # A non-null field failed: null propagation is graphql-core's job. Work already
                # started is settled in the background, as graphql-core does for failed siblings;
                # its errors fall under the item's nulled position and are filtered.
                if pending:
                    self.settle_in_background([a for _, a in pending])
                raise _Bail from error
            if self.is_awaitable(result):
                pending.append((step.key, result))
            else:
                row[step.key] = result
        return pending

    def _complete_rest(
        self, plan: _Plan, start: int, item: Any, row: dict[str, Any], path_of: PathOf, index: int
    ) -> Path | None:
        """Complete the steps from ``start`` on with graphql-core's rules for every value (the
        filler stops at a value it cannot settle); raises ``_Bail`` when graphql-core must
        complete the whole item. Returns the item's path when one was made."""
        type_name = plan.type_name
        item_path: Path | None = None
        for step in plan.steps[start:]:
            kind = step.kind
            if kind == _TYPENAME:
                row[step.key] = type_name
                continue
            if kind != _LEAF:
                row[step.key] = None  # keeps graphql-core's key order; filled later or by the batch
                continue
            value = getattr(item, step.python_name, MISSING)  # type: ignore[arg-type]
            settled = settle(coercions(step.leaf), value)
            if settled is not not_plain:
                row[step.key] = settled
                continue
            # What the table cannot settle, graphql-core's own calls below decide and report.
            if value is None:
                if not step.nullable:
                    raise _Bail
                row[step.key] = None
                continue
            if value is MISSING or self.is_awaitable(value):
                raise _Bail
            if isinstance(value, Exception):
                if not step.nullable:
                    raise _Bail
                item_path = item_path or path_of(index)
                self.handle_field_error(value, step.field_type, step.details, item_path.add_key(step.key, type_name))
                row[step.key] = None
                continue
            try:
                row[step.key] = self.complete_leaf_value(step.leaf, value)  # type: ignore[arg-type]
            except Exception as error:
                if not step.nullable:
                    raise _Bail from error
                item_path = item_path or path_of(index)
                self.handle_field_error(error, step.field_type, step.details, item_path.add_key(step.key, type_name))
                row[step.key] = None
        return item_path

    def _generic_item(
        self,
        item: Any,
        completed: list[Any],
        awaitables: list[tuple[int, str | None, Any]],
        index: int,
        slot_type: GraphQLOutputType,
        slot_details: FieldDetailsList,
        info: Any,
        path_of: PathOf,
        position_context: Any,
    ) -> None:
        item_path = path_of(index)
        if self.is_awaitable(item):
            completed.append(None)
            awaitables.append(
                (
                    index,
                    None,
                    self.complete_awaitable_list_item_value(
                        item, slot_type, slot_details, info, item_path, position_context
                    ),
                )
            )
            return
        if self.complete_list_item_value(item, completed, slot_type, slot_details, info, item_path, position_context):
            awaitables.append((index, None, completed[index]))

    async def _run_batch(
        self,
        step: _Step,
        parents: list[tuple[int, dict[str, Any], Any]],
        object_type: GraphQLObjectType,
        slot_type: GraphQLOutputType,
        slot_details: FieldDetailsList,
        path_of: PathOf,
        completed: list[Any],
        position_context: Any,
    ) -> None:
        """Resolve one batch field for the parents completed on the fast path, complete the values
        and write them into the parents' rows; a failed value fails that parent's field."""
        assert step.batch is not None and step.field_def is not None  # noqa: S101 (a _BATCH step)
        type_name = object_type.name

        # A value's path is made only when something reads it (an info, an error, a generic
        # completion): most never are, and two Path tuples per parent were ~4% of a page of 100.
        def path_at(position: int) -> Path:
            return path_of(parents[position][0]).add_key(step.key, type_name)

        # Called when this task runs, one pass after the list completed, as graphql-core's per-item
        # resolvers are: the loads of every path at a level meet in one batch.
        try:
            values = list(await step.batch(self.context_value, [item for _, _, item in parents]))
            if len(values) != len(parents):
                name = step.details[0].node.name.value
                raise TypeError(f"{type_name}.{name}: the batch resolver returned {len(values)} results")
        except Exception as error:  # a denial or a failed batch: every parent's field fails with it
            values = [error] * len(parents)
        first = path_at(0)
        info = self.build_resolve_info(step.field_def, to_nodes(step.details), object_type, first)
        field_type = step.field_type
        if isinstance(field_type, GraphQLObjectType):  # nullable object values: one more collection
            plan = self._plan(field_type, step.details, first)
            if plan is not None:
                done = self._complete_items(
                    plan, field_type, field_type, step.details, info, path_at, values, position_context
                )
                if self.is_awaitable(done):
                    done = await done
                for (_, row, _), value in zip(parents, done, strict=True):
                    row[step.key] = value
                return
        # A list value goes straight to its items' plan, where complete_value would take it.
        list_type = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
        lists = (
            self._items_plan(list_type, step.details, first)
            if isinstance(list_type, GraphQLList) and any(isinstance(v, list | tuple) for v in values)
            else None
        )
        # Items of leaves only (no step runs after the filler): each parent's list is filled here
        # in one loop, without a _complete_items call per parent (a page of 100 makes 200 such
        # lists of a few items). A list with anything else in it — an item that is not a known
        # record, a value the filler leaves to the general loop — is completed as below instead;
        # the filler only reads, so the rows dropped on the way leave nothing behind.
        quick = lists[0] if lists is not None and not lists[0].generic and not lists[0].batched else None
        if quick is not None:
            fill, size, records = quick.filler(), len(quick.steps), _RECORDS
        pending: list[tuple[int, dict[str, Any], Path, Any]] = []
        for position, ((index, row, _), value) in enumerate(zip(parents, values, strict=True)):
            if quick is not None and type(value) is list:
                filled: list[dict[str, Any]] = []
                for item in value:
                    if type(item) not in records:
                        break
                    attributes = item.__dict__
                    if "__await__" in attributes or type(attributes) is not dict:
                        break
                    item_row: dict[str, Any] = {}
                    try:
                        if fill(item, item_row, attributes) != size:
                            break
                    except Exception:  # the general loop runs it again and reports it for this parent
                        break
                    filled.append(item_row)
                else:
                    row[step.key] = filled
                    continue
            # A failed value is reported as it is, not raised: after a denial every parent holds
            # the same exception, and raising it once per parent would grow its traceback each time.
            failure = value if isinstance(value, Exception) else None
            if failure is None:
                try:
                    if lists is not None and isinstance(value, list | tuple):
                        item_plan, item_object, item_type = lists
                        value = self._complete_items(
                            item_plan, item_object, item_type, step.details, info, _items_at(path_at, position),
                            value, position_context,
                        )  # fmt: skip
                    else:
                        value = self.complete_value(
                            field_type, step.details, info, path_at(position), value, position_context
                        )
                except Exception as error:
                    failure = error
            if failure is not None:
                try:
                    self._field_failed(
                        failure, step, path_at(position), index, slot_type, slot_details, path_of, completed
                    )
                except Exception:
                    # The failure propagates past the list: work started for earlier parents is
                    # settled in the background, as graphql-core does for failed siblings.
                    if pending:
                        self.settle_in_background([p[3] for p in pending])
                    raise
                continue
            if self.is_awaitable(value):
                pending.append((index, row, path_at(position), value))
            else:
                row[step.key] = value
        if not pending:
            return

        async def settle(index: int, row: dict[str, Any], field_path: Path, value: Any) -> None:
            try:
                row[step.key] = await value
            except Exception as error:
                self._field_failed(error, step, field_path, index, slot_type, slot_details, path_of, completed)

        await gather_with_cancel(*(settle(*p) for p in pending))

    def _items_plan(
        self, list_type: GraphQLList[GraphQLOutputType], details: FieldDetailsList, path: Path
    ) -> _Items | None:
        """The plan for the items of a list of ``list_type`` — their plan, object type and slot
        type — when they are of an object type that can be compiled; else None (graphql-core's)."""
        item_type = list_type.of_type
        object_type = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
        if not is_object_type(object_type) or self._has_middleware():
            return None
        plan = self._plan(object_type, details, path)
        return None if plan is None else (plan, object_type, item_type)

    def _field_failed(
        self,
        error: Exception,
        step: _Step,
        field_path: Path,
        index: int,
        slot_type: GraphQLOutputType,
        slot_details: FieldDetailsList,
        path_of: PathOf,
        completed: list[Any],
    ) -> None:
        """A batch field of item ``index`` failed: null and an error where the field is nullable;
        otherwise the item is null, or the failure propagates further when the slot is non-null."""
        try:
            self.handle_field_error(error, step.field_type, step.details, field_path)
        except Exception as located:
            self.handle_field_error(located, slot_type, slot_details, path_of(index))
            completed[index] = None

    def _settle(
        self,
        completed: list[Any],
        awaitables: list[tuple[int, str | None, Any]],
        batches: list[Any],
        slot_type: GraphQLOutputType,
        slot_details: FieldDetailsList,
        path_of: PathOf,
    ) -> Any:
        by_item: dict[int, list[tuple[str | None, Any]]] = {}
        for index, key, awaitable in awaitables:
            by_item.setdefault(index, []).append((key, awaitable))

        async def settle_item(index: int, fields: list[tuple[str | None, Any]]) -> None:
            if fields[0][0] is None:  # a generic item: graphql-core's awaitable handles its own errors
                completed[index] = await fields[0][1]
                return
            try:
                values = await gather_with_cancel(*(a for _, a in fields))
            except Exception as error:
                # A non-null field of this item failed: the item is null (or the error propagates
                # further when items are non-null), as graphql-core's execute_fields would do.
                self.handle_field_error(error, slot_type, slot_details, path_of(index))
                completed[index] = None
                return
            row = completed[index]
            if row is None:
                return  # a batch field of this item failed and nulled it
            for (key, _), value in zip(fields, values, strict=True):
                row[key] = value

        async def settle() -> list[Any]:
            await gather_with_cancel(*(settle_item(i, f) for i, f in by_item.items()), *batches)
            return completed

        return settle()


__all__ = ["FALLBACKS", "CompiledExecutionContext"]
