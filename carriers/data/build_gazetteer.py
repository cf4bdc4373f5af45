"""Build ``gazetteer.json`` from the China administrative-division table shipped by ``cpca``.

Run once, by hand, from the project root (``cpca`` is MIT-licensed; see ``README.md``)::

    .venv/bin/python carriers/data/build_gazetteer.py

The runtime (:mod:`carriers.geo`) reads only the JSON written here; it never imports
``cpca`` or ``pandas``. This script reads ``cpca/resources/adcodes.csv`` directly with the
``csv`` module (no pandas either), so it needs only the ``cpca`` files to be installed.

Output layout (lists, to keep the file small)::

    {"source": "...", "licence": "...",
     "provinces": [[code2, full_name, [short, ...]], ...],
     "cities":    [[code, full_name, [short, ...], province_code2], ...],
     "districts": [[code6, full_name, [short, ...], city_code], ...],
     "province_aliases": {"zhejiang": "33", ...}}

* A municipality (北京 上海 天津 重庆) is also its own city (code ``"1101"`` etc.); its
  districts and counties hang under that city.
* County-level units governed directly by a province (仙桃市, 济源市, 海南's 琼海市 and
  定安县, 新疆's 石河子市 ...) are cities here: nothing between them and the province.
* Short names strip the administrative suffix (省 市 自治区 特别行政区 地区 盟 自治州 区 县 旗
  新区 特区 ...) and the ethnic names before 自治州/自治县/自治旗; a short name shorter
  than two characters or a generic word (城区, 郊区, 前进 ...) is dropped. A short name
  may equal a higher level's (吉林 省/市, 海南 省/藏族自治州): the runtime prefers the
  higher level unless the text's context says otherwise.
* A few changes made after cpca's data (about 2018) are patched in ``PATCHES``.
"""

from __future__ import annotations

import csv
import json
import re
from importlib import resources
from pathlib import Path

OUT = Path(__file__).with_name("gazetteer.json")

# Administrative units renamed or merged after cpca 0.5.5's table was made.
# code6 -> (new name or None to drop, new parent city code or None to keep)
PATCHES: dict[str, tuple[str | None, str | None]] = {
    "542400": ("那曲市", None),  # 2017: 那曲地区 -> 那曲市
    "542421": ("色尼区", None),  # 2017: 那曲县 -> 色尼区
    "371200": (None, None),  # 2019: 莱芜市 merged into 济南市
    "371202": ("莱芜区", "3701"),  # 莱城区 -> 济南市莱芜区
    "371203": ("钢城区", "3701"),  # 钢城区 -> 济南市钢城区
    "500228": ("梁平区", None),  # 2016
    "500232": ("武隆区", None),  # 2016
    "330185": ("临安区", None),  # 2017
    "510124": ("郫都区", None),  # 2016
    "510132": ("新津区", None),  # 2020
    "610125": ("鄠邑区", None),  # 2016 (was 户县)
    "370181": ("章丘区", None),  # 2016
    "370125": ("济阳区", None),  # 2018
    "370282": ("即墨区", None),  # 2017
    "330283": ("奉化区", None),  # 2016
}
# Districts created after the table was made: (code6, name, parent city code).
ADDITIONS: list[tuple[str, str, str]] = [
    ("440309", "龙华区", "4403"),  # 深圳 2016
    ("440310", "坪山区", "4403"),  # 深圳 2016
    ("440311", "光明区", "4403"),  # 深圳 2018
    ("330113", "临平区", "3301"),  # 杭州 2021
    ("330114", "钱塘区", "3301"),  # 杭州 2021
]

# Names too generic to look for in free text (they are real districts, but "城区" or
# "东区" appear in countless addresses that are not that district).
GENERIC = frozenset(
    {"城区", "郊区", "矿区", "东区", "西区", "南区", "北区", "市中", "新区"}
    | {"前进", "向阳", "新华", "新城", "城中", "中站", "公安", "东方", "和平", "前锋", "新兴"}
)
# Short forms the suffix rules would get wrong.
SHORT_OVERRIDES: dict[str, list[str]] = {"神农架林区": ["神农架"]}

# Romanised province names accepted by canonical_province (lower-cased, spaces removed).
PROVINCE_ALIASES: dict[str, list[str]] = {
    "11": ["beijing"],
    "12": ["tianjin"],
    "13": ["hebei"],
    "14": ["shanxi"],
    "15": ["innermongolia", "neimenggu", "neimongol", "内蒙"],
    "21": ["liaoning"],
    "22": ["jilin"],
    "23": ["heilongjiang"],
    "31": ["shanghai"],
    "32": ["jiangsu"],
    "33": ["zhejiang"],
    "34": ["anhui"],
    "35": ["fujian"],
    "36": ["jiangxi"],
    "37": ["shandong"],
    "41": ["henan"],
    "42": ["hubei"],
    "43": ["hunan"],
    "44": ["guangdong"],
    "45": ["guangxi"],
    "46": ["hainan"],
    "50": ["chongqing"],
    "51": ["sichuan"],
    "52": ["guizhou"],
    "53": ["yunnan"],
    "54": ["tibet", "xizang"],
    "61": ["shaanxi"],
    "62": ["gansu"],
    "63": ["qinghai"],
    "64": ["ningxia"],
    "65": ["xinjiang"],
    "71": ["taiwan"],
    "81": ["hongkong"],
    "82": ["macau", "macao"],
}

MUNICIPALITIES = frozenset({"11", "12", "31", "50"})
SKIP_NAMES = frozenset({"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"})


def _nations() -> list[str]:
    """The 56 ethnic group names, longest first, with and without the trailing 族."""
    text = resources.files("cpca.resources").joinpath("56_nations.csv").read_text("utf-8")
    names = {n.strip() for n in text.split() if n.strip()}
    forms = names | {n[:-1] for n in names if n.endswith("族") and len(n) > 2}
    return sorted(forms, key=len, reverse=True)


NATIONS = _nations()


def _strip_nations(stem: str) -> str:
    """Remove ethnic names from the end of ``stem`` (延边朝鲜族 -> 延边), keeping >= 2 chars."""
    changed = True
    while changed:
        changed = False
        for nation in NATIONS:
            if stem.endswith(nation) and len(stem) - len(nation) >= 2:
                stem = stem[: -len(nation)]
                changed = True
                break
    return stem


def province_shorts(full: str) -> list[str]:
    """浙江省 -> 浙江, 广西壮族自治区 -> 广西, 香港特别行政区 -> 香港, 北京市 -> 北京."""
    for suffix in ("特别行政区", "自治区", "省", "市"):
        if full.endswith(suffix):
            return [_strip_nations(full[: -len(suffix)])]
    return []


def unit_shorts(full: str) -> list[str]:
    """Short forms of a city, district or county name (rules in the module docstring)."""
    m = re.fullmatch(r"(.+?)(自治州|自治县|自治旗)", full)
    if m:
        stem = _strip_nations(m.group(1))
        if stem.endswith("族") and len(stem) > 3:  # 鄂温克族自治旗: the name is the people's
            stem = stem[:-1]
        return [stem] if len(stem) >= 2 else []
    if full in SHORT_OVERRIDES:
        return list(SHORT_OVERRIDES[full])
    for suffix in ("新区", "特区", "地区", "市", "盟", "区", "县", "旗"):
        stem = full.removesuffix(suffix)
        if stem != full and len(stem) >= 2:
            return [stem]
    return []


def _read_rows() -> list[tuple[str, str]]:
    """(6-digit code, name) for every row of cpca's table, patched."""
    path = resources.files("cpca.resources").joinpath("adcodes.csv")
    rows: list[tuple[str, str]] = []
    with path.open("r", encoding="utf-8") as fh:
        for rec in csv.DictReader(fh):
            code, name = rec["adcode"][:6], rec["name"].strip()
            if code in PATCHES:
                new_name, _ = PATCHES[code]
                if new_name is None:
                    continue
                name = new_name
            rows.append((code, name))
    rows.extend((code, name) for code, name, _ in ADDITIONS)
    return sorted(rows)


def build() -> dict[str, object]:
    """The gazetteer as a JSON-ready dict."""
    rows = _read_rows()
    provinces: dict[str, tuple[str, list[str]]] = {}
    cities: dict[str, tuple[str, list[str], str]] = {}
    districts: dict[str, tuple[str, list[str], str]] = {}
    for code, name in rows:
        if code.endswith("0000"):
            provinces[code[:2]] = (name, province_shorts(name))
    for code, name in rows:
        p2 = code[:2]
        if code.endswith("0000") or name in SKIP_NAMES:
            continue
        if p2 in MUNICIPALITIES:
            city = p2 + "01"
            cities.setdefault(city, (provinces[p2][0], provinces[p2][1], p2))
            if not code.endswith("00"):
                districts[code] = (name, unit_shorts(name), city)
        elif code.endswith("00"):
            cities[code[:4]] = (name, unit_shorts(name), p2)
        elif code[2:4] == "90":  # 省直辖县级行政区划: a city of its own
            cities[code] = (name, unit_shorts(name), p2)
        else:
            parent = PATCHES.get(code, (None, None))[1] or code[:4]
            districts[code] = (name, unit_shorts(name), parent)
    missing = {c for _, _, c in districts.values()} - set(cities)
    assert not missing, f"districts without a city: {sorted(missing)}"

    # generic words are never names; a short name may repeat a higher level's (吉林, 海南):
    # carriers.geo prefers the higher level unless the text's context says otherwise
    for table in (cities, districts):
        for code, (full, shorts, parent) in table.items():
            table[code] = (full, [s for s in shorts if s not in GENERIC], parent)

    return {
        "source": "cpca 0.5.5 resources/adcodes.csv, patched by build_gazetteer.py",
        "licence": "MIT (c) 2018 QinYuan Du; see README.md",
        "provinces": [[c, full, shorts] for c, (full, shorts) in sorted(provinces.items())],
        "cities": [[c, *v] for c, v in sorted(cities.items())],
        "districts": [[c, *v] for c, v in sorted(districts.items())],
        "province_aliases": {
            alias: code for code, aliases in PROVINCE_ALIASES.items() for alias in aliases
        },
    }


def main() -> None:
    """Write ``gazetteer.json`` next to this script."""
    data = build()
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    OUT.write_text(text + "\n", encoding="utf-8")
    counts = {k: len(v) for k, v in data.items() if isinstance(v, list)}
    print(f"wrote {OUT} ({len(text.encode())} bytes): {counts}")


if __name__ == "__main__":
    main()
