"""Deterministic, realistic demo data for the credit platform (Ningbo enterprises).

:func:`generate` writes a fresh SQLite database with the tables of
:mod:`connectors.credit.tables`. The content is a pure function of ``(scale, seed, today)`` and
the Python version (``random.Random``'s derived methods are stable in practice but only
``random()`` is guaranteed across versions): one ``random.Random(seed)``, no global random
state, no clock reads except the ``today`` default. ``today`` only moves dates (and so which
records are still public, and ratings): the enterprises and their records' kinds and titles
stay the same, so demo databases built on different days describe the same companies.

What the data looks like:

* ``scale`` enterprises with valid USCCs (authority ``9``; type ``1`` companies, a few ``3``
  farmers' cooperatives) whose division code is one of :data:`NINGBO_DISTRICTS`, weighted by
  rough economic size, and whose organisation code carries a correct GB 11714 check character.
  Names are unique: ``宁波`` + trade name + industry + ``有限公司``/``股份有限公司``; cooperatives
  are named after their county like real ones (``余姚市…杨梅专业合作社``).
* one profile each: rating A-D (mostly A/B; worse if the enterprise has black-list or abnormal
  records still in publicity), a score inside the rating's :data:`RATING_BANDS` band, and
  ``assessed_at`` within the year before ``today``.
* ~3 records per enterprise on average (gamma-Poisson: a quarter have none, about 1 % have 15+),
  sorted by decision date per enterprise, decided within the 5 years before ``today``, with
  publicity periods per kind so that roughly 45 % have ended by ``today``. ``publicity_end`` is
  the *last* day of publicity (inclusive): a record is past publicity iff ``publicity_end < today``.
  Every record of an enterprise names the same legal representative, with a valid ID number.

Storage follows SQLAlchemy's SQLite dialect exactly (rows are written through the column types'
own bind processors): dates as ISO text, ``assessed_at`` as naive UTC text (the dialect drops the
offset, so readers re-attach UTC), amounts as floats that read back as 2-place ``Decimal``.
Authorities, document numbers and licence numbers follow real formats but are invented.
"""

from __future__ import annotations

import math
import os
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time as dtime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Column, Table, create_engine
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateIndex, DropIndex

from connectors.credit.tables import credit_profiles, credit_records, credit_subjects, metadata
from connectors.identifiers import NINGBO_DISTRICTS, USCC_ALPHABET, make_id_number, make_uscc

# China has had no daylight saving since 1991, so a fixed offset is exactly Asia/Shanghai and
# needs no tzdata on the host.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")

#: Inclusive score range per rating.
RATING_BANDS: dict[str, tuple[int, int]] = {"A": (850, 1000), "B": (700, 849), "C": (550, 699), "D": (0, 549)}

_CHUNK = 10_000

# --- Vocabulary -------------------------------------------------------------------------------

# Rough share of Ningbo's enterprises per district (GDP-like; Yinzhou, Beilun and Cixi lead).
_DISTRICT_WEIGHTS = {
    "330203": 12,
    "330205": 7,
    "330206": 15,
    "330211": 8,
    "330212": 19,
    "330213": 6,
    "330225": 5,
    "330226": 6,
    "330281": 10,
    "330282": 12,
}
# Prefixes of document numbers issued by district bodies (甬海市监罚〔2025〕123号, 余市监罚…).
_DOC_ABBR = {
    "330203": "甬海",
    "330205": "甬江",
    "330206": "甬仑",
    "330211": "甬镇",
    "330212": "甬鄞",
    "330213": "甬奉",
    "330225": "象",
    "330226": "宁",
    "330281": "余",
    "330282": "慈",
}

_TRADE_SYLLABLES = (
    "华金鑫瑞恒泰宏达兴隆盛昌信诚德汇通远博创嘉禾丰源海天宇明新力腾飞星辰安康顺正和美万东方亚中甬浙越港"
    "联合锦绣鸿运祥福佳乐益升发展卓越永立凯旋富豪荣宝光大精工智慧蓝图银河春秋雅阳晨启航振峰腾龙凤舜"
)
_INDUSTRIES: tuple[tuple[str, int], ...] = (
    ("科技", 14),
    ("贸易", 12),
    ("机械", 8),
    ("电子", 7),
    ("电器", 6),
    ("食品", 5),
    ("物流", 5),
    ("建设", 4),
    ("服装", 5),
    ("化工", 3),
    ("模具", 5),
    ("塑业", 4),
    ("进出口", 6),
    ("文具", 2),
    ("家居用品", 3),
    ("新材料", 3),
    ("汽车零部件", 4),
    ("五金", 4),
    ("轴承", 2),
    ("包装", 2),
    ("印刷", 1),
    ("医药", 1),
    ("水产", 1),
    ("信息技术", 3),
    ("环保科技", 2),
    ("工程", 3),
)
_MANUFACTURING = frozenset(
    {
        "机械",
        "电子",
        "电器",
        "服装",
        "化工",
        "模具",
        "塑业",
        "文具",
        "家居用品",
        "新材料",
        "汽车零部件",
        "五金",
    }
    | {"轴承", "包装", "印刷", "食品", "水产", "医药"}
)
_TRADING = frozenset({"贸易", "进出口", "电子", "电器", "文具", "模具", "汽车零部件", "服装", "家居用品"})
_COOP_PRODUCTS = ("杨梅", "水蜜桃", "茶叶", "蔬菜", "水产养殖", "花木", "柑橘", "竹笋", "葡萄", "草莓")

# Weighted towards Ningbo's common surnames (陈 王 张 李 徐 胡 周 林 …, plus local 应 邬 俞 竺).
_SURNAMES = (
    "陈陈陈陈王王王王张张张李李李徐徐徐胡胡周周周林林杨杨黄赵吴吴刘刘孙马朱郭何罗郑梁谢宋唐许韩冯"
    "邓曹彭曾肖田董袁潘蒋蔡余杜叶叶程魏苏吕丁任沈沈姚卢姜崔钟谭陆陆汪范金金石贾夏方方邹邵邵毛"
    "应应邬俞俞舒虞史竺钱严戴孔汤屠裘"
)
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国文斌辉波宁海红玲鹏飞浩宇俊婷晨峰亮燕萍雪琳欣佳立志忠良"
# Where legal representatives' ID numbers were issued: Ningbo (including the former 江东区 330204,
# which still appears on older cards) and elsewhere in Zhejiang.
_ID_PREFIXES = (
    ("330203", 8),
    ("330204", 5),
    ("330205", 4),
    ("330206", 6),
    ("330211", 4),
    ("330212", 9),
    ("330213", 3),
    ("330225", 3),
    ("330226", 3),
    ("330281", 5),
    ("330282", 6),
    ("330102", 2),
    ("330106", 2),
    ("330302", 3),
    ("330381", 2),
    ("330402", 1),
    ("330602", 2),
    ("330682", 2),
    ("330702", 1),
    ("330782", 2),
    ("330902", 2),
    ("331002", 2),
    ("331082", 2),
    ("331102", 1),
)

_KINDS: tuple[tuple[str, int], ...] = (
    ("ADMINISTRATIVE_LICENSE", 42),
    ("ADMINISTRATIVE_PENALTY", 25),
    ("RED_LIST", 18),
    ("ABNORMAL_OPERATION", 10),
    ("BLACK_LIST", 5),
)

_NOTES_GENERAL = (
    "重点监管对象",
    "已约谈法定代表人",
    "涉及群众投诉",
    "已纳入双随机抽查重点名单",
    "当事人已申请信用修复",
)
_NOTES_BY_KIND = {
    "ADMINISTRATIVE_PENALTY": ("罚款已缴清", "当事人已申请行政复议", "已移送公安机关", "分期缴纳罚款中"),
    "BLACK_LIST": ("已移送公安机关", "联合惩戒对象", "已限制高消费", "法定代表人已被限制出境"),
    "ABNORMAL_OPERATION": ("住所核查未见经营", "已责令限期改正", "多次电话联系未果"),
    "ADMINISTRATIVE_LICENSE": ("许可证即将到期", "已提交延续申请"),
    "RED_LIST": ("拟推荐省级示范企业",),
}


@dataclass(frozen=True, slots=True)
class DemoStats:
    """What :func:`generate` wrote: row counts, the database path and the wall time it took."""

    enterprises: int
    records: int
    path: Path
    seconds: float


@dataclass(frozen=True, slots=True)
class _Enterprise:
    uscc: str
    name: str
    adcode: str
    industry: str
    rep_name: str
    rep_id: str


# A record before storage: kind, title, content, authority, number, decided, publicity years,
# amount, note.
_Row = tuple[str, str, str, str, str, date, int, Decimal | None, str | None]


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


def _yuan(amount: Decimal) -> str:
    return f"{amount:.2f}".removesuffix(".00")


class _Counters:
    """Per-(series, year) document sequence numbers: increasing with gaps, never repeated."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._next: dict[tuple[str, int], int] = {}

    def take(self, series: str, year: int) -> int:
        n = self._next.get((series, year), 0) + self._rng.randint(1, 3)
        self._next[(series, year)] = n
        return n


# --- Record builders --------------------------------------------------------------------------
# Each returns (title, content, authority, decision_number, publicity_years, amount).

_Built = tuple[str, str, str, str, int, Decimal | None]
_Builder = Callable[[random.Random, _Enterprise, date, _Counters], _Built]


class _Offence(NamedTuple):
    title: str
    authority: str  # which kind of body: amr, tax, eco, safety, transport, hrss
    provision: str  # the rule broken
    basis: str  # the rule the penalty rests on
    fact: str  # template: {prev} last year, {product}, {claim}
    fine: tuple[int, int]  # yuan
    industries: frozenset[str] | None  # None: any industry
    weight: int  # relative frequency among the offences open to an enterprise


_PENALTIES: tuple[_Offence, ...] = (
    _Offence(
        "未按规定公示年度报告",
        "amr",
        "《企业信息公示暂行条例》第八条",
        "《企业信息公示暂行条例》第十八条",
        "未按照规定期限公示{prev}年度报告，经责令限期改正逾期仍未改正",
        (500, 10_000),
        None,
        6,
    ),
    _Offence(
        "销售不合格产品",
        "amr",
        "《中华人民共和国产品质量法》第三十九条",
        "《中华人民共和国产品质量法》第四十九条",
        "销售的{product}经监督抽查检验不合格",
        (2_000, 200_000),
        _MANUFACTURING | _TRADING,
        6,
    ),
    _Offence(
        "虚假宣传",
        "amr",
        "《中华人民共和国反不正当竞争法》第八条第一款",
        "《中华人民共和国反不正当竞争法》第二十条第一款",
        "在其网店商品详情页宣称产品“{claim}”，无法提供相关证明材料",
        (10_000, 200_000),
        None,
        4,
    ),
    _Offence(
        "经营超过保质期的食品",
        "amr",
        "《中华人民共和国食品安全法》第三十四条第（十）项",
        "《中华人民共和国食品安全法》第一百二十四条第一款",
        "在经营场所陈列销售超过保质期的预包装食品",
        (5_000, 100_000),
        frozenset({"食品", "水产"}),
        8,
    ),
    _Offence(
        "未按规定办理纳税申报",
        "tax",
        "《中华人民共和国税收征收管理法》第二十五条",
        "《中华人民共和国税收征收管理法》第六十二条",
        "未按照规定期限办理{prev}年度企业所得税纳税申报",
        (500, 10_000),
        None,
        5,
    ),
    _Offence(
        "未按规定开具发票",
        "tax",
        "《中华人民共和国发票管理办法》第十九条",
        "《中华人民共和国发票管理办法》第三十五条",
        "发生经营业务收取款项未按照规定开具发票",
        (500, 10_000),
        None,
        4,
    ),
    _Offence(
        "超标排放大气污染物",
        "eco",
        "《中华人民共和国大气污染防治法》第十八条",
        "《中华人民共和国大气污染防治法》第九十九条第（二）项",
        "废气排放口挥发性有机物浓度超过国家规定的排放标准",
        (100_000, 500_000),
        _MANUFACTURING,
        3,
    ),
    _Offence(
        "未批先建",
        "eco",
        "《中华人民共和国环境影响评价法》第二十五条",
        "《中华人民共和国环境影响评价法》第三十一条第一款",
        "建设项目环境影响报告表未经批准擅自开工建设",
        (50_000, 300_000),
        _MANUFACTURING,
        2,
    ),
    _Offence(
        "未按规定开展安全生产教育和培训",
        "safety",
        "《中华人民共和国安全生产法》第二十八条",
        "《中华人民共和国安全生产法》第九十七条第（三）项",
        "未按照规定对从业人员进行安全生产教育和培训",
        (10_000, 100_000),
        _MANUFACTURING | frozenset({"建设", "工程", "物流"}),
        3,
    ),
    _Offence(
        "货运车辆超限运输",
        "transport",
        "《公路安全保护条例》第三十三条",
        "《公路安全保护条例》第六十四条",
        "所属货运车辆违法超限运输",
        (500, 30_000),
        frozenset({"物流", "建设", "工程"}),
        10,
    ),
    _Offence(
        "违反工作时间规定延长劳动者工作时间",
        "hrss",
        "《中华人民共和国劳动法》第四十一条",
        "《劳动保障监察条例》第二十五条",
        "安排劳动者延长工作时间超过法定上限",
        (1_000, 50_000),
        None,
        1,
    ),
)
_PRODUCTS = (
    "电热水壶",
    "转换插座",
    "儿童服装",
    "电动自行车头盔",
    "塑料收纳箱",
    "电线电缆",
    "学生文具",
    "LED灯具",
)
_CLAIMS = ("全网销量第一", "国家级品质认证", "99.9%抗菌", "行业唯一专利技术", "央视推荐品牌")


def _amr(e: _Enterprise) -> str:
    return f"{_local_prefix(e.adcode)}市场监督管理局"


def _penalty(rng: random.Random, e: _Enterprise, decided: date, counters: _Counters) -> _Built:
    options = [p for p in _PENALTIES if p.industries is None or e.industry in p.industries]
    title, who, provision, basis, fact, (lo, hi), _, _ = rng.choices(options, [p.weight for p in options])[0]
    abbr, cn = _DOC_ABBR[e.adcode], NINGBO_DISTRICTS[e.adcode][0]
    if who == "amr":
        authority, series = _amr(e), f"{abbr}市监罚"
    elif who == "tax":
        authority, series = f"国家税务总局{_local_prefix(e.adcode)}税务局", f"{abbr}税简罚"
    elif who == "eco":
        authority, series = f"宁波市生态环境局{cn[:-1]}分局", f"甬环{cn[:1]}罚"
    elif who == "safety":
        authority, series = f"{_local_prefix(e.adcode)}应急管理局", f"{abbr}应急罚"
    elif who == "transport":
        authority, series = "宁波市交通运输局", "甬交执罚"
    else:
        authority, series = f"{_local_prefix(e.adcode)}人力资源和社会保障局", f"{abbr}人社监罚"
    # Log-uniform within the offence's range, rounded the way fines are set.
    raw = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    step = 100 if raw < 5_000 else 1_000 if raw < 50_000 else 5_000
    fine = Decimal(max(lo, min(hi, round(raw / step) * step)))
    punishment = f"罚款{_yuan(fine)}元"
    total = fine
    if who == "amr" and rng.random() < 0.25:  # confiscated illegal income has cents
        illegal = Decimal(rng.randint(5_000, 2_000_000)) / 100
        total = min(fine + illegal, Decimal(500_000))
        punishment = f"没收违法所得{_yuan(total - fine)}元，并处罚款{_yuan(fine)}元"
    detail = fact.format(prev=decided.year - 1, product=rng.choice(_PRODUCTS), claim=rng.choice(_CLAIMS))
    content = (
        f"当事人{e.name}{detail}，违反了{provision}的规定。依据{basis}的规定，"
        f"本机关决定对当事人作出如下行政处罚：{punishment}。"
    )
    number = f"{series}〔{decided.year}〕{counters.take(series, decided.year)}号"
    # Small fines stay public for a year (and can be repaired earlier); larger ones for three.
    years = 1 if total < 10_000 else 3
    return title, content, authority, number, years, total.quantize(Decimal("0.01"))


_ABNORMAL = (
    (
        "通过登记的住所或者经营场所无法联系",
        "第四条第（四）项",
        "经实地核查，{name}通过登记的住所或者经营场所无法联系",
    ),
    (
        "未按照规定期限公示年度报告",
        "第四条第（一）项",
        "{name}未按照《企业信息公示暂行条例》规定的期限公示{prev}年度报告",
    ),
    (
        "未在责令的期限内公示有关企业信息",
        "第四条第（二）项",
        "{name}未在市场监督管理部门责令的期限内公示有关企业信息",
    ),
    ("公示企业信息隐瞒真实情况、弄虚作假", "第四条第（三）项", "{name}公示的企业信息隐瞒真实情况、弄虚作假"),
)


def _abnormal(rng: random.Random, e: _Enterprise, decided: date, counters: _Counters) -> _Built:
    title, article, fact = rng.choices(_ABNORMAL, weights=(5, 4, 1, 1))[0]
    series = f"{_DOC_ABBR[e.adcode]}市监异"
    content = (
        f"{fact.format(name=e.name, prev=decided.year - 1)}。依据《企业经营异常名录管理暂行办法》{article}"
        "的规定，决定将其列入经营异常名录。"
    )
    number = f"{series}〔{decided.year}〕{counters.take(series, decided.year)}号"
    return title, content, _amr(e), number, 3, None


def _black(rng: random.Random, e: _Enterprise, decided: date, counters: _Counters) -> _Built:
    years = rng.randint(3, 5)
    pick = rng.choices(("court", "amr", "tax", "wages"), weights=(6, 2, 1, 1))[0]
    if pick == "court":
        # Enforcement cases: 浙0203 is the Haishu court (code = province + adcode), 浙02 the city's.
        if rng.random() < 0.3:
            authority, court = "宁波市中级人民法院", "浙02"
        else:
            authority, court = f"{_local_prefix(e.adcode)}人民法院", f"浙{e.adcode[2:]}"
        case_year = decided.year - (1 if rng.random() < 0.3 else 0)
        number = f"（{case_year}）{court}执{counters.take(court, case_year)}号"
        stake = Decimal(rng.randint(1_000_000, 500_000_000)) / 100
        content = (
            f"{e.name}在{number}案件中，"
            f"有履行能力而拒不履行生效法律文书确定的给付义务，执行标的{_yuan(stake)}元，"
            "依据《最高人民法院关于公布失信被执行人名单信息的若干规定》第一条，纳入失信被执行人名单。"
        )
        return "失信被执行人", content, authority, number, years, None
    if pick == "amr":
        series = "甬市监信"
        content = (
            f"{e.name}因被列入经营异常名录届满三年仍未履行相关义务，依据《市场监督管理严重违法失信名单管理办法》"
            "第十三条的规定，列入严重违法失信名单。"
        )
        authority, title = "宁波市市场监督管理局", "严重违法失信企业名单"
    elif pick == "tax":
        series = "甬税稽"
        content = (
            f"{e.name}虚开增值税专用发票，经国家税务总局宁波市税务局稽查局检查确认，"
            "依据《重大税收违法失信主体信息公布管理办法》第六条，确定为重大税收违法失信主体。"
        )
        authority, title = "国家税务总局宁波市税务局", "重大税收违法失信主体"
    else:
        series = f"{_DOC_ABBR[e.adcode]}人社欠薪"
        content = (
            f"{e.name}拖欠农民工工资数额达到认定拒不支付劳动报酬罪数额标准，依据《拖欠农民工工资失信联合惩戒"
            "对象名单管理暂行办法》第五条，列入拖欠农民工工资失信联合惩戒对象名单。"
        )
        authority = f"{_local_prefix(e.adcode)}人力资源和社会保障局"
        title = "拖欠农民工工资失信联合惩戒对象名单"
    number = f"{series}〔{decided.year}〕{counters.take(series, decided.year)}号"
    return title, content, authority, number, years, None


def _red(rng: random.Random, e: _Enterprise, decided: date, counters: _Counters) -> _Built:
    y = decided.year
    options = ["contract", "tax", "labour"]
    if e.industry in _TRADING:
        options.append("aeo")
    pick = rng.choice(options)
    if pick == "contract":
        series, authority, title, years = "甬市监信", "宁波市市场监督管理局", "守合同重信用企业", 2
        content = f"{e.name}经公示和审核，被认定为{y - 1}—{y}年度宁波市“守合同重信用”企业。"
    elif pick == "tax":
        series = f"{_DOC_ABBR[e.adcode]}税信"
        authority = f"国家税务总局{_local_prefix(e.adcode)}税务局"
        title, years = "纳税信用A级纳税人", 1
        content = f"{e.name}{y - 1}年度纳税信用评价结果为A级。"
    elif pick == "labour":
        series, authority, title, years = "甬人社发", "宁波市人力资源和社会保障局", "和谐劳动关系先进企业", 3
        content = f"{e.name}被评为宁波市和谐劳动关系先进企业。"
    else:
        # AEO certificates are numbered by the customs registration code (Ningbo's start 3302).
        code = f"3302{rng.choice('69')}{rng.randint(0, 99999):05d}"
        title, years = "海关高级认证企业", 3
        content = f"{e.name}（海关编码{code}）通过海关高级认证（AEO），认证类型为高级认证企业。"
        return title, content, "宁波海关", f"AEOCN{code}", years, None
    number = f"{series}〔{y}〕{counters.take(series, y)}号"
    return title, content, authority, number, years, None


def _license(rng: random.Random, e: _Enterprise, decided: date, counters: _Counters) -> _Built:
    options = ["drainage", "equipment", "equipment", "fire", "advert"]
    if e.industry in {"食品", "水产"}:
        options += ["food_sale", "food_sale", "food_production"]
    if e.industry == "物流":
        options += ["transport", "transport"]
    if e.industry == "化工":
        options += ["hazchem", "pollution"]
    if e.industry in {"建设", "工程"}:
        options += ["construction", "construction"]
    if e.industry in {"印刷", "包装"}:
        options.append("printing")
    if e.industry == "医药":
        options.append("drugs")
    if e.industry in _MANUFACTURING:
        options.append("pollution")
    pick = rng.choice(options)
    cn = NINGBO_DISTRICTS[e.adcode][0]
    years = rng.randint(1, 3)
    if pick == "food_sale":
        title, authority = "食品经营许可", _amr(e)
        number = f"JY{rng.choice('12')}{e.adcode}{rng.randint(0, 999_999):06d}{rng.randint(0, 9)}"
        scope = "预包装食品（含冷藏冷冻食品）销售，散装食品（含冷藏冷冻食品）销售"
    elif pick == "food_production":
        title, authority = "食品生产许可", _amr(e)
        category = rng.choice(("106", "111", "117", "124"))
        number = f"SC{category}{e.adcode}{rng.randint(0, 9999):04d}{rng.randint(0, 9)}"
        scope = "水产制品（干制水产品），速冻食品"
    elif pick == "transport":
        title, authority = "道路运输经营许可", f"{_local_prefix(e.adcode)}交通运输局"
        number = f"浙交运管许可甬字{e.adcode}{rng.randint(0, 999_999):06d}号"
        scope = "道路普通货物运输，货物专用运输（集装箱）"
    elif pick == "hazchem":
        title, authority = "危险化学品经营许可", f"{_local_prefix(e.adcode)}应急管理局"
        series = f"浙甬{cn[:1]}危化经字"
        number = f"{series}〔{decided.year}〕{counters.take(series, decided.year):04d}"
        scope = "乙醇、甲苯、丙酮（不带储存设施经营）"
    elif pick == "pollution":
        title, authority = "排污许可", f"宁波市生态环境局{cn[:-1]}分局"
        number = f"{e.uscc}001{rng.choice('VUQ')}"
        scope = "排放废气、废水污染物，执行相应国家及地方排放标准"
    elif pick == "construction":
        title, authority = "建筑业企业资质", "宁波市住房和城乡建设局"
        number = f"D333{rng.randint(0, 999_999):06d}"
        scope = rng.choice(("建筑工程施工总承包三级", "市政公用工程施工总承包三级", "建筑装修装饰工程专业承包二级"))
    elif pick == "printing":
        title, authority = "印刷经营许可", "宁波市文化广电旅游局"
        number = f"（浙）印证字{rng.randint(330_200_000, 330_299_999)}号"
        scope = "包装装潢印刷品印刷"
    elif pick == "drugs":
        title, authority = "药品经营许可", "宁波市市场监督管理局"
        number = f"浙AA574{rng.randint(0, 9999):04d}"
        scope = "中成药、化学药制剂、抗生素制剂、生化药品（批发）"
    elif pick == "equipment":
        # Registration codes of special equipment: 梯 lifts, 容 pressure vessels, 起 cranes, 车 forklifts;
        # 浙B is Ningbo.
        title, authority = "特种设备使用登记", _amr(e)
        sort = rng.choice("梯容起车") if e.industry in _MANUFACTURING or e.industry == "物流" else "梯"
        number = f"{sort}{rng.randint(10, 31)}浙B{rng.randint(0, 99_999):05d}({decided:%y})"
        scope = {
            "梯": "乘客电梯",
            "容": "储气罐（固定式压力容器）",
            "起": "桥式起重机",
            "车": "叉车（场内专用机动车辆）",
        }[sort]
    elif pick == "fire":
        title, authority = (
            "公众聚集场所投入使用、营业前消防安全检查",
            f"{_local_prefix(e.adcode)}消防救援大队",
        )
        series = f"甬{cn[:1]}消安检字"
        number = f"{series}〔{decided.year}〕第{counters.take(series, decided.year):04d}号"
        scope = "经营场所投入使用、营业前消防安全检查合格"
    elif pick == "advert":
        title, authority = "户外广告设施设置许可", f"{_local_prefix(e.adcode)}综合行政执法局"
        series = f"{_DOC_ABBR[e.adcode]}综执广许"
        number = f"{series}〔{decided.year}〕{counters.take(series, decided.year)}号"
        scope = "在经营场所外墙设置户外招牌广告一处"
    else:
        title, authority = "城镇污水排入排水管网许可", f"{_local_prefix(e.adcode)}综合行政执法局"
        number = f"浙甬排字第{decided.year}{counters.take('drainage' + e.adcode, decided.year):04d}号"
        scope = "生活污水排入城镇排水管网"
    since = f"{decided.year}年{decided.month}月{decided.day}日"
    content = f"准予{e.name}{title}，许可内容：{scope}，有效期自{since}起。"
    return title, content, authority, number, years, None


_BUILDERS: dict[str, _Builder] = {
    "ADMINISTRATIVE_PENALTY": _penalty,
    "ABNORMAL_OPERATION": _abnormal,
    "BLACK_LIST": _black,
    "RED_LIST": _red,
    "ADMINISTRATIVE_LICENSE": _license,
}


# --- Generator --------------------------------------------------------------------------------


class _Generator:
    """All random choices, made in one fixed order from one ``random.Random``."""

    def __init__(self, seed: int, today: date) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not secrets
        self.today = today
        self.counters = _Counters(self.rng)
        self._usccs: set[str] = set()
        self._names: set[str] = set()
        self._districts = list(_DISTRICT_WEIGHTS)
        self._district_cum = _cumulative(_DISTRICT_WEIGHTS.values())
        self._industries = [w for w, _ in _INDUSTRIES]
        self._industry_cum = _cumulative(n for _, n in _INDUSTRIES)
        self._id_prefixes = [p for p, _ in _ID_PREFIXES]
        self._id_cum = _cumulative(n for _, n in _ID_PREFIXES)
        self._kinds = [k for k, _ in _KINDS]
        self._kind_cum = _cumulative(n for _, n in _KINDS)
        self._birth_lo = date(1955, 1, 1).toordinal()
        self._birth_hi = date(2000, 12, 31).toordinal()
        self._midnight = datetime.combine(today, dtime(0), SHANGHAI)

    def enterprise(self) -> _Enterprise:
        rng = self.rng
        adcode = rng.choices(self._districts, cum_weights=self._district_cum)[0]
        coop = rng.random() < 0.03
        industry = (
            rng.choice(_COOP_PRODUCTS) if coop else rng.choices(self._industries, cum_weights=self._industry_cum)[0]
        )
        while True:
            if rng.random() < 0.4:  # legacy 8-digit organisation code
                body = f"{rng.randint(1, 7)}{rng.randint(0, 9_999_999):07d}"
            else:  # post-2015 codes issued in Zhejiang start MA2
                body = "MA2" + "".join(rng.choices(USCC_ALPHABET, k=5))
            uscc = make_uscc("9", "3" if coop else "1", adcode, body)
            if uscc not in self._usccs:
                self._usccs.add(uscc)
                break
        trade = rng.choice(_TRADE_SYLLABLES) + rng.choice(_TRADE_SYLLABLES)
        while True:
            if coop:
                name = f"{_local_prefix(adcode)}{trade}{industry}专业合作社"
            else:
                suffix = "股份有限公司" if rng.random() < 0.08 else "有限公司"
                name = f"宁波{trade}{industry}{suffix}"
            if name not in self._names:
                self._names.add(name)
                break
            trade += rng.choice(_TRADE_SYLLABLES)  # taken: lengthen the trade name, as registrars require
        given = rng.choice(_GIVEN) + (rng.choice(_GIVEN) if rng.random() < 0.7 else "")
        birth = date.fromordinal(rng.randint(self._birth_lo, self._birth_hi))
        prefix = rng.choices(self._id_prefixes, cum_weights=self._id_cum)[0]
        rep_id = make_id_number(prefix, birth, rng.randint(1, 999))
        return _Enterprise(uscc, name, adcode, industry, rng.choice(_SURNAMES) + given, rep_id)

    def records(self, e: _Enterprise) -> list[_Row]:
        rng = self.rng
        # Gamma-Poisson (negative binomial), mean 3: many small, some none, a long tail.
        count = min(_poisson(rng, rng.gammavariate(1.2, 2.5)), 60)
        rows: list[_Row] = []
        for _ in range(count):
            kind = rng.choices(self._kinds, cum_weights=self._kind_cum)[0]
            # Skewed to recent years (platforms publish more every year): P(older than a year) ~ 0.66.
            decided = self.today - timedelta(days=1 + int(1825 * rng.random() ** 1.5))
            title, content, authority, number, years, amount = _BUILDERS[kind](rng, e, decided, self.counters)
            note = None
            if rng.random() < 0.1:
                note = rng.choice(_NOTES_BY_KIND[kind] + _NOTES_GENERAL)
            rows.append((kind, title, content, authority, number, decided, years, amount, note))
        rows.sort(key=lambda r: r[5])
        return rows

    def profile(self, rows: Sequence[_Row]) -> tuple[str, int, datetime]:
        rng = self.rng
        active = {r[0] for r in rows if _add_years(r[5], r[6]) > self.today}
        penalties = sum(1 for r in rows if r[0] == "ADMINISTRATIVE_PENALTY" and _add_years(r[5], r[6]) > self.today)
        if "BLACK_LIST" in active:
            weights = (0, 10, 35, 55)
        elif "ABNORMAL_OPERATION" in active:
            weights = (5, 30, 45, 20)
        elif penalties >= 2:
            weights = (15, 55, 25, 5)
        elif "RED_LIST" in active:
            weights = (75, 25, 0, 0)
        else:
            weights = (40, 47, 11, 2)
        # Exactly three draws whatever the outcome, so a different ``today`` (which can change a
        # rating) leaves the random stream, and so every enterprise after this one, unchanged.
        rating = rng.choices("ABCD", weights=weights)[0]
        lo, hi = RATING_BANDS[rating]
        u = rng.random()
        # D scores bunch towards the top of their band: most D's are near misses, few are hopeless.
        score = int(lo + (hi - lo) * math.sqrt(u)) if rating == "D" else lo + int(u * (hi - lo + 1))
        assessed = self._midnight - timedelta(seconds=rng.randint(1, 365 * 86_400))
        return rating, score, assessed.astimezone(UTC)


def _cumulative(weights: Iterable[int]) -> list[int]:
    out: list[int] = []
    total = 0
    for w in weights:
        total += w
        out.append(total)
    return out


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method; fine for the small means used here."""
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


# --- Writing ----------------------------------------------------------------------------------


def _target_path(url_or_path: Path | str) -> Path:
    if isinstance(url_or_path, str) and "://" in url_or_path:
        url = make_url(url_or_path)
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            raise ValueError(f"demo data needs a SQLite file URL, got {url_or_path!r}")
        return Path(url.database)
    return Path(url_or_path)


_DIALECT = sqlite_dialect.dialect()


def _processor(column: Column[Any]) -> Callable[[Any], Any]:
    """The SQLite dialect's bind processor for ``column``, so raw rows match what SQLAlchemy writes."""
    proc = column.type.dialect_impl(_DIALECT).bind_processor(_DIALECT)
    if proc is None:
        raise RuntimeError(f"{column} has no bind processor; write its values as they are")
    return proc


def _insert_sql(table: Table, columns: Sequence[str]) -> str:
    """A qmark ``INSERT`` for ``columns``, in table order (the order rows must follow)."""
    return str(table.insert().compile(dialect=_DIALECT, column_keys=list(columns)))


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
        task = bar.add_task("credit demo: enterprises", total=total)
        yield lambda n: bar.advance(task, n)


def generate(
    url_or_path: Path | str,
    *,
    scale: int = 2000,
    seed: int = 7,
    today: date | None = None,
    progress: bool = False,
) -> DemoStats:
    """Write a fresh demo credit database with ``scale`` enterprises; replaces any existing file.

    ``url_or_path`` is a file path or a ``sqlite:///`` URL. The database is built in a temporary
    file next to the target and moved into place with ``os.replace``, so readers see the old or
    the new database, never a half-written one. Stale ``-wal``/``-shm``/``-journal`` files of the
    old database are removed first (SQLite would otherwise apply them to the new file): nothing
    may hold the old database open. ``today`` defaults to the current date in Asia/Shanghai.
    """
    started = time.perf_counter()
    if scale < 0:
        raise ValueError(f"scale must be >= 0, got {scale}")
    path = _target_path(url_or_path)
    today = today if today is not None else datetime.now(SHANGHAI).date()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        engine = create_engine(f"sqlite:///{tmp}")
        try:
            metadata.create_all(engine)
        finally:
            engine.dispose()
        records = _fill(tmp, scale, seed, today, progress)
        with open(tmp, "rb") as f:  # durable before it becomes visible under the real name
            os.fsync(f.fileno())
        for suffix in ("-wal", "-shm", "-journal"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return DemoStats(enterprises=scale, records=records, path=path, seconds=time.perf_counter() - started)


def _fill(db: Path, scale: int, seed: int, today: date, progress: bool) -> int:
    gen = _Generator(seed, today)
    subject_sql = _insert_sql(credit_subjects, credit_subjects.columns.keys())
    profile_sql = _insert_sql(credit_profiles, credit_profiles.columns.keys())
    # No id: SQLite numbers records in insertion order.
    record_sql = _insert_sql(credit_records, [c for c in credit_records.columns.keys() if c != "id"])
    assessed_proc = _processor(credit_profiles.c.assessed_at)
    date_proc = _processor(credit_records.c.decision_date)
    amount_proc = _processor(credit_records.c.amount)

    subjects: list[tuple[str, str, str]] = []
    profiles: list[tuple[str, str, int, Any]] = []
    records: list[tuple[Any, ...]] = []
    total = 0
    # The file is a private temporary until os.replace: no journal or per-commit fsync needed
    # beyond the explicit one before the rename.
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = MEMORY")
        conn.execute("PRAGMA synchronous = OFF")
        # Up to 256 MiB of page cache: primary keys are random USCCs, so their B-tree pages are hot.
        conn.execute("PRAGMA cache_size = -262144")
        conn.execute("BEGIN")
        # Secondary indexes are rebuilt once at the end: a sorted bulk build is ~4x cheaper than
        # maintaining them row by row (create_all stays the single source of the schema).
        indexes = [ix for table in metadata.sorted_tables for ix in table.indexes]
        for ix in indexes:
            conn.execute(str(DropIndex(ix).compile(dialect=_DIALECT)))

        def flush() -> None:
            # Parents first, so the foreign keys hold at every point.
            conn.executemany(subject_sql, subjects)
            conn.executemany(profile_sql, profiles)
            conn.executemany(record_sql, records)
            subjects.clear()
            profiles.clear()
            records.clear()

        with _progress_bar(progress, scale) as advance:
            for i in range(scale):
                e = gen.enterprise()
                rows = gen.records(e)
                rating, score, assessed = gen.profile(rows)
                subjects.append((e.uscc, e.name, e.adcode))
                profiles.append((e.uscc, rating, score, assessed_proc(assessed)))
                for kind, title, content, authority, number, decided, years, amount, note in rows:
                    end = _add_years(decided, years) - timedelta(days=1)
                    start_s = date_proc(decided)
                    records.append(
                        (
                            e.uscc,
                            kind,
                            title,
                            content,
                            authority,
                            number,
                            start_s,
                            start_s,
                            date_proc(end),
                            e.adcode,
                            None if amount is None else amount_proc(amount),
                            e.rep_name,
                            e.rep_id,
                            note,
                        )
                    )
                total += len(rows)
                if len(records) >= _CHUNK or len(subjects) >= _CHUNK:
                    flush()
                if (i + 1) % 1000 == 0:
                    advance(1000)
            flush()
            advance(scale % 1000)
        for ix in indexes:
            conn.execute(str(CreateIndex(ix).compile(dialect=_DIALECT)))
        conn.execute("COMMIT")
    finally:
        conn.close()
    return total


__all__ = ["DemoStats", "generate", "RATING_BANDS", "SHANGHAI"]
