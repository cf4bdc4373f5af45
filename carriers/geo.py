"""China place names: canonical province/city names and places found in free scan text.

The gazetteer (``data/gazetteer.json``, built from ``cpca``'s MIT-licensed table by
``data/build_gazetteer.py``) is loaded once at import into plain dicts; nothing here
imports ``cpca`` or ``pandas``.

How :func:`parse_location` reads a scan text such as
``"离开【上海浦东新区】前往【杭州】"``:

1. **Only the scan's own place.** The text is cut at the first destination or
   previous-stop marker (发往 前往 送往 运往 寄往 转往 转寄 下一站 上一站 目的地为/是/: → ->):
   what follows names where the parcel goes or came from, not where it was scanned.
   A courier's name after 快递员 派件员 派送员 投递员 揽件员 揽收员 收件员 业务员 派件人
   快递小哥 is blanked (a courier called 王海南 is not in 海南). If nothing is left, the
   location is unknown.
2. **Names, longest first.** The rest is scanned left to right: a precompiled regex finds
   the positions whose two characters can start a name, and a dict of names takes the
   longest gazetteer name there (full 浙江省 杭州市 西湖区, or short 浙江 杭州 西湖).
   Generic words (城区, 郊区, 前进 ...) and one-character stems are never names.
3. **The first place wins.** Names are merged while they agree (``【杭州市】 浙江杭州西湖区``
   is one place: 浙江省 杭州市 西湖区); the first name that cannot belong to the place built
   so far starts another place and it and everything after it are ignored.
4. **Ambiguity is not guessed.** A name may denote several places (鼓楼区 in 南京, 徐州,
   福州, 开封; 朝阳 is 朝阳市 in 辽宁 and 朝阳区 in 北京 and 长春). Context in the same
   text narrows it (``北京朝阳`` -> 北京市朝阳区, ``南京鼓楼`` -> 南京市鼓楼区). Without context
   the highest-level reading wins (``朝阳`` -> 辽宁省朝阳市, ``吉林`` -> 吉林省, ``中山`` ->
   中山市); readings at the same level keep only what they share (``鼓楼区`` alone ->
   district 鼓楼区 with no city; ``江苏鼓楼`` -> 江苏省, district 鼓楼区, no city).

A municipality (北京 上海 天津 重庆) is its own city: ``Location(province="北京市",
city="北京市")``. County-level units governed directly by a province (仙桃市, 琼海市,
石河子市 ...) are cities. ``country`` is ``"中国"`` whenever a place was found.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

from carriers.model import Location

__all__ = [
    "CHINA",
    "LOCATION_CACHE_SIZE",
    "REMOTE_PROVINCES",
    "canonical_city",
    "canonical_province",
    "districts_of",
    "is_remote",
    "parse_location",
    "province_of_city",
    "same_city",
    "same_province",
    "short_name",
]

CHINA = "中国"

_DATA = Path(__file__).with_name("data") / "gazetteer.json"


@dataclass(frozen=True, slots=True)
class _Place:
    """One administrative unit with its ancestors' codes (``None`` below its own level)."""

    pcode: str
    ccode: str | None
    dcode: str | None
    province: str
    city: str | None
    district: str | None
    depth: int  # 1 province, 2 city (or municipality), 3 district

    def fits(self, other: _Place) -> bool:
        """True when both can describe the same spot (one contains the other)."""
        return (
            self.pcode == other.pcode
            and (self.ccode is None or other.ccode is None or self.ccode == other.ccode)
            and (self.dcode is None or other.dcode is None or self.dcode == other.dcode)
        )


@dataclass(frozen=True, slots=True)
class _Tables:
    """Everything read from the gazetteer, indexed for the lookups below."""

    names: dict[str, tuple[_Place, ...]]  # any full or short name -> its readings
    city_names: dict[str, tuple[_Place, ...]]  # names a city may be given by -> cities
    province_names: dict[str, str]  # any province form (and romanised alias) -> full name
    shorts: dict[str, str]  # full name -> its usual short form
    districts: dict[str, tuple[str, ...]]  # city full name -> its districts' full names


def _load() -> _Tables:
    """Read the gazetteer into lookup tables (see the module docstring)."""
    raw = json.loads(_DATA.read_text(encoding="utf-8"))
    provinces: dict[str, _Place] = {}
    cities: dict[str, _Place] = {}
    names: dict[str, list[_Place]] = {}
    city_names: dict[str, list[_Place]] = {}
    province_names: dict[str, str] = {}
    short_of: dict[str, str] = {}
    districts: dict[str, list[str]] = {}

    def add(table: dict[str, list[_Place]], name: str, place: _Place) -> None:
        bucket = table.setdefault(name, [])
        if place not in bucket:
            bucket.append(place)

    province_fulls = {p[1] for p in raw["provinces"]}
    municipal = {c[3] for c in raw["cities"] if c[1] in province_fulls}
    for code, full, shorts in raw["provinces"]:
        city = f"{code}01" if code in municipal else None
        place = _Place(code, city, None, full, full if city else None, None, 2 if city else 1)
        provinces[code] = place
        short_of[full] = shorts[0] if shorts else full
        for name in (full, *shorts):
            add(names, name, place)
            province_names[name] = full
    for alias, code in raw["province_aliases"].items():
        province_names[alias] = provinces[code].province
    for code, full, shorts, pcode in raw["cities"]:
        place = _Place(pcode, code, None, provinces[pcode].province, full, None, 2)
        cities[code] = place
        short_of.setdefault(full, shorts[0] if shorts else full)
        for name in (full, *shorts):
            add(names, name, place)
            add(city_names, name, place)
    for code, full, shorts, ccode in raw["districts"]:
        parent = cities[ccode]
        place = _Place(parent.pcode, ccode, code, parent.province, parent.city, full, 3)
        short_of.setdefault(full, shorts[0] if shorts else full)
        districts.setdefault(str(parent.city), []).append(full)
        for name in (full, *shorts):
            add(names, name, place)
            if full.endswith("市"):  # a county-level city (义乌市) stands for its prefecture
                add(city_names, name, parent)
    return _Tables(
        names={k: tuple(v) for k, v in names.items()},
        city_names={k: tuple(v) for k, v in city_names.items()},
        province_names=province_names,
        shorts=short_of,
        districts={k: tuple(v) for k, v in districts.items()},
    )


_T = _load()
_NAMES = _T.names


def _prefix_lengths(names: dict[str, tuple[_Place, ...]]) -> dict[str, tuple[int, ...]]:
    """First two characters of every name -> lengths of the names they start, longest first."""
    grouped: dict[str, set[int]] = {}
    for name in names:
        grouped.setdefault(name[:2], set()).add(len(name))
    return {k: tuple(sorted(v, reverse=True)) for k, v in grouped.items()}


_PREFIX_LENGTHS = _prefix_lengths(_NAMES)
# Positions whose two characters could start a name, found by the regex engine (in C) so
# the Python loop in _scan only visits a handful of positions per text.
_CANDIDATE = re.compile(
    "(?=[{}][{}])".format(
        re.escape("".join(sorted({k[0] for k in _PREFIX_LENGTHS}))),
        re.escape("".join(sorted({k[1] for k in _PREFIX_LENGTHS}))),
    )
)

# Where the text stops talking about the scan's own place (rule 1 of the module docstring).
_CUT = re.compile(r"发往|前往|送往|运往|寄往|转往|转寄|下一站|上一站|目的地[为是:：]|→|->")
# A courier's name: the role word, optional punctuation, then 2-4 Han characters.
_PERSON = re.compile(
    r"(?:快递员|派件员|派送员|投递员|揽件员|揽收员|收件员|业务员|派件人|快递小哥)"
    r"[\s:：【\[(（]*[\u4e00-\u9fff]{2,4}"
)

#: full names of the provinces the default policy treats as remote
REMOTE_PROVINCES: frozenset[str] = frozenset(
    {
        "西藏自治区",
        "新疆维吾尔自治区",
        "青海省",
        "内蒙古自治区",
        "宁夏回族自治区",
        "甘肃省",
        "海南省",
    }
)


def _key(name: str) -> str:
    """A lookup key: no surrounding or inner spaces, ASCII lower-cased."""
    return "".join(name.split()).lower()


def canonical_province(name: str | None) -> str | None:
    """The full official name of a province given in any common form, else ``None``.

    ``"浙江"``, ``"浙江省"`` and ``"Zhejiang"`` give ``"浙江省"``; ``"广西"`` gives
    ``"广西壮族自治区"``; ``"北京"`` gives ``"北京市"``.
    """
    if not name:
        return None
    return _T.province_names.get(_key(name))


def _city_candidates(name: str | None, province: str | None) -> tuple[_Place, ...]:
    """Cities ``name`` may denote, restricted to ``province`` when that is given."""
    if not name:
        return ()
    found = _T.city_names.get(_key(name), ())
    if province is not None:
        full = canonical_province(province)
        found = tuple(p for p in found if p.province == full)
    return found


def canonical_city(name: str | None, province: str | None = None) -> str | None:
    """The full name of a prefecture-level city given in any common form, else ``None``.

    ``"杭州"`` and ``"杭州市"`` give ``"杭州市"``; a municipality is its own city
    (``"北京"`` gives ``"北京市"``); a county-level city gives its prefecture (``"义乌"``
    gives ``"金华市"``). With ``province``, a city outside that province gives ``None``;
    a name that stays ambiguous gives ``None``.
    """
    found = _city_candidates(name, province)
    return found[0].city if len(found) == 1 else None


def province_of_city(city: str) -> str | None:
    """The full name of the province ``city`` (any common form) belongs to, else ``None``."""
    found = _city_candidates(city, None)
    return found[0].province if len(found) == 1 else None


def short_name(name: str) -> str:
    """The usual short form of a full place name (浙江省 -> 浙江, 延边朝鲜族自治州 -> 延边).

    A name with no short form (or not in the gazetteer) comes back unchanged.
    """
    return _T.shorts.get(name, name)


def districts_of(city: str | None) -> tuple[str, ...]:
    """Full names of the districts and counties of ``city`` (any common form), by code.

    ``()`` for an unknown city or one with no districts (东莞市, 仙桃市).
    """
    full = canonical_city(city)
    return _T.districts.get(full, ()) if full else ()


def is_remote(province: str | None) -> bool:
    """True when ``province`` (any common form) is one of :data:`REMOTE_PROVINCES`."""
    return canonical_province(province) in REMOTE_PROVINCES


def _same(a: str | None, b: str | None, ca: str | None, cb: str | None) -> bool:
    """Compare canonical forms; two unknown names compare as written; None never matches."""
    if not a or not b:
        return False
    if ca is not None or cb is not None:
        return ca == cb
    return _key(a) == _key(b)


def same_province(a: str | None, b: str | None) -> bool:
    """True when both name the same province (``"浙江"`` vs ``"浙江省"``); False if one is None."""
    return _same(a, b, canonical_province(a), canonical_province(b))


def same_city(a: str | None, b: str | None) -> bool:
    """True when both name the same city (``"杭州"`` vs ``"杭州市"``); False if one is None."""
    return _same(a, b, canonical_city(a), canonical_city(b))


def _scan(text: str) -> list[tuple[_Place, ...]]:
    """The readings of each gazetteer name in ``text``, left to right, longest name first."""
    found: list[tuple[_Place, ...]] = []
    taken = -1  # end of the last name found: names never overlap
    for candidate in _CANDIDATE.finditer(text):
        i = candidate.start()
        if i < taken:
            continue
        lengths = _PREFIX_LENGTHS.get(text[i : i + 2])
        if lengths is None:
            continue
        for size in lengths:
            places = _NAMES.get(text[i : i + size])
            if places is not None:
                found.append(places)
                taken = i + size
                break
    return found


def _deeper(a: _Place, b: _Place) -> _Place:
    """Of two places that fit, the more specific one."""
    return b if b.depth > a.depth else a


def _resolve(readings: list[tuple[_Place, ...]]) -> Location:
    """Merge name readings into one place (rules 3 and 4 of the module docstring)."""
    hypotheses = readings[0]
    for places in readings[1:]:
        if len(hypotheses) == 1 and len(places) == 1:  # the common, unambiguous case
            h, p = hypotheses[0], places[0]
            if not h.fits(p):
                break
            hypotheses = (_deeper(h, p),)
            continue
        merged = [_deeper(h, p) for h in hypotheses for p in places if h.fits(p)]
        if not merged:
            break  # another place starts here: the first one wins
        hypotheses = tuple(dict.fromkeys(merged))
    if len(hypotheses) > 1:
        top = min(h.depth for h in hypotheses)
        shallow = [h for h in hypotheses if h.depth == top]
        # several readings of one level where only one is the top level: the top one wins
        hypotheses = (shallow[0],) if len(shallow) == 1 else hypotheses
    first = hypotheses[0]
    if len(hypotheses) == 1:
        return Location(CHINA, first.province, first.city, first.district)
    same_p = all(h.pcode == first.pcode for h in hypotheses)
    same_c = same_p and all(h.ccode == first.ccode for h in hypotheses)
    same_d = all(h.district == first.district for h in hypotheses)
    return Location(
        CHINA,
        first.province if same_p else None,
        first.city if same_c else None,
        first.district if same_d else None,
    )


#: How many scan texts :func:`parse_location` remembers. Every poll returns a parcel's whole
#: history and hub texts repeat across parcels, so most texts were seen moments ago;
#: a few MB bounds what a long-running daemon keeps.
LOCATION_CACHE_SIZE = 8192


def parse_location(text: str) -> Location:
    """The place a scan text says the scan happened at; ``Location()`` when it names none.

    ``"【杭州市】 浙江杭州西湖区文三路公司 已揽收"`` gives 中国 浙江省 杭州市 西湖区 and
    ``"离开【上海浦东新区】前往【杭州】"`` gives 中国 上海市 上海市 浦东新区; the heuristics
    are described in the module docstring. Results are remembered per text (a bounded
    LRU): :class:`Location` is immutable, so sharing one between events is safe.
    """
    return _parse_location_cached(text)


def _parse_location(text: str) -> Location:
    """:func:`parse_location` without the cache."""
    if not text:
        return Location()
    cut = _CUT.search(text)
    if cut is not None:
        text = text[: cut.start()]
    if "员" in text or "人" in text or "小哥" in text:  # cheap test before the courier-name regex
        text = _PERSON.sub(" ", text)
    readings = _scan(text)
    if not readings:
        return Location()
    return _resolve(readings)


_parse_location_cached = functools.lru_cache(maxsize=LOCATION_CACHE_SIZE)(_parse_location)
