"""The federation compatibility suite's "products" subgraph, built with CityGraph's connector SDK.

``ProductsConnector`` is an ordinary connector (``connectors.base.Connector``) over an in-memory
catalogue: classified fields, link fields through ``resolvers`` loaders (so every read is decided
by policy, ``products.rego``), and federation directives declared with strawberry's federation
API. ``citygraph`` serves it with subgraph mode, unchanged: ``create_app(subgraph="products")``.
The schema and data are the suite's (``products.graphql`` and its COMPATIBILITY.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar, cast

import strawberry
from strawberry.schema_directive import Location
from strawberry.types import Info

from connectors.base import (
    JSON,
    Capabilities,
    ConnectorInfo,
    FetchRequest,
    Health,
    Page,
    Record,
    SchemaContribution,
    SearchRequest,
)
from resolvers import check_coordinate, context_of, load_one, load_related
from schema.directives import Classification, Level

CONNECTOR = "products"

POLICY = """# The compatibility suite's product catalogue: public reference data, every field L1.
package citygraph.products

types := {"Product", "DeprecatedProduct", "ProductResearch", "ProductDimension", "User", "Inventory"}

decision := {
\t"allow": true,
\t"fields": {},
\t"filter": {},
\t"obligations": {"audit": "none"},
\t"reasons": ["public product catalogue"],
} if input.resource.type in types
"""
ROUTE = '\ndecision := data.citygraph.products.decision if input.resource.connector == "products"\n'


def policy_dir(target: Path, rego: Path) -> Path:
    """The repository's policies plus ``products.rego`` and its route, in ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for source in rego.iterdir():
        if source.is_file():
            text = source.read_text(encoding="utf-8")
            (target / source.name).write_text(text + ROUTE if source.name == "authz.rego" else text, encoding="utf-8")
    (target / "products.rego").write_text(POLICY, encoding="utf-8")
    return target


def _key(*parts: object) -> str:
    return json.dumps(parts, ensure_ascii=False)


USER = {"email": "support@apollographql.com", "name": "Jane Smith"}
PRODUCTS: list[dict[str, Any]] = [
    {"id": "apollo-federation", "sku": "federation", "package": "@apollo/federation", "variation_id": "OSS"},
    {"id": "apollo-studio", "sku": "studio", "package": "", "variation_id": "platform"},
]
RESEARCH: list[dict[str, Any]] = [
    {"case_number": "1234", "description": "Federation Study", "outcome": None, "product_id": "apollo-federation"},
    {"case_number": "1235", "description": "Studio Study", "outcome": None, "product_id": "apollo-studio"},
]
DEPRECATED = {"sku": "apollo-federation-v1", "package": "@apollo/federation-v1", "reason": "Migrate to Federation V2"}
INVENTORY = {"id": "apollo-oss", "deprecated": [_key(DEPRECATED["sku"], DEPRECATED["package"])]}


def l1(description: str, resource: str | None = None, **federation: Any) -> Any:
    """A public (L1) field with federation directives; ``resource`` for link fields."""
    return strawberry.federation.field(
        description=description,
        directives=[Classification(level=Level.L1)],
        metadata={"resource": resource} if resource else None,
        **federation,
    )


F = TypeVar("F", bound=Callable[..., Any])


def linked(description: str, resource: str, **federation: Any) -> Callable[[F], F]:
    """An L1 field with a resolver, governed by ``resource``'s decision (like ``schema.directives.resolved``)."""

    def wrap(fn: F) -> F:
        field: F = l1(description, resource, resolver=fn, **federation)
        return field

    return wrap


@strawberry.federation.schema_directive(
    locations=[Location.OBJECT], name="custom", compose=True, import_url="https://myspecs.dev/myCustomDirective/v1.0"
)
class Custom:
    """The suite's composed custom directive."""


@strawberry.type
class ProductVariation:
    id: strawberry.ID = l1("variation id")


@strawberry.federation.type(shareable=True)
class ProductDimension:
    size: str | None = l1("size")
    weight: float | None = l1("weight")
    unit: str | None = l1("unit", inaccessible=True)


@strawberry.type
class CaseStudy:
    case_number: strawberry.ID = l1("case number")
    description: str | None = l1("description")


@strawberry.federation.type(keys=["study { caseNumber }"])
class ProductResearch:
    outcome: str | None = l1("outcome")
    case_number: strawberry.Private[str]
    description: strawberry.Private[str | None]

    @linked("the study", resource="ProductResearch")
    def study(self) -> CaseStudy:
        return CaseStudy(case_number=strawberry.ID(self.case_number), description=self.description)

    @classmethod
    async def resolve_reference(cls, info: Info, study: Mapping[str, object]) -> ProductResearch | None:
        found = await load_one(context_of(info), CONNECTOR, "ProductResearch", str(study.get("caseNumber")))
        return cast(ProductResearch | None, found)


@strawberry.federation.type(keys=["email"], extend=True)
class User:
    email: strawberry.ID = l1("email", external=True)
    name: str | None = l1("name", override="users")
    total_products_created: int | None = l1("products created", external=True)
    years_of_employment: int = l1("years of employment", external=True)

    @linked("average products created per year", resource="User", requires=["totalProductsCreated yearsOfEmployment"])
    def average_products_created_per_year(self) -> int | None:
        total, years = getattr(self, "total_products_created", None), getattr(self, "years_of_employment", None)
        return round(total / years) if total is not None and years else None

    @classmethod
    async def resolve_reference(cls, info: Info, email: str, **external: object) -> User | None:
        user = cast(User | None, await load_one(context_of(info), CONNECTOR, "User", email))
        if user is not None:
            user.total_products_created = cast(int | None, external.get("totalProductsCreated"))
            user.years_of_employment = cast(int, external.get("yearsOfEmployment"))
        return user


async def _user(info: Info, email: str, total: int | None) -> User | None:
    ctx = context_of(info)
    check_coordinate(ctx, CONNECTOR, "User", "Product.createdBy")
    user = cast(User | None, await load_one(ctx, CONNECTOR, "User", email))
    if user is not None:
        user.total_products_created = total  # provided: this subgraph knows the creator's count
    return user


@strawberry.federation.type(keys=["sku package"])
class DeprecatedProduct:
    sku: str = l1("sku")
    package: str = l1("package")
    reason: str | None = l1("reason")

    @linked("creator", resource="User")
    async def created_by(self, info: Info) -> User | None:
        return await _user(info, USER["email"], 1337)

    @classmethod
    async def resolve_reference(cls, info: Info, sku: str, package: str) -> DeprecatedProduct | None:
        found = await load_one(context_of(info), CONNECTOR, "DeprecatedProduct", _key(sku, package))
        return cast(DeprecatedProduct | None, found)


@strawberry.federation.type(keys=["id", "sku package", "sku variation { id }"], directives=[Custom()])
class Product:
    id: strawberry.ID = l1("id")
    sku: str | None = l1("sku")
    package: str | None = l1("package")
    notes: str | None = l1("notes", tags=["internal"])
    variation_id: strawberry.Private[str]

    @linked("variation", resource="Product")
    def variation(self) -> ProductVariation | None:
        return ProductVariation(id=strawberry.ID(self.variation_id))

    @linked("dimensions", resource="Product")
    def dimensions(self) -> ProductDimension | None:
        return ProductDimension(size="small", weight=1, unit="kg")

    @linked("creator", resource="User", provides=["totalProductsCreated"])
    async def created_by(self, info: Info) -> User | None:
        return await _user(info, USER["email"], 1337)

    @linked("research", resource="ProductResearch")
    async def research(self, info: Info) -> list[ProductResearch]:
        ctx = context_of(info)
        check_coordinate(ctx, CONNECTOR, "ProductResearch", "Product.research")
        return cast(list[ProductResearch], await load_related(ctx, CONNECTOR, "ProductResearch", "product", self.id))

    @classmethod
    async def resolve_reference(
        cls, info: Info, id: str | None = None, sku: str | None = None, package: str | None = None, **rest: Any
    ) -> Product | None:
        ctx = context_of(info)
        if id is not None:
            return cast(Product | None, await load_one(ctx, CONNECTOR, "Product", id))
        variation = rest.get("variation")
        by, key = (
            ("sku_package", _key(sku, package))
            if package is not None
            else ("sku_variation", _key(sku, variation.get("id") if isinstance(variation, Mapping) else None))
        )
        found = await load_related(ctx, CONNECTOR, "Product", by, key)
        return cast(Product | None, found[0] if found else None)


@strawberry.federation.interface_object(keys=["id"])
class Inventory:
    id: strawberry.ID = l1("id")
    deprecated: strawberry.Private[list[str]]

    @linked("deprecated products", resource="DeprecatedProduct")
    async def deprecated_products(self, info: Info) -> list[DeprecatedProduct]:
        ctx = context_of(info)
        check_coordinate(ctx, CONNECTOR, "DeprecatedProduct", "Inventory.deprecatedProducts")
        found = [await load_one(ctx, CONNECTOR, "DeprecatedProduct", key) for key in self.deprecated]
        return [cast(DeprecatedProduct, p) for p in found if p is not None]

    @classmethod
    async def resolve_reference(cls, info: Info, id: str) -> Inventory | None:
        return cast(Inventory | None, await load_one(context_of(info), CONNECTOR, "Inventory", id))


@strawberry.type
class ProductsQuery:
    @linked("a product by id", resource="Product")
    async def product(self, info: Info, id: strawberry.ID) -> Product | None:
        return cast(Product | None, await load_one(context_of(info), CONNECTOR, "Product", str(id)))

    @linked("a deprecated product", resource="DeprecatedProduct", deprecation_reason="Use product query instead")
    async def deprecated_product(self, info: Info, sku: str, package: str) -> DeprecatedProduct | None:
        found = await load_one(context_of(info), CONNECTOR, "DeprecatedProduct", _key(sku, package))
        return cast(DeprecatedProduct | None, found)


class ProductsConnector:
    """The catalogue as a connector: records by key, related records by relation key."""

    info: ClassVar[ConnectorInfo] = ConnectorInfo(
        name=CONNECTOR,
        department="products",
        version="1.0",
        entities=("Product", "DeprecatedProduct", "ProductResearch", "User", "Inventory"),
    )
    capabilities: ClassVar[Capabilities] = Capabilities(fetch_related=True)

    def __init__(self) -> None:
        research = [{k: v for k, v in r.items() if k != "product_id"} for r in RESEARCH]
        self.by_key: dict[str, dict[str, Record]] = {
            "Product": {p["id"]: p for p in PRODUCTS},
            "ProductResearch": {r["case_number"]: r for r in research},
            "DeprecatedProduct": {_key(DEPRECATED["sku"], DEPRECATED["package"]): DEPRECATED},
            "User": {USER["email"]: USER},
            "Inventory": {INVENTORY["id"]: INVENTORY},  # type: ignore[dict-item]
        }
        self.related: dict[tuple[str, str], dict[str, list[Record]]] = {
            ("Product", "sku_package"): {_key(p["sku"], p["package"]): [p] for p in PRODUCTS},
            ("Product", "sku_variation"): {_key(p["sku"], p["variation_id"]): [p] for p in PRODUCTS},
            ("ProductResearch", "product"): {
                p["id"]: [r for r, raw in zip(research, RESEARCH, strict=True) if raw["product_id"] == p["id"]]
                for p in PRODUCTS
            },
        }

    @classmethod
    def from_config(cls, config: Mapping[str, JSON], data_dir: Path) -> Self:
        return cls()

    def schema(self) -> SchemaContribution:
        return SchemaContribution(
            query=ProductsQuery,
            types=(Product, DeprecatedProduct, ProductResearch, User, Inventory, ProductDimension),
            keys={"Product": "id", "DeprecatedProduct": "sku", "ProductResearch": "case_number", "User": "email"},
        )

    async def open(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def health(self) -> Health:
        return Health(ok=True)

    async def fetch_many(self, request: FetchRequest) -> Sequence[Record | None]:
        table = self.by_key.get(request.entity, {})
        return [table.get(key) for key in request.keys]

    async def fetch_related(self, request: FetchRequest) -> Sequence[Sequence[Record]]:
        table = self.related.get((request.entity, request.by or ""), {})
        return [table.get(key, []) for key in request.keys]

    async def search(self, request: SearchRequest) -> Page:
        return Page(records=[], cursors=[], has_next_page=False)


__all__ = ["ProductsConnector", "policy_dir"]
