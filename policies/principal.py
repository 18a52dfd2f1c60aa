"""Who is asking: the verified identity a request carries into policy and audit."""

from __future__ import annotations

from dataclasses import dataclass

#: Classification levels: L1 public, L2 internal, L3 sensitive (PIPL art. 28), L4 core.
LEVELS = (1, 2, 3, 4)


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified subject. ``districts`` are the 6-digit adcodes of its jurisdiction."""

    subject: str
    department: str
    roles: frozenset[str]
    districts: frozenset[str]
    clearance: int
    issuer: str = ""
    token_expires_at: int = 0

    @property
    def is_public(self) -> bool:
        """True for requests that carried no token."""
        return self.subject == PUBLIC.subject and not self.department

    def to_policy(self) -> dict[str, object]:
        """The ``input.subject`` document policies read (lists sorted for stable input)."""
        return {
            "id": self.subject,
            "department": self.department,
            "roles": sorted(self.roles),
            "districts": sorted(self.districts),
            "clearance": self.clearance,
            "authenticated": not self.is_public,
            "issuer": self.issuer,
        }


#: The principal of a request without a token: public data only.
PUBLIC = Principal(subject="anonymous", department="", roles=frozenset(), districts=frozenset(), clearance=1)


@dataclass(frozen=True, slots=True)
class Purpose:
    """The declared purpose of use (``X-Purpose-Of-Use``) and optional case (``X-Case-Ref``)."""

    code: str | None = None
    case_ref: str | None = None


__all__ = ["LEVELS", "PUBLIC", "Principal", "Purpose"]
