"""Test kit for connector authors: a compliance suite and an in-memory fake.

A department's connector proves it honours the contract by subclassing the suite in its tests
and providing two fixtures::

    class TestMyConnector(ConnectorComplianceSuite):
        entity = "Camera"                      # an entity fetch_many serves
        filter_field = "cameras.district"      # a row-filter field in its allowlist
        filter_value = "330203"                # a value some sample keys have

        @pytest.fixture
        async def connector(self): ...         # opened, with data; closed after the test
        @pytest.fixture
        def sample_keys(self) -> list[str]: ...  # existing keys (some matching filter_value)

``FakeConnector`` serves fixed records from memory (with the same row-filter semantics as SQL)
so resolver and policy tests need no database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar, Self

import pytest

from connectors.base import (
    JSON,
    Capabilities,
    Connector,
    ConnectorInfo,
    FetchRequest,
    Health,
    Page,
    Record,
    SchemaContribution,
    SearchRequest,
)
from connectors.errors import FilterError, InvalidArgument
from connectors.sql import decode_cursor, encode_cursor
from policies.ucast import matches

ABSENT_KEY = "__no_such_key__"


class ConnectorComplianceSuite:
    """The contract every connector must pass; capabilities decide which tests apply."""

    entity: ClassVar[str]
    filter_field: ClassVar[str]
    filter_value: ClassVar[str]

    def _request(self, keys: Sequence[str], row_filter: Mapping[str, JSON] | None = None) -> FetchRequest:
        return FetchRequest(entity=self.entity, keys=list(keys), fields=None, row_filter=row_filter or {})

    async def test_declares_info_and_capabilities(self, connector: Connector) -> None:
        assert isinstance(connector, Connector)
        assert connector.info.name and connector.info.department and self.entity in connector.info.entities
        assert isinstance(connector.capabilities, Capabilities)
        assert isinstance(connector.schema(), SchemaContribution)

    async def test_health_reports_ok(self, connector: Connector) -> None:
        health = await connector.health()
        assert health.ok, health.detail

    async def test_fetch_many_returns_one_result_per_key_in_order(
        self, connector: Connector, sample_keys: list[str]
    ) -> None:
        keys = [*reversed(sample_keys), ABSENT_KEY, sample_keys[0]]
        results = await connector.fetch_many(self._request(keys))
        assert len(results) == len(keys)
        assert results[len(sample_keys)] is None
        assert all(r is not None for i, r in enumerate(results) if i != len(sample_keys))
        assert results[0] == results[len(sample_keys) - 1 if len(sample_keys) == 1 else 0]
        assert results[-1] == results[len(sample_keys) - 1]

    async def test_fetch_many_applies_the_row_filter(self, connector: Connector, sample_keys: list[str]) -> None:
        nothing = {"type": "field", "field": self.filter_field, "operator": "in", "value": []}
        assert all(r is None for r in await connector.fetch_many(self._request(sample_keys, nothing)))
        only = {"type": "field", "field": self.filter_field, "operator": "eq", "value": self.filter_value}
        filtered = await connector.fetch_many(self._request(sample_keys, only))
        everything = await connector.fetch_many(self._request(sample_keys))
        assert 0 < sum(r is not None for r in filtered) <= sum(r is not None for r in everything)

    async def test_unknown_filter_fields_are_refused(self, connector: Connector, sample_keys: list[str]) -> None:
        forged = {"type": "field", "field": "secret_table.password", "operator": "eq", "value": "x"}
        with pytest.raises(FilterError):
            await connector.fetch_many(self._request(sample_keys, forged))

    async def test_search_pages_without_gaps_or_duplicates(self, connector: Connector) -> None:
        if not connector.capabilities.search:
            pytest.skip("connector declares no search capability")
        seen: list[str] = []
        after: str | None = None
        for _ in range(5):
            page = await connector.search(
                SearchRequest(entity=self.search_entity, fields=None, row_filter={}, first=3, after=after)
            )
            assert len(page.records) == len(page.cursors) <= 3
            seen.extend(page.cursors)
            if not page.has_next_page:
                break
            after = page.end_cursor
        assert len(seen) == len(set(seen)) and seen

    async def test_search_refuses_forged_cursors(self, connector: Connector) -> None:
        if not connector.capabilities.search:
            pytest.skip("connector declares no search capability")
        with pytest.raises(InvalidArgument):
            await connector.search(SearchRequest(entity=self.search_entity, fields=None, row_filter={}, after="forged"))

    @property
    def search_entity(self) -> str:
        """The entity ``search`` serves (override when it differs from ``entity``)."""
        return self.entity

    async def test_aclose_is_idempotent(self, connector: Connector) -> None:
        await connector.aclose()
        await connector.aclose()


class FakeConnector:
    """In-memory records per entity; primary key ``key_field``; filters over ``entity.field`` names."""

    info: ClassVar[ConnectorInfo] = ConnectorInfo(
        name="fake", department="testing", version="0", entities=("Item",), description="in-memory fake"
    )
    capabilities: ClassVar[Capabilities] = Capabilities(fetch_by_keys=True, search=True, pagination=True)

    def __init__(self, records: Mapping[str, Sequence[Record]], key_field: str = "id", healthy: bool = True) -> None:
        self.records = {entity: list(rows) for entity, rows in records.items()}
        self.key_field = key_field
        self.healthy = healthy
        self.calls: list[FetchRequest | SearchRequest] = []

    @classmethod
    def from_config(cls, config: Mapping[str, JSON], data_dir: Path) -> Self:
        return cls({})

    def schema(self) -> SchemaContribution:
        return SchemaContribution()

    async def open(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def health(self) -> Health:
        return Health(ok=self.healthy, detail="" if self.healthy else "fake marked unhealthy")

    def _visible(self, entity: str, row_filter: Mapping[str, JSON]) -> list[Record]:
        prefix = entity.lower() + "."

        def value_of(name: str) -> object:
            if not name.startswith(prefix):
                raise FilterError(f"field {name!r} is not filterable here")
            return row.get(name[len(prefix) :])

        out = []
        for row in self.records.get(entity, []):
            if matches(row_filter, value_of):
                out.append(row)
        return out

    async def fetch_many(self, request: FetchRequest) -> Sequence[Record | None]:
        self.calls.append(request)
        by_key = {str(r[self.key_field]): r for r in self._visible(request.entity, request.row_filter)}
        return [by_key.get(k) for k in request.keys]

    async def fetch_related(self, request: FetchRequest) -> Sequence[Sequence[Record]]:
        self.calls.append(request)
        rows = self._visible(request.entity, request.row_filter)
        return [[r for r in rows if str(r.get(request.by or "")) == k] for k in request.keys]

    async def search(self, request: SearchRequest) -> Page:
        self.calls.append(request)
        rows = sorted(self._visible(request.entity, request.row_filter), key=lambda r: str(r[self.key_field]))
        if request.after:
            (last,) = decode_cursor(request.after, 1)
            rows = [r for r in rows if str(r[self.key_field]) > last]
        page = rows[: request.first]
        return Page(
            records=page,
            cursors=[encode_cursor(r[self.key_field]) for r in page],
            has_next_page=len(rows) > request.first,
        )


__all__ = ["ConnectorComplianceSuite", "FakeConnector"]
