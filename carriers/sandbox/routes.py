"""Geography and people for the sandbox's stories: hubs, lanes, stations, couriers.

Everything here is a pure function of its arguments; choices that look random are
made with :func:`carriers.sandbox.scenarios.stable_int`, so they repeat exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from carriers import geo
from carriers.model import Location
from carriers.sandbox.scenarios import stable_int

__all__ = [
    "DEFAULT_DESTINATION",
    "DEFAULT_ORIGIN",
    "Endpoint",
    "lane_allowance_hours",
    "leg_hours",
    "masked_phone",
    "person",
    "plan_route",
    "resolve_endpoint",
    "street",
    "wrong_province_hub",
]


def _full(short: str) -> str:
    """The full province name of a short one written in the tables below."""
    full = geo.canonical_province(short)
    if full is None:  # pragma: no cover - a typo in the tables below
        raise ValueError(short)
    return full


# Each province's main sorting hub (the provincial capital; a municipality is its own).
_HUBS_SHORT = {
    "北京": "北京市", "天津": "天津市", "河北": "石家庄市", "山西": "太原市",
    "内蒙古": "呼和浩特市", "辽宁": "沈阳市", "吉林": "长春市", "黑龙江": "哈尔滨市",
    "上海": "上海市", "江苏": "南京市", "浙江": "杭州市", "安徽": "合肥市", "福建": "福州市",
    "江西": "南昌市", "山东": "济南市", "河南": "郑州市", "湖北": "武汉市", "湖南": "长沙市",
    "广东": "广州市", "广西": "南宁市", "海南": "海口市", "重庆": "重庆市", "四川": "成都市",
    "贵州": "贵阳市", "云南": "昆明市", "西藏": "拉萨市", "陕西": "西安市", "甘肃": "兰州市",
    "青海": "西宁市", "宁夏": "银川市", "新疆": "乌鲁木齐市",
}  # fmt: skip
_REGIONS_SHORT = {
    "华北": "北京 天津 河北 山西 内蒙古",
    "东北": "辽宁 吉林 黑龙江",
    "华东": "上海 江苏 浙江 安徽 福建 江西 山东 台湾",
    "华中": "河南 湖北 湖南",
    "华南": "广东 广西 海南 香港 澳门",
    "西南": "重庆 四川 贵州 云南 西藏",
    "西北": "陕西 甘肃 青海 宁夏 新疆",
}
_NEIGHBOURS_SHORT = {
    "北京": "天津 河北", "天津": "北京 河北",
    "河北": "北京 天津 山西 内蒙古 辽宁 山东 河南", "山西": "河北 内蒙古 陕西 河南",
    "内蒙古": "黑龙江 吉林 辽宁 河北 山西 陕西 宁夏 甘肃", "辽宁": "吉林 河北 内蒙古",
    "吉林": "辽宁 黑龙江 内蒙古", "黑龙江": "吉林 内蒙古", "上海": "江苏 浙江",
    "江苏": "上海 浙江 安徽 山东", "浙江": "上海 江苏 安徽 江西 福建",
    "安徽": "江苏 浙江 江西 湖北 河南 山东", "福建": "浙江 江西 广东",
    "江西": "浙江 安徽 湖北 湖南 广东 福建", "山东": "河北 河南 安徽 江苏",
    "河南": "河北 山西 陕西 湖北 安徽 山东", "湖北": "河南 安徽 江西 湖南 重庆 陕西",
    "湖南": "湖北 江西 广东 广西 贵州 重庆", "广东": "福建 江西 湖南 广西 海南 香港 澳门",
    "广西": "广东 湖南 贵州 云南", "海南": "广东", "重庆": "四川 贵州 湖南 湖北 陕西",
    "四川": "重庆 贵州 云南 西藏 青海 甘肃 陕西", "贵州": "四川 重庆 湖南 广西 云南",
    "云南": "四川 贵州 广西 西藏", "西藏": "新疆 青海 四川 云南",
    "陕西": "山西 河南 湖北 重庆 四川 甘肃 宁夏 内蒙古", "甘肃": "陕西 四川 青海 新疆 内蒙古 宁夏",
    "青海": "甘肃 四川 西藏 新疆", "宁夏": "内蒙古 陕西 甘肃", "新疆": "西藏 青海 甘肃",
    "台湾": "福建", "香港": "广东", "澳门": "广东",
}  # fmt: skip
# Far regions are entered through a gateway hub when coming from another region.
_GATEWAYS = {"西北": "西安市", "西南": "成都市", "东北": "沈阳市"}

HUBS: dict[str, str] = {_full(p): city for p, city in _HUBS_SHORT.items()}
REGION: dict[str, str] = {
    _full(p): region for region, members in _REGIONS_SHORT.items() for p in members.split()
}
NEIGHBOURS: dict[str, tuple[str, ...]] = {
    _full(p): tuple(_full(n) for n in ns.split()) for p, ns in _NEIGHBOURS_SHORT.items()
}

# People and streets for station names; none of them reads as a place name.
_NAMES = (
    "张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵强", "黄敏", "周杰", "吴涛", "徐丽", "孙浩",
    "胡军", "朱琳", "林晨", "何勇", "郭鹏", "罗斌", "梁爽", "宋佳", "谢飞", "韩雪", "唐亮", "冯婷",
)  # fmt: skip
_STREETS = (
    "文三路", "人民路", "建设路", "解放路", "学院路", "光明路", "幸福路",
    "友谊路", "胜利路", "长江路", "黄河路", "工业路", "科技路", "花园路",
    "青年路", "体育路", "文化路", "健康路", "迎宾路", "振兴路",
)  # fmt: skip
_PHONE_PREFIXES = ("138", "139", "137", "136", "135", "150", "151", "158", "186", "189")

# Districts merged away since the gazetteer's data (still parsed, never invented).
_ABOLISHED = frozenset({"下城区", "江干区", "江东区"})

DEFAULT_ORIGIN = ("广东省", "广州市")
DEFAULT_DESTINATION = ("浙江省", "杭州市")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One end of a lane: province, city (``None`` only for 香港/澳门/台湾) and district."""

    province: str
    city: str | None
    district: str | None

    @property
    def place(self) -> str:
        """The name printed in 【】 at the head of a scan text: the city, else 香港 etc."""
        return self.city or geo.short_name(self.province)

    @property
    def short(self) -> str:
        """The short form used in hub and station names (杭州, 上海, 香港)."""
        return geo.short_name(self.place)


def person(salt: str) -> str:
    """A courier's (or station keeper's) name."""
    return _NAMES[stable_int("name", salt) % len(_NAMES)]


def masked_phone(salt: str) -> str:
    """A mobile number masked the way couriers print it (138****5678)."""
    n = stable_int("phone", salt)
    return f"{_PHONE_PREFIXES[n % len(_PHONE_PREFIXES)]}****{n // 97 % 10000:04d}"


def street(salt: str) -> str:
    """A street name for a station's label."""
    return _STREETS[stable_int("street", salt) % len(_STREETS)]


def _pick_district(city: str, hint: str | None, salt: str) -> str | None:
    """The hinted district if it is in ``city`` (full or short form), else a stable pick."""
    districts = geo.districts_of(city)
    if not districts:
        return None
    if hint:
        for name in districts:
            if hint in (name, geo.short_name(name)):
                return name
    urban = [d for d in districts if d.endswith("区") and d not in _ABOLISHED] or list(districts)
    return urban[stable_int("district", salt, city) % len(urban)]


def resolve_endpoint(hint: Location | None, default: tuple[str, str], salt: str) -> Endpoint:
    """Turn a (possibly partial, possibly short-form) location hint into a lane end.

    A city without a province finds its province; a province without a city uses its
    hub city; an unknown or empty hint uses ``default`` (province, city).
    """
    province = geo.canonical_province(hint.province) if hint else None
    city = geo.canonical_city(hint.city, province) if hint and hint.city else None
    if city is None and hint is not None and hint.city and province is None:
        city = geo.canonical_city(hint.city)
    if city is not None and province is None:
        province = geo.province_of_city(city)
    if province is not None and city is None:
        city = HUBS.get(province)  # None for 香港, 澳门, 台湾
    if province is None:
        province, city = default
    district = _pick_district(city, hint.district if hint else None, salt) if city else None
    return Endpoint(province, city, district)


def _hub_of(province: str) -> str:
    """The hub place name of a province: its hub city, else its short name (香港)."""
    return HUBS.get(province) or geo.short_name(province)


def _province_of(place: str) -> str:
    """The province of a hub place name."""
    return geo.province_of_city(place) or geo.canonical_province(place) or place


def plan_route(origin: Endpoint, destination: Endpoint) -> list[str]:
    """The hub places a parcel passes, origin city first, destination city last."""
    o_p, d_p = origin.province, destination.province
    stops = [origin.place]
    if o_p != d_p:
        stops.append(_hub_of(o_p))
        o_region, d_region = REGION.get(o_p), REGION.get(d_p)
        if o_region != d_region:
            stops.append(_GATEWAYS.get(o_region or "", stops[-1]))
            stops.append(_GATEWAYS.get(d_region or "", _hub_of(d_p)))
        stops.append(_hub_of(d_p))
    stops.append(destination.place)
    route: list[str] = []
    for stop in stops:
        if not route or route[-1] != stop:
            route.append(stop)
    return route


def lane_allowance_hours(origin: Endpoint, destination: Endpoint) -> float:
    """The default transit allowance of DESIGN §5 for this lane, in hours.

    Same city 1 d, same province 2 d, a remote province at either end 7 d, else 4 d. The
    sandbox only uses it to make its ``slow`` parcels late on any lane.
    """
    if geo.is_remote(origin.province) or geo.is_remote(destination.province):
        return 168.0
    if origin.province != destination.province:
        return 96.0
    return 24.0 if origin.city == destination.city else 48.0


def wrong_province_hub(origin: Endpoint, destination: Endpoint, salt: str) -> str:
    """A hub in a province next to the destination's (not the origin's): a mis-sort target."""
    near = [p for p in NEIGHBOURS.get(destination.province, ()) if p != origin.province]
    if not near:  # an island with a single neighbour that is also the origin
        near = list(NEIGHBOURS.get(destination.province, ())) or ["江苏省"]
    return _hub_of(near[stable_int("missort", salt) % len(near)])


def leg_hours(a: str, b: str) -> float:
    """Hours on the trunk line between two hub places."""
    pa, pb = _province_of(a), _province_of(b)
    if pa == pb:
        hours = 5.0
    elif pb in NEIGHBOURS.get(pa, ()):
        hours = 12.0
    elif REGION.get(pa) == REGION.get(pb):
        hours = 16.0
    else:
        hours = 24.0
    if geo.is_remote(pa) or geo.is_remote(pb):
        hours += 12.0
    return hours
