"""Unit tests for carriers.geo: canonical names and places found in scan text."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from carriers import geo
from carriers.geo import (
    REMOTE_PROVINCES,
    canonical_city,
    canonical_province,
    districts_of,
    is_remote,
    parse_location,
    province_of_city,
    same_city,
    same_province,
    short_name,
)
from carriers.model import Location

GAZETTEER = Path(geo.__file__).with_name("data") / "gazetteer.json"


def loc(province: str | None, city: str | None, district: str | None = None) -> Location:
    """A Chinese location (the country is always 中国 when a place was found)."""
    return Location("中国", province, city, district)


# --- canonical names -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("浙江", "浙江省"),
        ("浙江省", "浙江省"),
        (" 浙江省 ", "浙江省"),
        ("Zhejiang", "浙江省"),
        ("广西", "广西壮族自治区"),
        ("广西壮族自治区", "广西壮族自治区"),
        ("内蒙古", "内蒙古自治区"),
        ("新疆", "新疆维吾尔自治区"),
        ("宁夏", "宁夏回族自治区"),
        ("北京", "北京市"),
        ("北京市", "北京市"),
        ("香港", "香港特别行政区"),
        ("Inner Mongolia", "内蒙古自治区"),
    ],
)
def test_canonical_province_accepts_short_full_and_romanised_forms(
    given: str, expected: str
) -> None:
    """Short, full and pinyin province names all give the full official name."""
    assert canonical_province(given) == expected


@pytest.mark.parametrize("given", [None, "", "杭州", "浙", "火星省", "Atlantis"])
def test_canonical_province_returns_none_for_non_provinces(given: str | None) -> None:
    """A city, a one-character stem or an unknown name is not a province."""
    assert canonical_province(given) is None


@pytest.mark.parametrize(
    ("given", "province", "expected"),
    [
        ("杭州", None, "杭州市"),
        ("杭州市", None, "杭州市"),
        ("杭州", "浙江", "杭州市"),
        ("杭州市", "浙江省", "杭州市"),
        ("北京", None, "北京市"),
        ("上海市", "上海", "上海市"),
        ("重庆", None, "重庆市"),
        ("吉林", None, "吉林市"),
        ("延边", None, "延边朝鲜族自治州"),
        ("仙桃", None, "仙桃市"),
        ("义乌", None, "金华市"),
        ("义乌市", "浙江省", "金华市"),
    ],
)
def test_canonical_city_resolves_common_forms(
    given: str, province: str | None, expected: str
) -> None:
    """Short and full city names, municipalities and county-level cities give a city."""
    assert canonical_city(given, province) == expected


@pytest.mark.parametrize(
    ("given", "province"),
    [
        (None, None),
        ("", None),
        ("杭州", "江苏省"),
        ("浙江", None),
        ("浦东新区", None),
        ("不存在市", None),
    ],
)
def test_canonical_city_returns_none_when_unknown_or_outside_the_province(
    given: str | None, province: str | None
) -> None:
    """An unknown name, a province, a district or a city in another province gives None."""
    assert canonical_city(given, province) is None


def test_province_of_city_handles_short_forms_and_municipalities() -> None:
    """A city's province comes back in full; an unknown city gives None."""
    assert province_of_city("杭州") == "浙江省"
    assert province_of_city("南宁市") == "广西壮族自治区"
    assert province_of_city("上海") == "上海市"
    assert province_of_city("乌托邦") is None


def test_remote_provinces_are_the_policy_seven_by_full_name() -> None:
    """REMOTE_PROVINCES holds the seven remote provinces' full names, all in the gazetteer."""
    assert {canonical_province(p) for p in REMOTE_PROVINCES} == REMOTE_PROVINCES
    assert len(REMOTE_PROVINCES) == 7
    assert "西藏自治区" in REMOTE_PROVINCES
    assert "海南省" in REMOTE_PROVINCES


@pytest.mark.parametrize(
    ("name", "remote"),
    [("西藏", True), ("新疆维吾尔自治区", True), ("海南", True), ("浙江", False), (None, False)],
)
def test_is_remote_accepts_any_form(name: str | None, remote: bool) -> None:
    """is_remote is tolerant of short forms and False for None."""
    assert is_remote(name) is remote


def test_same_province_and_same_city_tolerate_forms_and_reject_none() -> None:
    """Short and full forms compare equal; different places or None compare unequal."""
    assert same_province("浙江", "浙江省")
    assert same_province("广西", "广西壮族自治区")
    assert not same_province("浙江", "江苏省")
    assert not same_province(None, "浙江省")
    assert not same_province(None, None)
    assert same_city("杭州", "杭州市")
    assert same_city("北京", "北京市")
    assert not same_city("杭州", "宁波市")
    assert not same_city("杭州市", None)
    assert not same_city("杭州市", "不存在城")


def test_same_city_compares_unknown_names_as_written() -> None:
    """Two names the gazetteer does not know are equal only when written the same."""
    assert same_city("Springfield", "springfield ")
    assert not same_city("Springfield", "Shelbyville")


def test_short_name_strips_suffixes_and_ethnic_names() -> None:
    """Full names give their usual short form; unknown names come back unchanged."""
    assert short_name("浙江省") == "浙江"
    assert short_name("广西壮族自治区") == "广西"
    assert short_name("北京市") == "北京"
    assert short_name("杭州市") == "杭州"
    assert short_name("延边朝鲜族自治州") == "延边"
    assert short_name("浦东新区") == "浦东"
    assert short_name("忠县") == "忠县"  # a one-character stem is never a name
    assert short_name("Atlantis") == "Atlantis"


def test_districts_of_lists_a_city_s_districts() -> None:
    """A city's districts in full, by any form of the city; () when unknown or none."""
    assert "西湖区" in districts_of("杭州")
    assert "浦东新区" in districts_of("上海市")
    assert "西湖区" not in districts_of("宁波市")
    assert districts_of("东莞市") == ()
    assert districts_of("不存在") == ()
    assert districts_of(None) == ()


# --- parse_location: the examples of the brief -------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("【杭州市】 浙江杭州西湖区文三路公司 已揽收", loc("浙江省", "杭州市", "西湖区")),
        ("快件已到达【广州转运中心】", loc("广东省", "广州市")),
        ("[深圳市]深圳宝安区 派件中", loc("广东省", "深圳市", "宝安区")),
        ("到达 江苏省南京市 分拨中心", loc("江苏省", "南京市")),
        ("离开【上海浦东新区】前往【杭州】", loc("上海市", "上海市", "浦东新区")),
        ("【乌鲁木齐市】快件到达 乌鲁木齐转运中心", loc("新疆维吾尔自治区", "乌鲁木齐市")),
        ("快件已由【杭州西湖区文三路菜鸟驿站】代收", loc("浙江省", "杭州市", "西湖区")),
        ("【义乌转运中心】已发出", loc("浙江省", "金华市", "义乌市")),
        ("快件到达【仙桃分拨中心】", loc("湖北省", "仙桃市")),
        ("广西南宁市青秀区", loc("广西壮族自治区", "南宁市", "青秀区")),
    ],
)
def test_parse_location_reads_typical_scan_texts(text: str, expected: Location) -> None:
    """Province, city and district are found in courier scan texts."""
    assert parse_location(text) == expected


def test_parse_location_prefers_the_scan_place_over_the_destination() -> None:
    """Places after 发往/前往/下一站/上一站 are ignored; the scan's own place wins."""
    text = "【广州市】快件离开【广州转运中心】已发往【杭州转运中心】"
    assert parse_location(text) == loc("广东省", "广州市")
    assert parse_location("快件到达【杭州转运中心】，上一站【广州转运中心】") == loc(
        "浙江省", "杭州市"
    )
    assert parse_location("【武汉转运中心】已发出，下一站【长沙转运中心】") == loc(
        "湖北省", "武汉市"
    )


def test_parse_location_gives_unknown_when_only_a_destination_is_named() -> None:
    """A text naming only where the parcel goes says nothing about where it is."""
    assert parse_location("快件已发往【杭州转运中心】") == Location()


def test_parse_location_first_place_wins_when_places_disagree() -> None:
    """When two unrelated places are named without a marker, the first one is taken."""
    assert parse_location("广州白云区 杭州") == loc("广东省", "广州市", "白云区")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "运输中",
        "快件已签收，签收人：本人",
        "您的快件已被 丰巢智能快递柜 签收",
        "韵达快递 圆通速递 申通快递 中通快递 极兔速递 京东物流 顺丰速运 德邦快递 中国邮政",
        "问题件 疑难件 拒收 退回 破损 遗失 超区 不派送 电话无人接听 地址不详 派送失败",
        "转运中心 分拨中心 集散中心 营业部 网点 快递柜 菜鸟驿站 代收点 揽投部 处理中心",
        "快递员【王海南】正在派件，电话：138****5678",
    ],
)
def test_parse_location_finds_nothing_in_texts_without_places(text: str) -> None:
    """Courier vocabulary and couriers' names are not mistaken for places."""
    assert parse_location(text) == Location()
    assert not parse_location(text).is_known


def test_parse_location_masks_courier_names_but_keeps_the_place() -> None:
    """A courier called 王海南 does not move a parcel scanned in 杭州 to 海南."""
    text = "【杭州市】派件员：王海南 电话：138****5678 正在为您派件"
    assert parse_location(text) == loc("浙江省", "杭州市")


# --- parse_location: ambiguity ------------------------------------------------------------


def test_ambiguous_district_alone_gives_no_city() -> None:
    """鼓楼区 (南京, 徐州, 福州, 开封) alone names a district but no city or province."""
    assert parse_location("鼓楼区") == Location("中国", None, None, "鼓楼区")


def test_ambiguous_district_uses_city_context() -> None:
    """A city named in the same text picks the right 鼓楼区."""
    assert parse_location("南京鼓楼") == loc("江苏省", "南京市", "鼓楼区")
    assert parse_location("福建省福州市鼓楼区") == loc("福建省", "福州市", "鼓楼区")


def test_ambiguous_district_with_only_province_context_keeps_the_shared_part() -> None:
    """江苏 has two 鼓楼区 (南京, 徐州): the province is known, the city is not."""
    assert parse_location("江苏鼓楼区") == Location("中国", "江苏省", None, "鼓楼区")


def test_chaoyang_resolves_by_context_else_to_the_city() -> None:
    """朝阳 alone is 辽宁朝阳市; with 北京 it is 北京朝阳区; 朝阳区 alone has no city."""
    assert parse_location("朝阳") == loc("辽宁省", "朝阳市")
    assert parse_location("北京朝阳") == loc("北京市", "北京市", "朝阳区")
    assert parse_location("北京市朝阳区") == loc("北京市", "北京市", "朝阳区")
    assert parse_location("长春朝阳区") == loc("吉林省", "长春市", "朝阳区")
    assert parse_location("朝阳区") == Location("中国", None, None, "朝阳区")


def test_short_names_shared_with_a_province_prefer_the_province() -> None:
    """吉林 and 海南 alone are provinces; 吉林市 and 青海海南 are the prefectures."""
    assert parse_location("吉林") == loc("吉林省", None)
    assert parse_location("吉林市") == loc("吉林省", "吉林市")
    assert parse_location("海南") == loc("海南省", None)
    assert parse_location("青海海南") == loc("青海省", "海南藏族自治州")


def test_city_beats_a_same_named_district_without_context() -> None:
    """中山 is 中山市 (广东); 中山区 is the district of 大连."""
    assert parse_location("中山") == loc("广东省", "中山市")
    assert parse_location("中山区") == loc("辽宁省", "大连市", "中山区")


def test_municipality_is_its_own_city() -> None:
    """北京 gives province and city 北京市."""
    assert parse_location("【北京】") == loc("北京市", "北京市")


# --- data and speed ----------------------------------------------------------------------


def test_gazetteer_is_small_and_documents_its_source() -> None:
    """The shipped JSON is compact and names its source and licence."""
    raw = GAZETTEER.read_bytes()
    assert len(raw) < 400_000
    data = json.loads(raw)
    assert "cpca" in data["source"]
    assert "MIT" in data["licence"]
    assert len(data["provinces"]) == 34
    assert len(data["cities"]) > 330
    assert len(data["districts"]) > 2800


def test_runtime_does_not_import_cpca_or_pandas() -> None:
    """Importing carriers.geo in a fresh interpreter pulls in neither cpca nor pandas."""
    root = Path(geo.__file__).parent.parent
    code = "import sys, carriers.geo; print(sorted({'cpca', 'pandas'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_parse_location_is_fast() -> None:
    """A typical scan text parses in well under 20 µs (generous bound for slow CI)."""
    texts = [
        "【杭州市】 浙江杭州西湖区文三路公司 已揽收",
        "快件已到达【广州转运中心】",
        "离开【上海浦东新区】前往【杭州】",
    ]
    rounds = 2000
    start = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            parse_location(text)
    per_call = (time.perf_counter() - start) / (rounds * len(texts))
    assert per_call < 100e-6  # measured ~5 µs; the bound only catches pathological slowness


def test_parse_location_cache_answers_as_the_parser_does() -> None:
    """A remembered text gives the same place as parsing it afresh, on every call."""
    texts = [
        "【杭州市】 浙江杭州西湖区文三路公司 已揽收",
        "离开【上海浦东新区】前往【杭州】",
        "【南京鼓楼】派件员【王海南】正在派件",
        "您的快件已签收",
        "",
    ]
    for text in texts * 3:
        assert parse_location(text) == geo._parse_location(text)


def test_parse_location_cache_stays_bounded() -> None:
    """Past LOCATION_CACHE_SIZE distinct texts the oldest are forgotten, and still parse."""
    first = "快件已到达【杭州转运中心】 #0"
    for i in range(geo.LOCATION_CACHE_SIZE + 50):
        parse_location(f"快件已到达【杭州转运中心】 #{i}")
    assert geo._parse_location_cached.cache_info().currsize <= geo.LOCATION_CACHE_SIZE
    assert parse_location(first) == loc("浙江省", "杭州市")
