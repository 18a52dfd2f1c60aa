"""Scalars for national identifier codes; invalid input is a BAD_USER_INPUT with the reason."""

from __future__ import annotations

from typing import NewType

import strawberry
from graphql import GraphQLError
from strawberry.types.scalar import ScalarDefinition

from connectors.identifiers import gb28181_problem, id_number_problem, is_adcode, uscc_problem


def _parse_uscc(value: object) -> str:
    if not isinstance(value, str):
        raise GraphQLError("USCC must be a string", extensions={"code": "BAD_USER_INPUT"})
    normalised = value.strip().upper()
    problem = uscc_problem(normalised)
    if problem:
        raise GraphQLError(f"invalid USCC {value!r}: {problem}", extensions={"code": "BAD_USER_INPUT"})
    return normalised


def _parse_id_number(value: object) -> str:
    if not isinstance(value, str):
        raise GraphQLError("IDNumber must be a string", extensions={"code": "BAD_USER_INPUT"})
    normalised = value.strip().upper()
    problem = id_number_problem(normalised)
    if problem:
        # The value itself is personal information: never echo it back.
        raise GraphQLError(f"invalid ID number: {problem}", extensions={"code": "BAD_USER_INPUT"})
    return normalised


def _parse_adcode(value: object) -> str:
    if not isinstance(value, str) or not is_adcode(value):
        raise GraphQLError(
            f"invalid adcode {value!r}: expected 6 digits such as 330203",
            extensions={"code": "BAD_USER_INPUT"},
        )
    return value


def _parse_device_id(value: object) -> str:
    if not isinstance(value, str):
        raise GraphQLError("GBDeviceID must be a string", extensions={"code": "BAD_USER_INPUT"})
    problem = gb28181_problem(value.strip())
    if problem:
        raise GraphQLError(f"invalid device id {value[:40]!r}: {problem}", extensions={"code": "BAD_USER_INPUT"})
    return value.strip()


USCC = NewType("USCC", str)
GBDeviceID = NewType("GBDeviceID", str)
IDNumber = NewType("IDNumber", str)
Adcode = NewType("Adcode", str)

#: The scalar definitions, passed to ``StrawberryConfig(scalar_map=...)`` by the schema builder.
SCALAR_MAP: dict[object, ScalarDefinition] = {
    USCC: strawberry.scalar(
        name="USCC",
        description=(
            "统一社会信用代码 (Unified Social Credit Code, GB 32100-2015; 18 characters, check character mod 31)"
        ),
        serialize=str,
        parse_value=_parse_uscc,
    ),
    IDNumber: strawberry.scalar(
        name="IDNumber",
        description="公民身份号码 (resident ID number, GB 11643; 18 characters, ISO 7064 MOD 11-2 check)",
        serialize=str,
        parse_value=_parse_id_number,
    ),
    Adcode: strawberry.scalar(
        name="Adcode",
        description="行政区划代码 (administrative division code, 6 digits, e.g. 330203 海曙区)",
        serialize=str,
        parse_value=_parse_adcode,
    ),
    GBDeviceID: strawberry.scalar(
        name="GBDeviceID",
        description=(
            "GB/T 28181 设备编码 (camera device id: 20 digits = centre code 8 (adcode + unit), industry 2, "
            "type 3 (131/132 camera), network 1, serial 6), e.g. 33020300001320000001"
        ),
        serialize=str,
        parse_value=_parse_device_id,
    ),
}

__all__ = ["SCALAR_MAP", "USCC", "Adcode", "GBDeviceID", "IDNumber"]
