"""Deterministic demo data for the e-license store, built on the credit demo's enterprises.

:func:`generate` reads a credit demo database (:mod:`connectors.credit.demo`, tables in
:mod:`connectors.credit.tables`) and writes a fresh SQLite database with the tables of
:mod:`connectors.license.tables`. The content is a pure function of the credit data, ``seed``
and ``today`` (and the Python version, as for the credit demo): every random choice comes from a
``random.Random`` seeded with ``seed`` and the entity it concerns (a USCC, an ID number, an issuer
code), and signatures use deterministic nonces (:func:`connectors.license.signing.sign`).

What the data looks like:

* **enterprises**: one per credit subject, with its USCC, name and district. Its legal
  representative is the person its credit records name (``legal_rep_name`` /
  ``legal_rep_id_number``; the credit demo names the same person on every record of an
  enterprise; if real data names several, the latest record's wins), or a newly generated person
  for enterprises without records. Status mostly ``EXISTING``; ``REVOKED`` (吊销) is likelier for
  enterprises on a black list or the abnormal-operation list; a few ``CANCELLED`` (注销).
  Addresses on real streets of the district (``宁波市海曙区中山西路123号``), a GB/T 4754-2017
  industry read from the name's industry word, registered capital, an establishment date before
  the earliest credit record (after October 2015 for ``MA2…`` USCCs, which were issued since
  then; before it for the older organisation codes), a phone number.
* **persons**: the legal representatives; birth date from the ID number; living in the district
  of their ID number (the former 江东区 330204 is now 鄞州区) or, for ID numbers from outside
  Ningbo, the enterprise's.
* **licences**: every enterprise a ``BUSINESS_LICENSE`` (营业执照; number = USCC; issued by its
  district's market supervision bureau, by 宁波市市场监督管理局 for 股份有限公司; mostly
  long-term). About 30 % one more: ``FOOD_BUSINESS`` (食品经营许可证, ``JY1…`` sale / ``JY3…``
  canteen; the credit record's number where a 食品经营许可 record exists), ``CONSTRUCTION``
  (建筑工程施工许可证, 18 digits: district, date, sequence) or ``ROAD_TRANSPORT``
  (道路运输经营许可证, ``浙交运管许可甬字…号``; again the credit record's number where there is
  one). Every person a ``RESIDENT_ID`` (居民身份证; number = ID number; issued by the district's
  public security bureau; 5/10/20 years or long-term by age at issue, renewed shortly before expiry)
  and about 60 % a ``DRIVING_LICENSE`` (机动车驾驶证; the 12-digit file number; 6 years, then 10,
  then long-term; classes C1/C2/B2/A2). Licences of revoked or cancelled enterprises are
  ``REVOKED``; licences past ``valid_until`` are ``EXPIRED``; a few are ``SUSPENDED`` or
  ``REVOKED`` by their authority.
* **issuers**: every district market supervision bureau and public security bureau,
  宁波市市场监督管理局, 宁波市住房和城乡建设局, 宁波市交通运输局 and 宁波市公安局交通警察支队, each
  with a deterministic SM2 key pair; plus the inactive 宁波市江东区市场监督管理局 (江东区 was merged
  into 鄞州区 in 2016) whose key is retired.
* **demo cases**: every licence is signed by its issuer over
  :func:`~connectors.license.signing.canonical_bytes`; then a few are damaged on purpose, for
  verification tests: ``tampered`` (a signed field changed after signing: ``valid_until``
  extended or made long-term, or the scope edited), ``bad_signature`` (the signature replaced by
  another issuer's signature over the same fields) and ``unknown_issuer`` (business licences
  issued before 2016 by the retired 江东区 bureau). The table ``demo_cases`` (number, case) names
  the case of every licence; :data:`DEMO_CASE_VERDICTS` says which verdict each case must get.
  **``demo_cases`` exists only in demo databases**: it is not part of
  :mod:`connectors.license.tables` and nothing but tests may read it.

Speed: signatures dominate (~2 ms each in pure Python); with more than
:data:`POOL_THRESHOLD` of them they are made in a ``ProcessPoolExecutor`` (spawn context, chunks
of :data:`CHUNK` signatures). The default credit demo (2000 enterprises) gives about 5,600
licences: ~7-8 s on two cores, ~12 s in one process. A pool costs ~0.7 s to start (spawned
interpreters import this package), so smaller jobs are signed in-process.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import re
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

from sqlalchemy import Column, MetaData, String, Table, create_engine, insert, select

from connectors.credit.demo import SHANGHAI
from connectors.credit.tables import credit_records, credit_subjects
from connectors.identifiers import NINGBO_DISTRICTS, make_id_number
from connectors.license.signing import ALGORITHM, KeyPair, canonical_bytes, generate_keypair, sign
from connectors.license.tables import enterprises, issuers, licenses, metadata, persons

#: Demo case of a licence -> the verdict :func:`connectors.license.signing.verify_license` gives it.
DEMO_CASE_VERDICTS: Mapping[str, str] = MappingProxyType(
    {
        "ok": "VALID",
        "expired": "EXPIRED",
        "revoked": "REVOKED",
        "suspended": "SUSPENDED",
        "tampered": "TAMPERED",
        "bad_signature": "BAD_SIGNATURE",
        "unknown_issuer": "UNKNOWN_ISSUER",
    }
)

#: Only in demo databases: which demo case each licence number is (see the module docstring).
demo_metadata = MetaData()
demo_cases = Table(
    "demo_cases",
    demo_metadata,
    Column("number", String(64), primary_key=True),
    Column("case", String(16), nullable=False, index=True),
)

#: More signatures than this are made in a process pool (unless ``workers`` says otherwise). Below
#: it the pool's start-up (~0.7 s measured) costs more than the second core saves.
POOL_THRESHOLD = 1000
#: Signatures per pool task.
CHUNK = 250

# The retired issuer: 江东区 was merged into 鄞州区 in September 2016.
_RETIRED_ISSUER = ("AMR-330204", "宁波市江东区市场监督管理局")
_RETIRED_ON = date(2016, 9, 1)
# USCCs whose organisation code starts MA2 were issued in Zhejiang since October 2015.
_USCC_SINCE = date(2015, 10, 1)


@dataclass(frozen=True, slots=True)
class LicenseDemoStats:
    """What :func:`generate` wrote: row counts, signatures made, the database path and wall time."""

    enterprises: int
    persons: int
    licenses: int
    signatures: int
    seconds: float
    path: Path


# --- Vocabulary -------------------------------------------------------------------------------


class _Industry(NamedTuple):
    codes: tuple[tuple[str, str], ...]  # GB/T 4754-2017 (code, name)
    general: str  # 一般项目 of the business scope
    licensed: str  # 许可项目 ("" if none)
    other: str  # which other licence such an enterprise may hold
    p_other: float  # how likely it holds one


_INDUSTRIES: Mapping[str, _Industry] = MappingProxyType(
    {
        "科技": _Industry(
            (("M7519", "其他技术推广服务"),),
            "技术服务、技术开发、技术咨询、技术交流、技术转让、技术推广；软件开发；信息技术咨询服务",
            "",
            "canteen",
            0.08,
        ),
        "贸易": _Industry(
            (("F5199", "其他未列明批发业"), ("F5139", "其他家庭用品批发")),
            "日用百货销售；五金产品批发；电子产品销售；针纺织品销售；货物进出口",
            "",
            "food_sale",
            0.12,
        ),
        "机械": _Industry(
            (("C3499", "其他未列明通用设备制造业"),),
            "通用设备制造（不含特种设备制造）；机械零件、零部件加工；机械设备销售",
            "",
            "factory",
            0.25,
        ),
        "电子": _Industry(
            (("C3989", "其他电子元件制造"), ("C3982", "电子电路制造")),
            "电子元器件制造；电子元器件批发；电子产品销售",
            "",
            "factory",
            0.22,
        ),
        "电器": _Industry(
            (("C3854", "家用厨房电器具制造"), ("C3859", "其他家用电力器具制造")),
            "家用电器制造；家用电器销售；家用电器零配件销售",
            "",
            "factory",
            0.22,
        ),
        "食品": _Industry(
            (("C1499", "其他未列明食品制造"), ("F5129", "其他食品批发")),
            "食用农产品批发；农副产品销售",
            "食品经营",
            "food_sale",
            0.9,
        ),
        "物流": _Industry(
            (("G5431", "普通货物道路运输"), ("G5433", "集装箱道路运输")),
            "国内货物运输代理；普通货物仓储服务（不含危险化学品等需许可审批的项目）；装卸搬运",
            "道路货物运输（不含危险货物）",
            "transport",
            0.9,
        ),
        "建设": _Industry(
            (("E4710", "住宅房屋建筑"), ("E4790", "其他房屋建筑业")),
            "园林绿化工程施工；土石方工程施工；建筑材料销售",
            "建设工程施工",
            "construction",
            0.85,
        ),
        "服装": _Industry(
            (("C1810", "机织服装制造"), ("C1820", "针织或钩针编织服装制造")),
            "服装制造；服饰制造；服装服饰批发",
            "",
            "factory",
            0.2,
        ),
        "化工": _Industry(
            (("C2669", "其他专用化学产品制造"),),
            "专用化学产品制造（不含危险化学品）；化工产品销售（不含许可类化工产品）",
            "",
            "factory",
            0.25,
        ),
        "模具": _Industry(
            (("C3525", "模具制造"),),
            "模具制造；模具销售；塑料制品制造",
            "",
            "factory",
            0.2,
        ),
        "塑业": _Industry(
            (("C2929", "塑料零件及其他塑料制品制造"), ("C2927", "日用塑料制品制造")),
            "塑料制品制造；塑料制品销售",
            "",
            "factory",
            0.2,
        ),
        "进出口": _Industry(
            (("F5199", "其他未列明批发业"), ("F5179", "其他机械设备及电子产品批发")),
            "货物进出口；技术进出口；进出口代理；国内贸易代理",
            "",
            "food_sale",
            0.1,
        ),
        "文具": _Industry(
            (("C2411", "文具制造"), ("C2412", "笔的制造")),
            "文具制造；文具用品批发；办公用品销售",
            "",
            "factory",
            0.2,
        ),
        "家居用品": _Industry(
            (("C2927", "日用塑料制品制造"), ("C2110", "木质家具制造")),
            "家居用品制造；家居用品销售；日用品销售",
            "",
            "factory",
            0.2,
        ),
        "新材料": _Industry(
            (("C2659", "其他合成材料制造"), ("M7513", "新材料技术推广服务")),
            "新材料技术研发；合成材料制造（不含危险化学品）；合成材料销售",
            "",
            "factory",
            0.2,
        ),
        "汽车零部件": _Industry(
            (("C3670", "汽车零部件及配件制造"),),
            "汽车零部件及配件制造；汽车零配件批发",
            "",
            "factory",
            0.25,
        ),
        "五金": _Industry(
            (("C3329", "其他金属工具制造"), ("C3389", "其他金属制日用品制造")),
            "五金产品制造；五金产品批发；金属工具制造",
            "",
            "factory",
            0.2,
        ),
        "轴承": _Industry(
            (("C3451", "滚动轴承制造"),),
            "轴承制造；轴承销售；轴承、齿轮和传动部件制造",
            "",
            "factory",
            0.25,
        ),
        "包装": _Industry(
            (("C2231", "纸和纸板容器制造"), ("C2926", "塑料包装箱及容器制造")),
            "纸制品制造；包装材料及制品销售",
            "",
            "factory",
            0.2,
        ),
        "印刷": _Industry(
            (("C2319", "包装装潢及其他印刷"),),
            "纸制品销售；包装服务",
            "包装装潢印刷品印刷",
            "factory",
            0.2,
        ),
        "医药": _Industry(
            (("F5151", "西药批发"),),
            "第一类医疗器械销售；第二类医疗器械销售",
            "药品批发",
            "canteen",
            0.1,
        ),
        "水产": _Industry(
            (("C1361", "水产品冷冻加工"), ("F5124", "肉、禽、蛋、奶及水产品批发")),
            "水产品批发；水产品零售",
            "食品生产；食品经营",
            "food_sale",
            0.9,
        ),
        "信息技术": _Industry(
            (("I6513", "应用软件开发"), ("I6531", "信息系统集成服务")),
            "软件开发；信息系统集成服务；信息技术咨询服务；数据处理服务",
            "",
            "canteen",
            0.08,
        ),
        "环保科技": _Industry(
            (("M7516", "环保技术推广服务"),),
            "环保咨询服务；污水处理及其再生利用；技术服务、技术开发",
            "",
            "canteen",
            0.08,
        ),
        "工程": _Industry(
            (("E4813", "市政道路工程建筑"),),
            "市政设施管理；工程管理服务；园林绿化工程施工",
            "建设工程施工",
            "construction",
            0.85,
        ),
    }
)
# Farmers' cooperatives (…专业合作社): product -> GB/T 4754 class.
_COOP_PRODUCTS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "杨梅": ("A0159", "其他水果种植"),
        "水蜜桃": ("A0151", "仁果类和核果类水果种植"),
        "茶叶": ("A0164", "茶叶种植"),
        "蔬菜": ("A0141", "蔬菜种植"),
        "水产养殖": ("A0411", "海水养殖"),
        "花木": ("A0143", "花卉种植"),
        "柑橘": ("A0153", "柑橘类种植"),
        "竹笋": ("A0141", "蔬菜种植"),
        "葡萄": ("A0152", "葡萄种植"),
        "草莓": ("A0159", "其他水果种植"),
    }
)
_WORDS_LONGEST_FIRST = sorted(_INDUSTRIES, key=len, reverse=True)
_GENERAL_TAIL = "（除依法须经批准的项目外，凭营业执照依法自主开展经营活动）。"
_LICENSED_TAIL = "（依法须经批准的项目，经相关部门批准后方可开展经营活动，具体经营项目以审批结果为准）。"

# Real main roads of each district (the house numbers are invented).
_STREETS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "330203": ("中山西路", "解放南路", "望京路", "药行街", "柳汀街", "苍松路", "环城西路", "县前街", "望春路"),
        "330205": ("人民路", "大庆南路", "洪塘中路", "康庄南路", "北环西路", "环城北路", "倪家堰路", "育才路"),
        "330206": ("长江路", "岷山路", "泰山路", "黄山西路", "华山路", "新大路", "庐山东路", "明州路"),
        "330211": ("车站路", "沿江东路", "庄市大道", "城河东路", "聚兴东路", "镇宁东路", "明海南路"),
        "330212": ("天童南路", "钱湖北路", "四明中路", "首南中路", "鄞县大道", "中河路", "宁南北路", "日丽中路"),
        "330213": ("南山路", "大成东路", "中山路", "金海路", "长汀路", "岳林东路"),
        "330225": ("丹峰西路", "靖南大街", "天安路", "象山港路", "新华路"),
        "330226": ("桃源北路", "兴宁北路", "金水路", "气象北路", "时代大道"),
        "330281": ("阳明西路", "新建北路", "世南西路", "南雷南路", "谭家岭东路", "舜水北路"),
        "330282": ("三北大街", "新城大道北路", "孙塘南路", "慈甬路", "北三环东路", "青少年宫北路"),
    }
)
_SURNAMES = "陈陈陈王王王张张李李徐徐胡周周林林杨黄赵吴刘孙朱郭何郑梁谢沈沈叶叶陆金金方邵邵毛应应邬俞俞舒虞竺钱戴"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国文斌辉波宁海红玲鹏飞浩宇俊婷晨峰亮燕萍雪琳欣佳立志忠良"
# Where generated people's ID numbers were first issued, outside the enterprise's district.
_OTHER_ID_PREFIXES = ("330102", "330106", "330302", "330381", "330402", "330602", "330682", "330782", "331002")
_DRIVING_CLASSES = (("C1", 72), ("C2", 14), ("B2", 8), ("A2", 6))
_CONSTRUCTION_PROJECTS = {
    "factory": ("新建厂房工程", "车间扩建工程", "综合楼新建工程", "技改项目厂房工程"),
    "construction": ("安置房工程", "住宅小区工程", "市政道路改造工程", "学校新建工程", "农贸市场改造工程"),
}


# --- Helpers ----------------------------------------------------------------------------------


def _add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February in a non-leap target year
        return d.replace(year=d.year + years, day=28)


def _local_prefix(adcode: str) -> str:
    """宁波市海曙区 for districts, 余姚市 / 象山县 for county-level cities and counties."""
    cn = NINGBO_DISTRICTS[adcode][0]
    return f"宁波市{cn}" if cn.endswith("区") else cn


def _police(adcode: str) -> str:
    """宁波市公安局海曙分局 for districts, 余姚市公安局 for county-level cities and counties."""
    cn = NINGBO_DISTRICTS[adcode][0]
    return f"宁波市公安局{cn[:-1]}分局" if cn.endswith("区") else f"{cn}公安局"


def _rng(seed: int, *parts: str) -> random.Random:
    # String seeds are hashed with SHA-512: stable across runs and Python versions.
    return random.Random(":".join(("citygraph-license", str(seed), *parts)))  # noqa: S311 - demo data


def _day_between(rng: random.Random, lo: date, hi: date) -> date:
    return lo if hi <= lo else lo + timedelta(days=rng.randint(0, (hi - lo).days))


def _scope(general: str, licensed: str) -> str:
    text = f"一般项目：{general}{_GENERAL_TAIL}"
    return f"许可项目：{licensed}{_LICENSED_TAIL}{text}" if licensed else text


def _street_address(rng: random.Random, district: str) -> str:
    return f"{_local_prefix(district)}{rng.choice(_STREETS[district])}{rng.randint(1, 999)}号"


def _home_address(rng: random.Random, district: str) -> str:
    base = f"{_local_prefix(district)}{rng.choice(_STREETS[district])}{rng.randint(1, 600)}"
    if rng.random() < 0.5:
        return f"{base}弄{rng.randint(1, 40)}号{rng.randint(1, 18)}0{rng.randint(1, 4)}室"
    return f"{base}号{rng.randint(1, 30)}幢{rng.randint(1, 4)}单元{rng.randint(1, 26)}0{rng.randint(1, 4)}室"


def _mobile(rng: random.Random) -> str:
    return f"1{rng.choice('35789')}{rng.randint(0, 999_999_999):09d}"


# --- Reading the credit demo ------------------------------------------------------------------


@dataclass(slots=True)
class _Subject:
    uscc: str
    name: str
    district: str
    rep: tuple[str, str] | None = None  # (name, ID number) of the latest record
    earliest: date | None = None
    kinds: set[str] = field(default_factory=set)
    # (type, number, decided, scope) of licences the credit platform lists
    licences: list[tuple[str, str, date, str]] = field(default_factory=list)


_SCOPE_IN_CONTENT = re.compile(r"许可内容：(.+?)，有效期自")


def _read_credit(credit_db: Path) -> list[_Subject]:
    if not credit_db.is_file():
        raise FileNotFoundError(f"credit demo database not found: {credit_db}")
    uri = credit_db.resolve().as_uri() + "?mode=ro"
    engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True))
    try:
        with engine.connect() as conn:
            subjects = {
                r.uscc: _Subject(r.uscc, r.name, r.district_code)
                for r in conn.execute(select(credit_subjects).order_by(credit_subjects.c.uscc))
            }
            c = credit_records.c
            query = select(
                c.uscc, c.kind, c.title, c.content, c.decision_number, c.decision_date, c.legal_rep_name
            ).add_columns(c.legal_rep_id_number)
            for r in conn.execute(query.order_by(c.uscc, c.decision_date, c.id)):
                s = subjects.get(r.uscc)
                if s is None:
                    continue
                s.rep = (r.legal_rep_name, r.legal_rep_id_number)
                if s.earliest is None:
                    s.earliest = r.decision_date
                s.kinds.add(r.kind)
                found = _SCOPE_IN_CONTENT.search(r.content)
                scope = found.group(1) if found else r.title
                if r.title == "食品经营许可" and r.decision_number.startswith("JY"):
                    s.licences.append(("FOOD_BUSINESS", r.decision_number, r.decision_date, scope))
                elif r.title == "道路运输经营许可":
                    s.licences.append(("ROAD_TRANSPORT", r.decision_number, r.decision_date, scope))
    finally:
        engine.dispose()
    return list(subjects.values())


# --- Generation -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Licence:
    number: str
    type: str
    holder_kind: str
    holder: str
    issuer_code: str
    issued_on: date
    valid_from: date
    valid_until: date | None
    status: str
    scope: str
    district: str
    signature: str = ""
    case: str = "ok"

    def fields(self) -> dict[str, object]:
        return {
            "number": self.number,
            "type": self.type,
            "holder_kind": self.holder_kind,
            "holder": self.holder,
            "issuer_code": self.issuer_code,
            "issued_on": self.issued_on,
            "valid_from": self.valid_from,
            "valid_until": self.valid_until,
            "scope": self.scope,
        }

    def row(self) -> dict[str, object]:
        enterprise = self.holder_kind == "ENTERPRISE"
        return {
            "number": self.number,
            "type": self.type,
            "holder_kind": self.holder_kind,
            "holder_uscc": self.holder if enterprise else None,
            "holder_id_number": None if enterprise else self.holder,
            "issuer_code": self.issuer_code,
            "issued_on": self.issued_on,
            "valid_from": self.valid_from,
            "valid_until": self.valid_until,
            "status": self.status,
            "scope": self.scope,
            "district_code": self.district,
            "signature": self.signature,
            "sign_version": 1,
        }


def _issuer_catalogue() -> list[tuple[str, str, bool]]:
    """(code, name, active) of every issuing authority, in a fixed order."""
    out = [(f"AMR-{ad}", f"{_local_prefix(ad)}市场监督管理局", True) for ad in NINGBO_DISTRICTS]
    out += [
        ("AMR-3302", "宁波市市场监督管理局", True),
        ("HCD-3302", "宁波市住房和城乡建设局", True),
        ("TRANSPORT-3302", "宁波市交通运输局", True),
    ]
    out += [(f"PSB-{ad}", _police(ad), True) for ad in NINGBO_DISTRICTS]
    out += [("TRAFFIC-3302", "宁波市公安局交通警察支队", True), (*_RETIRED_ISSUER, False)]
    return out


class _Generator:
    def __init__(self, seed: int, today: date) -> None:
        self.seed = seed
        self.today = today
        self.persons: dict[str, dict[str, object]] = {}
        self.enterprises: list[dict[str, object]] = []
        self.licences: dict[str, _Licence] = {}
        self.births: dict[str, date] = {}

    def _unique(self, rng: random.Random, make: Callable[[random.Random], str]) -> str:
        while True:
            number = make(rng)
            if number not in self.licences:
                return number

    def _add(self, licence: _Licence) -> None:
        if licence.number in self.licences:  # formats differ by type; a clash would be a generator bug
            raise RuntimeError(f"licence number {licence.number!r} generated twice")
        if licence.status == "VALID" and licence.valid_until is not None and licence.valid_until < self.today:
            licence.status = "EXPIRED"
        licence.case = {"VALID": "ok", "EXPIRED": "expired", "REVOKED": "revoked", "SUSPENDED": "suspended"}[
            licence.status
        ]
        self.licences[licence.number] = licence

    # People ---------------------------------------------------------------------------------

    def person(self, id_number: str, name: str, fallback_district: str) -> None:
        if id_number in self.persons:  # a person representing two enterprises: the first name stays
            return
        rng = _rng(self.seed, "person", id_number)
        prefix = id_number[:6]
        district = prefix if prefix in NINGBO_DISTRICTS else "330212" if prefix == "330204" else fallback_district
        birth = date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
        self.births[id_number] = birth
        self.persons[id_number] = {
            "id_number": id_number,
            "name": name,
            "birth_date": birth,
            "phone": _mobile(rng),
            "address": _home_address(rng, district),
            "district_code": district,
        }
        self._resident_id(rng, id_number, birth, district)
        if rng.random() < 0.6:
            self._driving_licence(rng, id_number, birth, district)

    def _new_person(self, rng: random.Random, district: str) -> str:
        while True:
            prefix = district if rng.random() < 0.7 else rng.choice(_OTHER_ID_PREFIXES)
            birth = _day_between(rng, date(1960, 1, 1), date(1998, 12, 31))
            id_number = make_id_number(prefix, birth, rng.randint(1, 999))
            if id_number not in self.persons:
                break
        given = rng.choice(_GIVEN) + (rng.choice(_GIVEN) if rng.random() < 0.7 else "")
        self.person(id_number, rng.choice(_SURNAMES) + given, district)
        return id_number

    def _resident_id(self, rng: random.Random, id_number: str, birth: date, district: str) -> None:
        # First card at 16 (a little later for some); renewed shortly before each expiry, for
        # 5 / 10 / 20 years or long-term by age at issue; a few people let theirs lapse.
        issued = min(_add_years(birth, 16) + timedelta(days=rng.randint(0, 700)), self.today - timedelta(days=1))
        until: date | None
        while True:
            age = issued.year - birth.year - ((issued.month, issued.day) < (birth.month, birth.day))
            years = 5 if age < 16 else 10 if age <= 25 else 20 if age <= 45 else None
            until = None if years is None else _add_years(issued, years)
            if until is None or until >= self.today or rng.random() < 0.03:
                break
            issued = until - timedelta(days=rng.randint(0, 90))
        self._add(
            _Licence(
                number=id_number,
                type="RESIDENT_ID",
                holder_kind="PERSON",
                holder=id_number,
                issuer_code=f"PSB-{district}",
                issued_on=issued,
                valid_from=issued,
                valid_until=until,
                status="VALID",
                scope="",
                district=district,
            )
        )

    def _driving_licence(self, rng: random.Random, id_number: str, birth: date, district: str) -> None:
        first = _add_years(birth, 18) + timedelta(days=rng.randint(0, 25 * 365))
        if first >= self.today - timedelta(days=30):
            return
        # 6 years, then 10, then long-term; a few let theirs lapse.
        start = first
        until: date | None = _add_years(first, 6)
        for years in (10, None):
            if until is None or until >= self.today or rng.random() < 0.03:
                break
            start = until
            until = None if years is None else _add_years(start, years)
        cls = rng.choices([c for c, _ in _DRIVING_CLASSES], [w for _, w in _DRIVING_CLASSES])[0]
        roll = rng.random()
        status = "SUSPENDED" if roll < 0.02 else "REVOKED" if roll < 0.03 else "VALID"
        number = self._unique(rng, lambda r: f"3302{r.randint(0, 99_999_999):08d}")
        self._add(
            _Licence(
                number=number,
                type="DRIVING_LICENSE",
                holder_kind="PERSON",
                holder=id_number,
                issuer_code="TRAFFIC-3302",
                issued_on=start,
                valid_from=start,
                valid_until=until,
                status=status,
                scope=cls,
                district=district,
            )
        )

    # Enterprises ----------------------------------------------------------------------------

    def enterprise(self, s: _Subject) -> None:
        rng = _rng(self.seed, "enterprise", s.uscc)
        today = self.today
        if s.rep is not None:
            self.person(s.rep[1], s.rep[0], s.district)
            rep_id = s.rep[1]
        else:
            rep_id = self._new_person(rng, s.district)
        rep_birth = self.births[rep_id]

        coop = s.name.endswith("专业合作社")
        product = next((p for p in _COOP_PRODUCTS if p in s.name), "蔬菜") if coop else ""
        # 宁波 + trade name + industry word + 有限公司 / 股份有限公司 (credit demo names).
        stem = s.name.removesuffix("有限公司").removesuffix("股份")
        word = next((w for w in _WORDS_LONGEST_FIRST if stem.endswith(w)), None)
        if coop:
            industry_code, industry_name = _COOP_PRODUCTS[product]
            industry = _Industry(
                ((industry_code, industry_name),),
                f"组织采购、供应成员所需的农业生产资料；组织收购、销售成员生产的{product}；"
                f"开展与{product}生产经营有关的技术培训、技术交流和信息咨询服务",
                "",
                "food_sale",
                0.05,
            )
        else:
            industry = _INDUSTRIES[word] if word is not None else _INDUSTRIES[rng.choice(_WORDS_LONGEST_FIRST)]
            industry_code, industry_name = rng.choice(industry.codes)

        # Established at least a month before the first credit record; MA2 codes since 2015-10,
        # older organisation codes before then; the representative of age (clamped if impossible).
        hi = (s.earliest or today) - timedelta(days=30)
        if s.uscc[8:11] == "MA2":
            lo = _USCC_SINCE
        else:
            lo, hi = date(1993, 1, 1), min(hi, _USCC_SINCE - timedelta(days=1))
        lo = max(lo, _add_years(rep_birth, 18))
        established = _day_between(rng, min(lo, hi), hi)

        p_revoked = 0.2 if "BLACK_LIST" in s.kinds else 0.08 if "ABNORMAL_OPERATION" in s.kinds else 0.015
        roll = rng.random()
        status = "REVOKED" if roll < p_revoked else "CANCELLED" if roll < p_revoked + 0.02 else "EXISTING"
        joint_stock = s.name.endswith("股份有限公司")
        if coop:
            wan = rng.choice((10, 20, 30, 50, 100, 200))
        elif joint_stock:
            wan = rng.choice((1000, 2000, 3000, 5000, 8000, 10000, 20000))
        else:
            wan = rng.choice((10, 30, 50, 100, 100, 200, 300, 500, 500, 1000, 1000, 2000, 3000, 5000))
        phone = f"0574-{rng.choice('8866')}{rng.randint(0, 9_999_999):07d}" if rng.random() < 0.7 else _mobile(rng)
        self.enterprises.append(
            {
                "uscc": s.uscc,
                "name": s.name,
                "legal_rep_id_number": rep_id,
                "address": _street_address(rng, s.district),
                "district_code": s.district,
                "industry_code": industry_code,
                "industry_name": industry_name,
                "registered_capital": Decimal(wan * 10_000).quantize(Decimal("0.01")),
                "established_on": established,
                "status": status,
                "phone": phone,
            }
        )

        # 营业执照: re-issued on a change of registration for many; long-term for most.
        issued = established if rng.random() < 0.4 else _day_between(rng, established, today - timedelta(days=1))
        until = None
        if rng.random() < 0.15:
            until = _add_years(established, rng.choice((20, 30, 50))) - timedelta(days=1)
            if until < today:
                until = None  # the term was extended when it ran out
        alive = status == "EXISTING"
        self._add(
            _Licence(
                number=s.uscc,
                type="BUSINESS_LICENSE",
                holder_kind="ENTERPRISE",
                holder=s.uscc,
                issuer_code="AMR-3302" if joint_stock else f"AMR-{s.district}",
                issued_on=issued,
                valid_from=established,
                valid_until=until,
                status="VALID" if alive else "REVOKED",
                scope=_scope(industry.general, industry.licensed),
                district=s.district,
            )
        )
        self._other_licence(rng, s, industry, established, alive)

    def _other_licence(
        self, rng: random.Random, s: _Subject, industry: _Industry, established: date, alive: bool
    ) -> None:
        today = self.today
        from_credit = [lic for lic in s.licences if lic[1] not in self.licences]
        if from_credit:
            kind, number, issued, scope = from_credit[-1]
            other = "food_sale" if kind == "FOOD_BUSINESS" else "transport"
        elif rng.random() < industry.p_other:
            other = industry.other
            if other == "factory":
                other = "construction" if rng.random() < 0.5 else "canteen"
            number, scope = "", ""
            issued = today
        else:
            return
        if other in ("food_sale", "canteen"):
            kind = "FOOD_BUSINESS"
            if not number:
                issued = max(established, today - timedelta(days=rng.randint(0, 5 * 365 + 60)))
                head = "1" if other == "food_sale" else "3"
                number = self._unique(
                    rng, lambda r: f"JY{head}{s.district}{r.randint(0, 999_999):06d}{r.randint(0, 9)}"
                )
                scope = (
                    "预包装食品（含冷藏冷冻食品）销售，散装食品（含冷藏冷冻食品）销售"
                    if other == "food_sale"
                    else "热食类食品制售（单位食堂）"
                )
            issuer, until = f"AMR-{s.district}", _add_years(issued, 5) - timedelta(days=1)
        elif other == "transport":
            kind = "ROAD_TRANSPORT"
            if not number:
                issued = max(established, today - timedelta(days=rng.randint(0, 4 * 365 + 60)))
                number = self._unique(rng, lambda r: f"浙交运管许可甬字{s.district}{r.randint(0, 999_999):06d}号")
                scope = rng.choice(
                    ("道路普通货物运输", "道路普通货物运输，货物专用运输（集装箱）", "道路普通货物运输，大型物件运输")
                )
            issuer, until = "TRANSPORT-3302", _add_years(issued, 4) - timedelta(days=1)
        else:
            kind = "CONSTRUCTION"
            issued = max(established, today - timedelta(days=rng.randint(0, 2 * 365)))
            number = self._unique(rng, lambda r: f"{s.district}{issued:%Y%m%d}{r.randint(1, 9999):04d}")
            days = rng.randint(360, 1080)  # valid for the contracted construction period (合同工期)
            project = rng.choice(_CONSTRUCTION_PROJECTS["factory" if industry.other == "factory" else "construction"])
            area = rng.randint(2_000, 60_000) + rng.randint(0, 9) / 10
            owner = s.name.removesuffix("有限公司").removesuffix("股份")
            scope = f"{owner}{project}，建筑面积{area:.1f}平方米，合同工期{days}天"
            issuer, until = "HCD-3302", issued + timedelta(days=days)
        roll = rng.random()
        status = "REVOKED" if not alive or roll < 0.02 else "SUSPENDED" if roll < 0.05 else "VALID"
        self._add(
            _Licence(
                number=number,
                type=kind,
                holder_kind="ENTERPRISE",
                holder=s.uscc,
                issuer_code=issuer,
                issued_on=issued,
                valid_from=issued,
                valid_until=until,
                status=status,
                scope=scope,
                district=s.district,
            )
        )

    # Demo cases -----------------------------------------------------------------------------

    def choose_cases(self) -> tuple[list[_Licence], list[_Licence]]:
        """Mark unknown_issuer licences (re-issued by the retired bureau before signing) and
        choose the tampered and bad_signature ones (damaged after signing); returns those two."""
        rng = _rng(self.seed, "cases")
        ok = [self.licences[n] for n in sorted(self.licences) if self.licences[n].case == "ok"]
        total = len(self.licences)

        # Business licences issued by 江东区 before it was merged (Yinzhou first).
        retired = [
            lic
            for lic in ok
            if lic.type == "BUSINESS_LICENSE" and lic.issuer_code != "AMR-3302" and lic.valid_from < _RETIRED_ON
        ]
        retired.sort(key=lambda lic: (lic.district != "330212", lic.number))
        for lic in retired[: max(2, total // 3000)]:
            lic.case = "unknown_issuer"
            lic.issuer_code = _RETIRED_ISSUER[0]
            lic.issued_on = _day_between(rng, lic.valid_from, _RETIRED_ON - timedelta(days=1))

        remaining = [lic for lic in ok if lic.case == "ok"]
        picked = rng.sample(remaining, min(len(remaining), max(3, total // 1000) + max(2, total // 1500)))
        tampered, bad = picked[: max(3, total // 1000)], picked[max(3, total // 1000) :]
        for lic in tampered:
            lic.case = "tampered"
        for lic in bad:
            lic.case = "bad_signature"
        return tampered, bad


def _tamper(lic: _Licence, variant: int) -> None:
    """Change a signed field the way a forger would: a longer validity or a wider scope."""
    if variant % 2 == 0 and lic.valid_until is not None:
        lic.valid_until = _add_years(lic.valid_until, 10)
    elif lic.type == "DRIVING_LICENSE":
        lic.scope = "A1"
    elif lic.type == "RESIDENT_ID":
        lic.valid_until = None if lic.valid_until is not None else date(2099, 12, 31)
    else:
        lic.scope += "危险化学品经营（不带储存设施）。"


# --- Signing ----------------------------------------------------------------------------------


def _sign_chunk(chunk: Sequence[tuple[str, str, bytes]]) -> list[str]:
    """Pool task: deterministic SM2 signatures of (private, public, data) triples."""
    return [sign(private, public, data, deterministic=True) for private, public, data in chunk]


@contextmanager
def _progress_bar(enabled: bool, total: int) -> Iterator[Callable[[int], None]]:
    if not enabled:
        yield lambda _n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    ) as bar:
        task = bar.add_task("license demo: signatures", total=total)
        yield lambda n: bar.advance(task, n)


def _sign_all(items: Sequence[tuple[str, str, bytes]], workers: int | None, progress: bool) -> list[str]:
    chunks = [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
    if workers is None:
        workers = (os.cpu_count() or 1) if len(items) > POOL_THRESHOLD else 1
    workers = max(1, min(workers, len(chunks)))
    out: list[str] = []
    with _progress_bar(progress, len(items)) as advance:
        if workers == 1:
            for chunk in chunks:
                out += _sign_chunk(chunk)
                advance(len(chunk))
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                for chunk, signed in zip(chunks, pool.map(_sign_chunk, chunks), strict=True):
                    out += signed
                    advance(len(chunk))
    return out


# --- Writing ----------------------------------------------------------------------------------


def generate(
    path: Path,
    *,
    credit_db: Path,
    seed: int = 7,
    today: date | None = None,
    progress: bool = False,
    workers: int | None = None,
) -> LicenseDemoStats:
    """Write a fresh demo license database at ``path`` from the credit demo at ``credit_db``.

    Replaces any existing file: the database is built in a temporary file next to ``path`` and
    moved into place with ``os.replace`` (stale ``-wal``/``-shm``/``-journal`` files of the old
    one are removed first; nothing may hold it open). ``today`` defaults to the current date in
    Asia/Shanghai; use the credit demo's ``today``. ``workers``: signing processes (default: one
    per CPU when there are more than :data:`POOL_THRESHOLD` signatures; 1 signs in this process).
    The content does not depend on ``workers``.
    """
    started = time.perf_counter()
    path, credit_db = Path(path), Path(credit_db)
    today = today if today is not None else datetime.now(SHANGHAI).date()
    subjects = _read_credit(credit_db)

    gen = _Generator(seed, today)
    for subject in subjects:
        gen.enterprise(subject)
    tampered, bad = gen.choose_cases()

    catalogue = _issuer_catalogue()
    keys: dict[str, KeyPair] = {code: generate_keypair(_rng(seed, "issuer", code)) for code, _, _ in catalogue}
    ordered = [gen.licences[n] for n in sorted(gen.licences)]
    items = [
        (keys[lic.issuer_code].private_hex, keys[lic.issuer_code].public_hex, canonical_bytes(lic.fields()))
        for lic in ordered
    ]
    for lic, signature in zip(ordered, _sign_all(items, workers, progress), strict=True):
        lic.signature = signature
    signatures = len(items)

    for i, lic in enumerate(tampered):
        _tamper(lic, i)
    active = [code for code, _, is_active in catalogue if is_active]
    for lic in bad:  # signed over the same fields, with the next active issuer's key
        wrong = keys[active[(active.index(lic.issuer_code) + 1) % len(active)]]
        lic.signature = sign(wrong.private_hex, wrong.public_hex, canonical_bytes(lic.fields()), deterministic=True)
        signatures += 1

    issuer_rows = [
        {"code": code, "name": name, "algorithm": ALGORITHM, "public_key": keys[code].public_hex, "active": is_active}
        for code, name, is_active in catalogue
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _write(
            tmp,
            person_rows=[gen.persons[k] for k in sorted(gen.persons)],
            issuer_rows=issuer_rows,
            enterprise_rows=sorted(gen.enterprises, key=lambda e: str(e["uscc"])),
            licences=ordered,
        )
        with open(tmp, "rb") as f:  # durable before it becomes visible under the real name
            os.fsync(f.fileno())
        for suffix in ("-wal", "-shm", "-journal"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return LicenseDemoStats(
        enterprises=len(gen.enterprises),
        persons=len(gen.persons),
        licenses=len(ordered),
        signatures=signatures,
        seconds=time.perf_counter() - started,
        path=path,
    )


def _write(
    db: Path,
    *,
    person_rows: list[dict[str, object]],
    issuer_rows: list[dict[str, object]],
    enterprise_rows: list[dict[str, object]],
    licences: list[_Licence],
) -> None:
    engine = create_engine(f"sqlite:///{db}")
    try:
        metadata.create_all(engine)
        demo_metadata.create_all(engine)
        with engine.begin() as conn:
            # Parents first, so the foreign keys hold at every point.
            conn.execute(insert(persons), person_rows)
            conn.execute(insert(issuers), issuer_rows)
            conn.execute(insert(enterprises), enterprise_rows)
            if licences:
                conn.execute(insert(licenses), [lic.row() for lic in licences])
                conn.execute(insert(demo_cases), [{"number": lic.number, "case": lic.case} for lic in licences])
    finally:
        engine.dispose()


__all__ = [
    "CHUNK",
    "DEMO_CASE_VERDICTS",
    "demo_cases",
    "demo_metadata",
    "generate",
    "LicenseDemoStats",
    "POOL_THRESHOLD",
]
