"""The ``PolicyEngine`` seam: one decision per (connector, type) per operation.

Every engine returns a validated ``Decision`` and never raises: an engine error, a timeout, an
undefined result or a malformed document is a deny (fail closed). ``StaticPolicyEngine`` answers
from a table and exists to isolate other layers in unit tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from policies.decision import Decision, parse_decision

#: The Rego rule every engine evaluates: ``data.citygraph.authz.decision``.
ENTRYPOINT = "citygraph/authz/decision"


@dataclass(frozen=True, slots=True)
class EngineStatus:
    """What ``/readyz`` reports about the policy engine."""

    ready: bool
    revision: str
    detail: str = ""


@runtime_checkable
class PolicyEngine(Protocol):
    """Evaluates the policy bundle for one input document."""

    async def decide(self, input_doc: Mapping[str, object]) -> Decision:
        """Return the decision for ``input_doc``; deny on any failure, never raise.

        Read ``input_doc``, never change it: parts of it are shared between documents and
        between requests (``schema.policy.input_docs``).
        """
        ...

    def status(self) -> EngineStatus:
        """Report whether a bundle is loaded and which revision is active."""
        ...

    async def aclose(self) -> None:
        """Release threads, pools and clients."""
        ...


class StaticPolicyEngine:
    """A fake engine for unit tests: ``answer(input_doc)`` returns the raw decision document."""

    def __init__(self, answer: Callable[[Mapping[str, object]], object], revision: str = "static") -> None:
        self._answer = answer
        self._revision = revision
        self.inputs: list[Mapping[str, object]] = []

    async def decide(self, input_doc: Mapping[str, object]) -> Decision:
        self.inputs.append(input_doc)
        try:
            raw = self._answer(input_doc)
        except Exception as exc:  # an engine error is a deny, whatever it is
            return Decision.deny(f"engine error: {type(exc).__name__}", code="POLICY_UNAVAILABLE")
        return parse_decision(raw)

    def status(self) -> EngineStatus:
        return EngineStatus(ready=True, revision=self._revision)

    async def aclose(self) -> None:
        return None


__all__ = ["ENTRYPOINT", "EngineStatus", "PolicyEngine", "StaticPolicyEngine"]
