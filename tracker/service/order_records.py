"""Check one order record (DESIGN §8) and build an :class:`Order`, reporting every problem.

Pure: no files, no database, no clock. A record is the JSON-shaped dict of one order; the
file readers in :mod:`tracker.service.importing` make it from a ``.jsonl`` line or from an
order's ``.csv`` rows, and say through a :class:`Sink` where each field came from.

Rules: unknown fields are errors; a field that may be null may also be left out. Times are
ISO 8601; without an offset they are read in ``timezone``; a date alone is refused. Phones
are mainland mobiles, stored as 11 digits. Provinces must be known to :mod:`carriers.geo`
and are stored canonical (``浙江`` -> ``浙江省``); a city is canonicalised within its province
when known, kept as written when unknown, and refused when it lies in another province.
Numbers are JSON numbers in ``.jsonl``, digits in ``.csv``. Personal data (name, phone,
chat id, address) is never echoed in a message.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from carriers.geo import canonical_city, canonical_province
from carriers.registry import COURIERS, is_known_courier
from tracker.domain.model import Address, Buyer, Item, Order, ShipmentRecord

__all__ = [
    "ORDER_KEYS",
    "PART_KEYS",
    "PERSONAL_KEYS",
    "SHIPPED_AT_SKEW",
    "LineError",
    "Loc",
    "Sink",
    "order_from_record",
    "weight_row",
]

#: how far ``shipped_at`` may precede ``paid_at`` (clocks of shop and warehouse differ)
SHIPPED_AT_SKEW = timedelta(minutes=5)

#: the record's top-level fields that hold a single value
ORDER_KEYS = ("order_id", "paid_at", "ship_by", "deliver_by")
#: the fields of each nested object: buyer, origin, destination, one item, one shipment
PART_KEYS: dict[str, tuple[str, ...]] = {
    "buyer": ("name", "phone", "chat_id", "opt_out"),
    "origin": ("province", "city", "district", "address"),
    "destination": ("province", "city", "district", "address"),
    "item": ("sku", "name", "qty", "unit_weight_kg"),
    "shipment": ("courier", "tracking_number", "shipped_at", "weight_kg"),
}
#: field names whose values are personal data, never echoed in a message
PERSONAL_KEYS = frozenset({"name", "phone", "chat_id", "address"})
_RECORD_KEYS = (*ORDER_KEYS, "buyer", "origin", "destination", "items", "shipments")

_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_TRACKING = re.compile(r"[A-Za-z0-9-]{5,40}")
_CSV_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_EXCEL_SCIENTIFIC = re.compile(r"[0-9](\.[0-9]+)?[Ee]\+[0-9]+")
_CSV_BOOL = {"true": True, "1": True, "yes": True, "y": True, "是": True,
             "false": False, "0": False, "no": False, "n": False, "否": False}  # fmt: skip

#: where a value sits in a record: keys and list indexes, e.g. ``("items", 0, "qty")``
Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class LineError:
    """One problem in an input file; ``line`` is the 1-based physical line (0: the whole file)."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


# ---------------------------------------------------------------- where errors point


@dataclass
class Sink:
    """Collects the errors of one record; JSON names fields by path, all on one line."""

    path: str
    line: int
    errors: list[LineError] = field(default_factory=list)

    def add(self, loc: Loc, reason: str) -> None:
        """Record ``reason`` against the field at ``loc``, on the line it came from."""
        line, name = self.place(loc)
        self.errors.append(LineError(self.path, line, f"{name}: {reason}"))

    def place(self, loc: Loc) -> tuple[int, str]:
        """The line the field at ``loc`` came from, and its name in messages."""
        return self.line, _dotted(loc)

    def where(self, loc: Loc) -> str:
        """How a message refers to another field at ``loc`` (its path here)."""
        return _dotted(loc)


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else part
    return out


@dataclass
class _Ctx:
    sink: Sink
    tz: ZoneInfo
    default_origin: Address | None
    csv: bool

    def err(self, loc: Loc, reason: str) -> None:
        self.sink.add(loc, reason)


# ---------------------------------------------------------------- field readers
def _text(ctx: _Ctx, v: Any, loc: Loc, *, required: bool = False, max_len: int = 0) -> str | None:
    if isinstance(v, str):
        v = v.strip()
    if v is None or v == "":
        if required:
            ctx.err(loc, "required")
        return None
    if not isinstance(v, str):
        ctx.err(loc, "must be a string")
        return None
    if ctx.csv and _EXCEL_SCIENTIFIC.fullmatch(v):
        shown = "" if loc[-1] in PERSONAL_KEYS else f'"{v}" '
        ctx.err(loc, f"{shown}looks mangled by Excel (1.2E+10); format the column as text")
        return None
    if max_len and len(v) > max_len:
        ctx.err(loc, f"longer than {max_len} characters")
        return None
    return v


def _time(ctx: _Ctx, v: Any, loc: Loc, *, required: bool = False) -> datetime | None:
    s = _text(ctx, v, loc, required=required)
    if s is None:
        return None
    if not re.search(r"[Tt ]", s):
        try:
            date.fromisoformat(s)
        except ValueError:
            pass
        else:
            ctx.err(loc, f'"{s}" is a date without a time (e.g. 2026-09-10T10:00:00+08:00)')
            return None
    try:
        t = datetime.fromisoformat(s)
    except ValueError:
        ctx.err(loc, f'not an ISO 8601 time: "{s}"')
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=ctx.tz)


def _number(ctx: _Ctx, v: Any, loc: Loc, what: str) -> float | None:
    """A finite number from JSON, or from digits in CSV; ``None`` if absent or bad."""
    if ctx.csv and isinstance(v, str) and _CSV_NUMBER.fullmatch(v.strip()):
        v = float(v)
    if isinstance(v, int | float) and not isinstance(v, bool):
        n = float(v) if abs(v) < 1e300 else math.inf
        if math.isfinite(n):
            return n
    ctx.err(loc, f"must be {what}")
    return None


def _weight(ctx: _Ctx, v: Any, loc: Loc) -> float | None:
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    w = _number(ctx, v, loc, "a number of kg >= 0")
    if w is not None and w < 0:
        ctx.err(loc, "must be a number of kg >= 0")
        return None
    return w


def _qty(ctx: _Ctx, v: Any, loc: Loc) -> int:
    if v is None or v == "":
        ctx.err(loc, "required")
        return 0
    n = _number(ctx, v, loc, "a whole number > 0")
    if n is not None and (n <= 0 or not n.is_integer()):
        ctx.err(loc, "must be a whole number > 0")
    return int(n) if n is not None and n.is_integer() else 0


def _flag(ctx: _Ctx, v: Any, loc: Loc) -> bool:
    if v is None or isinstance(v, bool):
        return bool(v)
    if ctx.csv and isinstance(v, str) and v.strip().lower() in _CSV_BOOL:
        return _CSV_BOOL[v.strip().lower()]
    ctx.err(loc, "must be true or false" + (" (or 1/0, yes/no, 是/否)" if ctx.csv else ""))
    return False


def _phone(ctx: _Ctx, v: Any, loc: Loc) -> str:
    s = _text(ctx, v, loc, required=True)
    if s is None:
        return ""
    digits = re.sub(r"[\s-]", "", s)
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix) :]
    if not _MOBILE.fullmatch(digits):
        ctx.err(loc, "not a mainland mobile number (11 digits starting with 1)")
    return digits


def _obj(ctx: _Ctx, v: Any, loc: Loc, keys: Iterable[str]) -> Mapping[str, Any] | None:
    """``v`` as an object holding only ``keys``; unknown keys are reported, not dropped."""
    if not isinstance(v, dict):
        ctx.err(loc, "must be an object")
        return None
    allowed = list(keys)
    for key in v:
        if key not in allowed:
            near = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            ctx.err((*loc, str(key)), f"unknown field{hint}")
    return v


# ---------------------------------------------------------------- record parts


def _address(ctx: _Ctx, v: Any, loc: Loc) -> Address | None:
    obj = _obj(ctx, v, loc, PART_KEYS["destination"])
    if obj is None:
        return None
    prov_in = _text(ctx, obj.get("province"), (*loc, "province"), required=True)
    city_in = _text(ctx, obj.get("city"), (*loc, "city"), required=True)
    district = _text(ctx, obj.get("district"), (*loc, "district"))
    street = _text(ctx, obj.get("address"), (*loc, "address"))
    if prov_in is None or city_in is None:
        return None
    province = canonical_province(prov_in)
    if province is None:
        ctx.err((*loc, "province"), f'unknown province "{prov_in}"')
        return None
    city = canonical_city(city_in, province)
    if city is None and (elsewhere := canonical_city(city_in)) is not None:
        ctx.err((*loc, "city"), f'"{elsewhere}" is not in {province}')
        return None
    return Address(province, city or city_in, district, street)


def _buyer(ctx: _Ctx, v: Any) -> Buyer | None:
    if v is None:
        ctx.err(("buyer",), "required")
        return None
    obj = _obj(ctx, v, ("buyer",), PART_KEYS["buyer"])
    if obj is None:
        return None
    name = _text(ctx, obj.get("name"), ("buyer", "name"), required=True)
    phone = _phone(ctx, obj.get("phone"), ("buyer", "phone"))
    chat_id = _text(ctx, obj.get("chat_id"), ("buyer", "chat_id"))
    opt_out = _flag(ctx, obj.get("opt_out"), ("buyer", "opt_out"))
    return Buyer(name or "", phone, chat_id, opt_out)


def _items(ctx: _Ctx, v: Any) -> list[Item]:
    if not isinstance(v, list) or not v:
        ctx.err(("items",), "must be a non-empty list" if not ctx.csv else "no item rows")
        return []
    items = []
    for i, raw in enumerate(v):
        loc: Loc = ("items", i)
        if (obj := _obj(ctx, raw, loc, PART_KEYS["item"])) is not None:
            sku = _text(ctx, obj.get("sku"), (*loc, "sku"), required=True)
            name = _text(ctx, obj.get("name"), (*loc, "name"), required=True)
            qty = _qty(ctx, obj.get("qty"), (*loc, "qty"))
            weight = _weight(ctx, obj.get("unit_weight_kg"), (*loc, "unit_weight_kg"))
            items.append(Item(sku or "", name or "", qty, weight))
    return items


def _shipments(ctx: _Ctx, v: Any, paid_at: datetime | None) -> list[ShipmentRecord]:
    if v is None:
        return []
    if not isinstance(v, list):
        ctx.err(("shipments",), "must be a list")
        return []
    out: list[ShipmentRecord] = []
    seen: dict[str, int] = {}
    for j, raw in enumerate(v):
        loc: Loc = ("shipments", j)
        if (obj := _obj(ctx, raw, loc, PART_KEYS["shipment"])) is None:
            continue
        courier = (_text(ctx, obj.get("courier"), (*loc, "courier"), required=True) or "").lower()
        if courier and not is_known_courier(courier):
            known = ", ".join(COURIERS)
            ctx.err((*loc, "courier"), f'unknown courier code "{courier}" (known: {known})')
        number = _text(ctx, obj.get("tracking_number"), (*loc, "tracking_number"), required=True)
        if number is not None and not _TRACKING.fullmatch(number):
            ctx.err((*loc, "tracking_number"), f'"{number}": must be 5-40 letters, digits or -')
        elif number is not None and number in seen:
            other = ctx.sink.where(("shipments", seen[number]))
            ctx.err((*loc, "tracking_number"), f'duplicate "{number}" (also {other})')
        elif number is not None:
            seen[number] = j
        shipped_at = _time(ctx, obj.get("shipped_at"), (*loc, "shipped_at"))
        if shipped_at and paid_at and shipped_at < paid_at - SHIPPED_AT_SKEW:
            ctx.err((*loc, "shipped_at"), "must not be before paid_at")
        weight = _weight(ctx, obj.get("weight_kg"), (*loc, "weight_kg"))
        out.append(ShipmentRecord(courier, number or "", shipped_at, weight))
    return out


def order_from_record(
    sink: Sink,
    rec: Mapping[str, Any],
    *,
    tz: ZoneInfo,
    default_origin: Address | None,
    csv: bool,
) -> Order | None:
    """Build one order from a JSON-shaped record, or report why not to ``sink`` (``None``).

    ``tz`` reads times without an offset; ``csv`` accepts numbers and flags written as text.
    """
    ctx = _Ctx(sink, tz, default_origin, csv)
    before = len(ctx.sink.errors)
    _obj(ctx, rec, (), _RECORD_KEYS)
    order_id = _text(ctx, rec.get("order_id"), ("order_id",), required=True, max_len=64)
    paid_at = _time(ctx, rec.get("paid_at"), ("paid_at",), required=True)
    ship_by = _time(ctx, rec.get("ship_by"), ("ship_by",))
    deliver_by = _time(ctx, rec.get("deliver_by"), ("deliver_by",))
    if paid_at and ship_by and ship_by <= paid_at:
        ctx.err(("ship_by",), "must be after paid_at")
    if paid_at and deliver_by and deliver_by <= paid_at:
        ctx.err(("deliver_by",), "must be after paid_at")
    elif ship_by and deliver_by and deliver_by < ship_by:
        ctx.err(("deliver_by",), "must not be before ship_by")
    buyer = _buyer(ctx, rec.get("buyer"))
    origin = ctx.default_origin
    if rec.get("origin") is not None:
        origin = _address(ctx, rec["origin"], ("origin",))
    elif origin is None:
        ctx.err(("origin",), "missing and no [shop] origin configured")
    destination = None
    if rec.get("destination") is None:
        ctx.err(("destination",), "required")
    else:
        destination = _address(ctx, rec["destination"], ("destination",))
    items = _items(ctx, rec.get("items"))
    shipments = _shipments(ctx, rec.get("shipments"), paid_at)
    if len(ctx.sink.errors) > before or not (order_id and paid_at and buyer):
        return None
    if origin is None or destination is None:
        return None
    return Order(
        order_id, paid_at, buyer, origin, destination, tuple(items),
        ship_by, deliver_by, tuple(shipments),
    )  # fmt: skip


def weight_row(sink: Sink, row: Mapping[str, str | None]) -> tuple[str | None, float | None]:
    """A courier-bill row's ``tracking_number`` and ``weight_kg``, checked as a shipment's."""
    ctx = _Ctx(sink, ZoneInfo("UTC"), None, csv=True)
    number = _text(ctx, row.get("tracking_number"), ("tracking_number",), required=True)
    if number is not None and not _TRACKING.fullmatch(number):
        ctx.err(("tracking_number",), f'"{number}": must be 5-40 letters, digits or -')
    weight = _weight(ctx, row.get("weight_kg"), ("weight_kg",))
    if weight is None and row.get("weight_kg") is None:
        ctx.err(("weight_kg",), "required")
    return number, weight
