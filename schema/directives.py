"""Classification metadata on every field, visible in the SDL.

``@classification(level: L3, pi: IDENTITY)`` marks a field's data grade (L1 public, L2 internal,
L3 sensitive personal information under PIPL art. 28, L4 core) and, where it holds personal
information, its category. An operation's level is the highest it touches (就高从严).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from enum import Enum
from typing import Any, TypeVar

import strawberry
from strawberry.schema_directive import Location


@strawberry.enum(description="数据分级 (classification level): L1 公开 public … L4 核心 core")
class Level(Enum):
    L1 = 1
    L2 = 2
    L3 = 3
    L4 = 4


@strawberry.enum(description="个人信息类别 (personal information category)")
class PICategory(Enum):
    NAME = "name"
    IDENTITY = "identity"
    CONTACT = "contact"
    ADDRESS = "address"
    WHEREABOUTS = "whereabouts"
    BIOMETRIC = "biometric"


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    description="数据分级 (data classification) of this field's values",
)
class Classification:
    level: Level
    pi: PICategory | None = None


#: A link field's resolver for many parents at once: ``batch(context, parents)`` returns an
#: awaitable of one result per parent (a value, ``None`` or the exception that parent's field
#: gets), as the field's own resolver would for each parent called without arguments. It queues
#: its loads when called, not when awaited (``resolvers.load_many`` and its kin do), so they join
#: the loader batch of everything else at that level; a denial may raise right away.
BatchResolver = Callable[[Any, Sequence[Any]], Awaitable[Sequence[object]]]

#: Where :func:`resolved` keeps a field's batch resolver (strawberry field metadata).
BATCH = "batch"


def classified(
    level: int,
    description: str,
    *,
    pi: PICategory | None = None,
    resource: str | None = None,
    reads: tuple[str, ...] = (),
    batch: BatchResolver | None = None,
    **kwargs: Any,
) -> Any:
    """A strawberry field carrying ``@classification``.

    Link and root fields pass ``resolver=`` and ``resource=``: the type whose decision governs
    them (the records they return), e.g. ``Query.creditRecords`` is governed by ``CreditRecord``.
    ``reads`` names other coordinates the resolver reads on the way (``Enterprise.nearbyCameras``
    reads ``Enterprise.location``): their decisions are taken too, as if the client selected them.
    """
    metadata: dict[str, object] = {}
    if resource:
        metadata["resource"] = resource
    if reads:
        metadata["reads"] = reads
    if batch is not None:
        metadata[BATCH] = batch
    return strawberry.field(
        description=description,
        directives=[Classification(level=Level(level), pi=pi)],
        metadata=metadata or None,
        **kwargs,
    )


F = TypeVar("F", bound=Callable[..., Any])


def resolved(
    level: int,
    description: str,
    *,
    resource: str,
    pi: PICategory | None = None,
    reads: tuple[str, ...] = (),
    batch: BatchResolver | None = None,
) -> Callable[[F], F]:
    """A classified field with a resolver (root and link fields), governed by ``resource``'s decision.

    ``batch`` resolves the field for every item of a list at once when the query passes it no
    arguments (``schema.execution``): one call per list instead of one coroutine per item. The
    resolver itself should call it with ``[self]``, so both paths give the same answer.

    Typed as returning the function so strict type checking keeps the resolver's signature;
    at runtime strawberry receives the field definition.
    """

    def wrap(fn: F) -> F:
        field: F = classified(level, description, pi=pi, resource=resource, reads=reads, batch=batch, resolver=fn)
        return field

    return wrap


__all__ = ["BATCH", "BatchResolver", "Classification", "Level", "PICategory", "classified", "resolved"]
