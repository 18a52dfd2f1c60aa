"""Licence verification against the registry: by number, or for a presented signed document.

Each batch reads the licences and the issuers in two statements, then checks the SM2 signatures
in a worker thread (about 4 ms of CPU each, too long for the event loop). The answer carries the
licence's public facts only — never its holder.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, select

from connectors.base import Record
from connectors.errors import InvalidArgument
from connectors.license.signing import LicenseDocument, VerifyResult, license_fields, verify_license
from connectors.license.tables import issuers, licenses
from policies.masking import mask_text

Rows = Callable[[Select[Any]], Awaitable[list[dict[str, Any]]]]
#: ``column IN keys`` as the connector's backend wants it (``connectors.sql.key_in``).
KeyIn = Callable[[ColumnElement[Any], Sequence[object]], ColumnElement[bool]]
CITY_TZ = ZoneInfo("Asia/Shanghai")


#: Licences held by persons are numbered with the holder's ID number (ID card, driving licence).
PERSONAL_TYPES = frozenset({"RESIDENT_ID", "DRIVING_LICENSE"})


def _record(result: VerifyResult) -> Record:
    # A verification answer never carries the holder: for a person's licence its number is the
    # holder's ID number, so it is shown masked (3 + 4, birth date hidden).
    number = mask_text(result.number, 3, 4) if result.type in PERSONAL_TYPES else result.number
    return {
        "valid": result.valid,
        "verdict": result.reason,
        "reason": result.description,
        "checked_at": result.checked_at,
        "number": number,
        "type": result.type,
        "issuer": result.issuer_name,
        "issued_on": result.issued_on,
        "valid_from": result.valid_from,
        "valid_until": result.valid_until,
        "status": result.status,
    }


class Verifier:
    """Verifies licences with the registry the connector reads through ``rows``."""

    def __init__(self, rows: Rows, key_in: KeyIn) -> None:
        self._rows = rows
        self._key_in = key_in

    async def _registry(
        self, numbers: Sequence[str], where: ColumnElement[bool]
    ) -> tuple[dict[str, Mapping[str, Any]], Sequence[Mapping[str, Any]]]:
        found = await self._rows(select(licenses).where(self._key_in(licenses.c.number, list(numbers)), where))
        every_issuer = await self._rows(select(issuers))
        return {r["number"]: r for r in found}, every_issuer

    async def by_numbers(self, numbers: Sequence[str], where: ColumnElement[bool], now: dt.datetime) -> list[Record]:
        """Verify stored licences; a number the row filter hides is NOT_FOUND, like a missing one."""
        registry, every_issuer = await self._registry(numbers, where)
        today = now.astimezone(CITY_TZ).date()

        def run() -> list[Record]:
            by_code = {i["code"]: i for i in every_issuer}
            out: list[Record] = []
            for number in numbers:
                row = registry.get(number)
                if row is None:
                    out.append(_record(verify_license({"number": number}, "", None, None, today, checked_at=now)))
                    continue
                issuer = by_code.get(row["issuer_code"])
                others = [i for i in every_issuer if i["code"] != row["issuer_code"]]
                result = verify_license(row, row["signature"], issuer, row, today, other_issuers=others, checked_at=now)
                out.append(_record(result))
            return out

        return await asyncio.to_thread(run)

    async def documents(self, texts: Sequence[str], where: ColumnElement[bool], now: dt.datetime) -> list[Record]:
        """Verify presented documents; a malformed document is the client's error (BAD_USER_INPUT)."""
        parsed: list[LicenseDocument] = []
        for text in texts:
            try:
                parsed.append(LicenseDocument.from_json(text))
            except ValueError as exc:
                raise InvalidArgument(f"document: {exc}") from exc
        registry, every_issuer = await self._registry([str(d.license["number"]) for d in parsed], where)
        today = now.astimezone(CITY_TZ).date()

        def run() -> list[Record]:
            by_code = {i["code"]: i for i in every_issuer}
            out: list[Record] = []
            for document in parsed:
                fields = license_fields(document.license)
                row = registry.get(str(fields["number"]))
                issuer = by_code.get(document.issuer)
                out.append(_record(verify_license(fields, document.signature, issuer, row, today, checked_at=now)))
            return out

        return await asyncio.to_thread(run)


__all__ = ["Verifier"]
