"""The benchmark's world: places, parcels' fates and their scan routes (pure, deterministic).

Shared by the fake provider (which reveals scans poll by poll) and the data generator
(which writes the orders those scans belong to), so both agree on what happens to every
tracking number without talking to each other: a parcel's fate is a pure function of its
number and the configured shares.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = [
    "CHINA_TZ",
    "COURIERS",
    "ORIGINS",
    "PLACES",
    "Fate",
    "Place",
    "RouteStep",
    "Shares",
    "fate_of",
    "number_for",
    "place_by_text",
    "reveal_times",
    "route_for",
    "seed_of",
    "shipped_at_for",
]

CHINA_TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True, slots=True)
class Place:
    """A city with its province (full and short names) and a few districts."""

    province: str
    province_short: str
    city: str
    districts: tuple[str, ...]

    @property
    def city_short(self) -> str:
        """``杭州`` for ``杭州市`` (how scan texts usually name a hub)."""
        return self.city.removesuffix("市")

    @property
    def area_name(self) -> str:
        """Kuaidi100's ``areaName`` for the city: ``"浙江,杭州市"``."""
        return f"{self.province_short},{self.city}"

    def address(self, district: str | None = None) -> str:
        """``浙江省杭州市西湖区`` (a municipality is not repeated), as the adapter sends it."""
        head = self.province if self.province == self.city else self.province + self.city
        return head + (district or "")


PLACES: tuple[Place, ...] = (
    Place("广东省", "广东", "广州市", ("天河区", "白云区", "番禺区")),
    Place("广东省", "广东", "深圳市", ("南山区", "福田区", "宝安区")),
    Place("浙江省", "浙江", "杭州市", ("西湖区", "余杭区", "滨江区")),
    Place("浙江省", "浙江", "宁波市", ("鄞州区", "海曙区")),
    Place("江苏省", "江苏", "南京市", ("鼓楼区", "江宁区")),
    Place("江苏省", "江苏", "苏州市", ("姑苏区", "吴中区")),
    Place("上海市", "上海", "上海市", ("浦东新区", "闵行区", "徐汇区")),
    Place("北京市", "北京", "北京市", ("朝阳区", "海淀区", "丰台区")),
    Place("天津市", "天津", "天津市", ("和平区", "南开区")),
    Place("重庆市", "重庆", "重庆市", ("渝中区", "江北区")),
    Place("四川省", "四川", "成都市", ("武侯区", "锦江区")),
    Place("湖北省", "湖北", "武汉市", ("洪山区", "江汉区")),
    Place("湖南省", "湖南", "长沙市", ("岳麓区", "开福区")),
    Place("山东省", "山东", "济南市", ("历下区", "槐荫区")),
    Place("山东省", "山东", "青岛市", ("市南区", "黄岛区")),
    Place("河南省", "河南", "郑州市", ("金水区", "二七区")),
    Place("福建省", "福建", "厦门市", ("思明区", "湖里区")),
    Place("陕西省", "陕西", "西安市", ("雁塔区", "碑林区")),
    Place("辽宁省", "辽宁", "沈阳市", ("沈河区", "铁西区")),
    Place("安徽省", "安徽", "合肥市", ("蜀山区", "包河区")),
    Place("江西省", "江西", "南昌市", ("东湖区", "青山湖区")),
    Place("云南省", "云南", "昆明市", ("五华区", "盘龙区")),
    Place("广西壮族自治区", "广西", "南宁市", ("青秀区", "兴宁区")),
    Place("新疆维吾尔自治区", "新疆", "乌鲁木齐市", ("天山区", "沙依巴克区")),
    Place("西藏自治区", "西藏", "拉萨市", ("城关区",)),
)

#: where the benchmark shop ships from (indexes into :data:`PLACES`)
ORIGINS: tuple[Place, ...] = (PLACES[0], PLACES[2], PLACES[6], PLACES[5])

#: canonical courier code -> tracking number prefix
COURIERS: tuple[tuple[str, str], ...] = (
    ("yto", "YT"),
    ("zto", "ZT"),
    ("sto", "ST"),
    ("yunda", "YD"),
    ("jt", "JT"),
    ("ems", "EM"),
    ("jd", "JD"),
    ("sf", "SF"),
)

_COURIER_NAMES = ("王师傅", "李师傅", "张师傅", "刘师傅", "陈师傅")


@dataclass(frozen=True, slots=True)
class Shares:
    """Which share of parcels stall, get lost or are mis-routed; the rest move normally."""

    stalled: float = 0.05
    lost: float = 0.02
    misrouted: float = 0.03

    def __post_init__(self) -> None:
        if min(self.stalled, self.lost, self.misrouted) < 0 or self.total > 1:
            raise ValueError(f"shares must be >= 0 and sum to at most 1: {self}")

    @property
    def total(self) -> float:
        """The share of parcels with a problem."""
        return self.stalled + self.lost + self.misrouted


class Fate:
    """What happens to a parcel (string constants, cheap to compare and to serialise)."""

    NORMAL = "normal"
    STALLED = "stalled"
    LOST = "lost"
    MISROUTED = "misrouted"


def seed_of(text: str) -> int:
    """A stable 64-bit seed for ``text`` (Python's ``hash`` changes between processes)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def fate_of(number: str, shares: Shares) -> str:
    """The fate of tracking number ``number`` under ``shares`` (uniform over numbers)."""
    u = (seed_of(number) % 1_000_000) / 1_000_000
    if u < shares.stalled:
        return Fate.STALLED
    if u < shares.stalled + shares.lost:
        return Fate.LOST
    if u < shares.total:
        return Fate.MISROUTED
    return Fate.NORMAL


def number_for(index: int, prefix: str = "") -> tuple[str, str]:
    """(courier, tracking number) of the ``index``-th benchmark parcel."""
    courier, letters = COURIERS[index % len(COURIERS)]
    return courier, f"{letters}{prefix}{index:010d}"


def place_by_text(text: str | None) -> tuple[Place, str | None] | None:
    """The place (and district) an adapter's ``from``/``to`` hint names, else ``None``."""
    if not text:
        return None
    for place in PLACES:
        if place.city in text:
            district = next((d for d in place.districts if d in text), None)
            return place, district
    return None


@dataclass(frozen=True, slots=True)
class RouteStep:
    """One scan before it has a time: Kuaidi100 ``statusCode``, text and ``areaName``."""

    code: str
    text: str
    area: str | None


def _other_place(rng: random.Random, *avoid: Place) -> Place:
    provinces = {p.province for p in avoid}
    while True:
        place = rng.choice(PLACES)
        if place.province not in provinces:
            return place


def route_for(
    number: str, origin: Place, dest: Place, district: str | None, fate: str
) -> list[RouteStep]:
    """Every scan the parcel will ever get, oldest first (stalled and lost stop early)."""
    rng = random.Random(seed_of("route:" + number))
    district = district or dest.districts[0]
    o_district = rng.choice(origin.districts)

    def area(place: Place, with_area: bool | None = None) -> str | None:
        # resultv2=4 only sometimes resolves the area: the rest must come from the text
        keep = rng.random() < 0.5 if with_area is None else with_area
        return place.area_name if keep else None

    steps = [
        RouteStep("103", f"【{origin.province}{origin.city}{o_district}公司】已揽收", area(origin)),
        RouteStep("1002", f"快件已到达【{origin.city_short}转运中心】", area(origin)),
    ]
    hop = origin
    if fate == Fate.MISROUTED:
        wrong = _other_place(rng, origin, dest)
        steps += [
            RouteStep(
                "1002",
                f"快件已从【{origin.city_short}转运中心】发出，下一站【{dest.city_short}转运中心】",
                area(origin),
            ),
            RouteStep("1002", f"快件已到达【{dest.city_short}转运中心】", area(dest)),
            RouteStep(
                "1002", f"快件错分至【{wrong.city_short}转运中心】，正在安排返回", area(wrong)
            ),
            RouteStep(
                "1002",
                f"快件已从【{wrong.city_short}转运中心】发出，下一站【{dest.city_short}转运中心】",
                area(wrong),
            ),
        ]
        hop = wrong
    elif origin.city != dest.city:
        hub = _other_place(rng, origin, dest) if rng.random() < 0.6 else None
        for stop in (hub, dest):
            if stop is None:
                continue
            steps += [
                RouteStep(
                    "1002",
                    f"快件已从【{hop.city_short}转运中心】发出，下一站【{stop.city_short}转运中心】",
                    area(hop),
                ),
                RouteStep("1002", f"快件已到达【{stop.city_short}转运中心】", area(stop)),
            ]
            hop = stop
    if fate in (Fate.STALLED, Fate.LOST):
        return steps[: 2 + rng.randrange(2)]
    if hop is not dest:
        steps.append(RouteStep("1002", f"快件已到达【{dest.city_short}转运中心】", area(dest)))
    station = f"{dest.city_short}{district}营业部"
    phone = f"1{rng.randrange(30, 90)}{rng.randrange(10**8):08d}"
    steps += [
        RouteStep("1001", f"快件已到达【{station}】", area(dest)),
        RouteStep(
            "5",
            f"【{station}】派件员【{rng.choice(_COURIER_NAMES)}】正在为您派件，电话：{phone}",
            area(dest),
        ),
        RouteStep("301", "您的快件已签收，签收人：本人签收。感谢使用，期待再次为您服务。", None),
    ]
    return steps


def reveal_times(
    number: str, fate: str, poll: int, count: int, start: datetime, step: timedelta
) -> list[datetime]:
    """Scan times of ``count`` scans first shown at poll ``poll`` (1-based), oldest first.

    Moving parcels get scans in the few hours before the ``poll``-th benchmark cycle
    (``start + (poll - 1) * step``); stalled ones stopped about 64 h before ``start``,
    lost ones about 9 days before.
    """
    rng = random.Random(seed_of(f"times:{number}:{poll}"))
    if fate == Fate.STALLED:
        # silent for 56-64 h at the first cycle: stalled (48 h), not yet lost or overdue
        first = start - timedelta(hours=60 + rng.random() * 8)
        return [first + timedelta(hours=2 * k) for k in range(count)]
    if fate == Fate.LOST:
        first = start - timedelta(days=9 + rng.random() * 5)
        return [first + timedelta(hours=4 * k) for k in range(count)]
    end = start + (poll - 1) * step - timedelta(minutes=10 + rng.random() * 20)
    spacing = timedelta(minutes=50 + rng.random() * 40)
    return [end - spacing * (count - 1 - k) for k in range(count)]


def shipped_at_for(fate: str, start: datetime) -> datetime:
    """When a parcel of ``fate`` was handed over, consistent with :func:`reveal_times`."""
    if fate == Fate.STALLED:
        return start - timedelta(hours=70)
    if fate == Fate.LOST:
        return start - timedelta(days=15)
    return start - timedelta(hours=6)
