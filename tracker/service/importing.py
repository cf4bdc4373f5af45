"""Read order and courier-weight files (DESIGN §8) into domain objects, reporting every bad line.

Pure apart from reading the one file: no database, no clock. Each reader returns what it
could build *and* a :class:`LineError` per problem; the caller stores nothing when any error
exists. Only orders (and weights) without errors are returned.

Order files:

* ``.jsonl``: UTF-8 (a BOM is allowed), one JSON object per line, blank lines skipped.
* ``.csv``: one row per item with the record's fields flattened (:data:`CSV_COLUMNS`;
  ``items.``/``shipments.`` prefixes are accepted for ``item.``/``shipment.``, names are
  case-insensitive). Read as UTF-8 (with or without BOM); a file that is not UTF-8 is read as
  GB18030 (Excel's "CSV" on Chinese Windows); a file mixing both is refused. Rows with the
  same ``order_id`` form one order wherever they are. Order-level cells may be left blank on
  an order's other rows (merged cells); the filled ones must agree. A row with blank item
  cells adds no item (use it for a second parcel); shipments are the distinct
  ``shipment.courier`` + ``shipment.tracking_number`` pairs of the order's rows.

Rules: unknown fields are errors; a field that may be null may also be left out. Times are
ISO 8601; without an offset they are read in ``timezone``; a date alone is refused. Phones
are mainland mobiles, stored as 11 digits. Provinces must be known to :mod:`carriers.geo`
and are stored canonical (``浙江`` -> ``浙江省``); a city is canonicalised within its province
when known, kept as written when unknown, and refused when it lies in another province.
Numbers are JSON numbers in ``.jsonl``, digits in ``.csv``. Personal data (name, phone,
chat id, address) is never echoed in a message.
"""

from __future__ import annotations

import csv
import difflib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from carriers.geo import canonical_city, canonical_province
from carriers.registry import COURIERS, is_known_courier
from tracker.domain.model import Address, Buyer, Item, Order, ShipmentRecord

__all__ = ["CSV_COLUMNS", "SHIPPED_AT_SKEW", "LineError", "read_orders", "read_weights"]

#: how far ``shipped_at`` may precede ``paid_at`` (clocks of shop and warehouse differ)
SHIPPED_AT_SKEW = timedelta(minutes=5)

_ORDER_KEYS = ("order_id", "paid_at", "ship_by", "deliver_by")
_PARTS: dict[str, tuple[str, ...]] = {
    "buyer": ("name", "phone", "chat_id", "opt_out"),
    "origin": ("province", "city", "district", "address"),
    "destination": ("province", "city", "district", "address"),
    "item": ("sku", "name", "qty", "unit_weight_kg"),
    "shipment": ("courier", "tracking_number", "shipped_at", "weight_kg"),
}
_RECORD_KEYS = (*_ORDER_KEYS, "buyer", "origin", "destination", "items", "shipments")

#: every column an orders CSV may have, in the suggested order
CSV_COLUMNS: tuple[str, ...] = _ORDER_KEYS + tuple(
    f"{part}.{key}" for part, keys in _PARTS.items() for key in keys
)
_CSV_REQUIRED = (
    "order_id", "paid_at", "buyer.name", "buyer.phone", "destination.province",
    "destination.city", "item.sku", "item.name", "item.qty",
)  # fmt: skip
_ORDER_LEVEL = tuple(c for c in CSV_COLUMNS if not c.startswith(("item.", "shipment.")))

_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_TRACKING = re.compile(r"[A-Za-z0-9-]{5,40}")
_CSV_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_EXCEL_SCIENTIFIC = re.compile(r"[0-9](\.[0-9]+)?[Ee]\+[0-9]+")
_CSV_BOOL = {"true": True, "1": True, "yes": True, "y": True, "是": True,
             "false": False, "0": False, "no": False, "n": False, "否": False}  # fmt: skip
_IGNORED = "\0"  # header name of a reported unknown or repeated column
_PERSONAL = frozenset({"name", "phone", "chat_id", "address"})

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
class _Sink:
    """Collects the errors of one record; JSON names fields by path, all on one line."""

    path: str
    line: int
    errors: list[LineError] = field(default_factory=list)

    def add(self, loc: Loc, reason: str) -> None:
        line, name = self.place(loc)
        self.errors.append(LineError(self.path, line, f"{name}: {reason}"))

    def place(self, loc: Loc) -> tuple[int, str]:
        return self.line, _dotted(loc)

    def where(self, loc: Loc) -> str:
        return _dotted(loc)


@dataclass
class _CsvSink(_Sink):
    """Errors of one CSV order: each field points at the row it came from, named by column."""

    field_lines: dict[str, int] = field(default_factory=dict)
    item_lines: list[int] = field(default_factory=list)
    shipment_lines: list[int] = field(default_factory=list)

    def place(self, loc: Loc) -> tuple[int, str]:
        head, rest = loc[0], [str(p) for p in loc[2:]]
        if head in ("items", "shipments") and len(loc) > 1:
            lines = self.item_lines if head == "items" else self.shipment_lines
            return lines[int(loc[1])], ".".join([str(head)[:-1], *rest])
        name = _dotted(loc)
        return self.field_lines.get(name, self.line), name

    def where(self, loc: Loc) -> str:
        return f"line {self.place(loc)[0]}"


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else part
    return out


@dataclass
class _Ctx:
    sink: _Sink
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
        shown = "" if loc[-1] in _PERSONAL else f'"{v}" '
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
    obj = _obj(ctx, v, loc, _PARTS["destination"])
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
    obj = _obj(ctx, v, ("buyer",), _PARTS["buyer"])
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
        if (obj := _obj(ctx, raw, loc, _PARTS["item"])) is not None:
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
        if (obj := _obj(ctx, raw, loc, _PARTS["shipment"])) is None:
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


def _order(ctx: _Ctx, rec: Mapping[str, Any]) -> Order | None:
    """Build one order from a JSON-shaped record, or report why not (``None``)."""
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


# ---------------------------------------------------------------- files


def read_orders(
    path: Path, *, timezone: ZoneInfo, default_origin: Address | None
) -> tuple[list[Order], list[LineError]]:
    """Every valid order in a ``.jsonl`` or ``.csv`` file, and every problem found, by line."""
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".csv"):
        return [], [LineError(str(path), 0, "unsupported file type; use .jsonl or .csv")]
    try:
        if suffix == ".jsonl":
            orders, errors = _read_jsonl(path, timezone, default_origin)
        else:
            orders, errors = _read_orders_csv(path, timezone, default_origin)
    except OSError as exc:
        return [], [LineError(str(path), 0, f"cannot read: {exc.strerror or exc}")]
    return orders, sorted(errors, key=lambda e: e.line)


def _read_jsonl(
    path: Path, tz: ZoneInfo, default_origin: Address | None
) -> tuple[list[Order], list[LineError]]:
    orders: dict[str, Order] = {}
    first_line: dict[str, int] = {}
    ambiguous: set[str] = set()
    errors: list[LineError] = []
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            sink = _Sink(str(path), n)
            try:
                text = raw.decode("utf-8").removeprefix("\ufeff" if n == 1 else "")
            except UnicodeDecodeError:
                errors.append(LineError(str(path), n, "not UTF-8 text"))
                continue
            if not text.strip():
                continue
            try:
                rec = json.loads(text.rstrip("\r\n"), object_pairs_hook=_unique_keys)
            except _DuplicateKeyError as exc:
                errors.append(LineError(str(path), n, f'duplicate key "{exc.args[0]}"'))
                continue
            except json.JSONDecodeError as exc:
                errors.append(LineError(str(path), n, f"not JSON: {exc.msg} (column {exc.colno})"))
                continue
            except (ValueError, RecursionError) as exc:  # 5000-digit numbers, deep nesting
                errors.append(LineError(str(path), n, f"not usable JSON: {exc}"))
                continue
            if not isinstance(rec, dict):
                errors.append(LineError(str(path), n, "not a JSON object"))
                continue
            order = _order(_Ctx(sink, tz, default_origin, csv=False), rec)
            errors += sink.errors
            oid = rec.get("order_id")
            if isinstance(oid, str) and oid.strip():
                oid = oid.strip()
                if oid in first_line:
                    ambiguous.add(oid)
                    reason = f'order_id: "{oid}" also on line {first_line[oid]}; give each once'
                    errors.append(LineError(str(path), n, reason))
                else:
                    first_line[oid] = n
            if order is not None:
                orders.setdefault(order.order_id, order)
    return [o for oid, o in orders.items() if oid not in ambiguous], errors


class _DuplicateKeyError(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(key)
        out[key] = value
    return out


def _csv_encoding(path: Path) -> tuple[str, LineError | None]:
    """``utf-8-sig`` when every line is UTF-8, else ``gb18030``; refuse a mix of the two."""
    utf8_line = bad_line = 0
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            try:
                raw.decode("ascii")
            except UnicodeDecodeError:
                try:
                    raw.decode("utf-8")
                    utf8_line = utf8_line or n
                except UnicodeDecodeError:
                    bad_line = bad_line or n
                    try:
                        raw.decode("gb18030")
                    except UnicodeDecodeError:
                        return "", LineError(str(path), n, "neither UTF-8 nor GB18030 text")
    if not bad_line:
        return "utf-8-sig", None
    if utf8_line:
        why = f"mixed encodings: line {utf8_line} is UTF-8 but this line is not; save as UTF-8"
        return "", LineError(str(path), bad_line, why)
    return "gb18030", None


@dataclass(frozen=True)
class _Layout:
    """The columns a CSV file may have, those it must have, and accepted name prefixes."""

    columns: tuple[str, ...]
    required: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)


_ORDERS_CSV = _Layout(CSV_COLUMNS, _CSV_REQUIRED, {"items.": "item.", "shipments.": "shipment."})
_WEIGHTS_CSV = _Layout(("tracking_number", "weight_kg"), ("tracking_number", "weight_kg"))


def _csv_rows(
    path: Path, layout: _Layout, errors: list[LineError]
) -> list[tuple[int, dict[str, str | None]]] | None:
    """The non-blank rows of a CSV file as (line, {column: value or None}); ``None``: unusable.

    The header is the first non-blank row; names are stripped, case-insensitive and aliased.
    """
    encoding, problem = _csv_encoding(path)
    if problem is not None:
        errors.append(problem)
        return None
    rows: list[tuple[int, dict[str, str | None]]] = []
    header: list[str] | None = None
    with path.open(encoding=encoding, newline="") as fh:
        reader = csv.reader(fh)
        line = 1
        while True:
            try:
                cells = next(reader, None)
            except csv.Error as exc:  # e.g. a field beyond csv.field_size_limit()
                errors.append(LineError(str(path), line, f"not CSV: {exc}"))
                return None
            if cells is None:
                break
            start, line = line, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header = _csv_header(path, start, cells, layout, errors)
                if not header:
                    return None
                continue
            if len(cells) < len(header):
                why = f"{len(cells)} fields where the header has {len(header)}"
                errors.append(LineError(str(path), start, why))
                continue
            stray = [i + 1 for i, c in enumerate(cells) if c.strip() and not header[i : i + 1]]
            stray += [i + 1 for i, h in enumerate(header) if not h and cells[i].strip()]
            if stray:
                why = f"a value in column {min(stray)}, which has no name in the header"
                errors.append(LineError(str(path), start, why))
                continue
            pairs = zip(header, cells, strict=False)
            rows.append((start, {h: c.strip() or None for h, c in pairs if h and h != _IGNORED}))
    if header is None:
        errors.append(LineError(str(path), 1, "empty file; a header row is required"))
        return None
    return rows


def _csv_header(
    path: Path,
    line: int,
    cells: list[str],
    layout: _Layout,
    errors: list[LineError],
) -> list[str]:
    """The column names, or ``[]`` when a required one is missing.

    Unknown or repeated columns are reported and their cells ignored, so that every row can
    still be checked.
    """
    names = []
    for cell in cells:
        name = cell.strip().lstrip("\ufeff").lower()
        for old, new in layout.aliases.items():
            name = new + name.removeprefix(old) if name.startswith(old) else name
        names.append(name)
    for i, name in enumerate(names):
        if name and name not in layout.columns:
            near = difflib.get_close_matches(name, layout.columns, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            errors.append(LineError(str(path), line, f'unknown column "{cells[i].strip()}"{hint}'))
            names[i] = _IGNORED
        elif name and name in names[:i]:
            errors.append(LineError(str(path), line, f'column "{name}" appears twice'))
            names[i] = _IGNORED
    if missing := [name for name in layout.required if name not in names]:
        errors.append(LineError(str(path), line, f"missing column(s): {', '.join(missing)}"))
        return []
    return names


def _read_orders_csv(
    path: Path, tz: ZoneInfo, default_origin: Address | None
) -> tuple[list[Order], list[LineError]]:
    errors: list[LineError] = []
    rows = _csv_rows(path, _ORDERS_CSV, errors)
    if rows is None:
        return [], errors
    groups: dict[str, list[tuple[int, dict[str, str | None]]]] = {}
    for line, row in rows:
        if row.get("order_id") is None:
            errors.append(LineError(str(path), line, "order_id: required"))
        else:
            groups.setdefault(str(row["order_id"]), []).append((line, row))
    orders = []
    for group in groups.values():
        sink = _CsvSink(str(path), group[0][0])
        order = _csv_order(group, _Ctx(sink, tz, default_origin, csv=True), sink)
        errors += sink.errors
        if order is not None:
            orders.append(order)
    return orders, errors


def _csv_order(
    group: list[tuple[int, dict[str, str | None]]], ctx: _Ctx, sink: _CsvSink
) -> Order | None:
    """Fold one order's rows into a JSON-shaped record and build it, pointing errors at rows."""
    values: dict[str, str] = {}
    for line, row in group:
        for col in _ORDER_LEVEL:
            v = row.get(col)
            if v is None:
                continue
            if col not in values:
                values[col], sink.field_lines[col] = v, line
            elif values[col] != v:
                shown = "" if col.split(".")[-1] in _PERSONAL else f' "{v}"'
                why = f"{col}:{shown} disagrees with line {sink.field_lines[col]} of this order"
                sink.errors.append(LineError(sink.path, line, why))
    rec: dict[str, Any] = {k: values.get(k) for k in _ORDER_KEYS}
    for part in ("buyer", "origin", "destination"):
        sub = {k: values.get(f"{part}.{k}") for k in _PARTS[part]}
        rec[part] = sub if part != "origin" or any(sub.values()) else None
    rec["items"], rec["shipments"] = [], []
    shipment_rows: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
    for line, row in group:
        item = {k: row.get(f"item.{k}") for k in _PARTS["item"]}
        if any(item.values()):
            rec["items"].append(item)
            sink.item_lines.append(line)
        ship = {k: row.get(f"shipment.{k}") for k in _PARTS["shipment"]}
        if not any(ship.values()):
            continue
        key = (str(ship["courier"] or "").lower(), str(ship["tracking_number"] or ""))
        if key not in shipment_rows:
            shipment_rows[key] = (line, ship)
            rec["shipments"].append(ship)
            sink.shipment_lines.append(line)
            continue
        first_line, first = shipment_rows[key]
        for k in ("shipped_at", "weight_kg"):
            if ship[k] is not None and first[k] is not None and ship[k] != first[k]:
                why = f'shipment.{k}: "{ship[k]}" disagrees with line {first_line} for {key[1]}'
                sink.errors.append(LineError(sink.path, line, why))
            first[k] = first[k] if first[k] is not None else ship[k]
    order = _order(ctx, rec)
    return order if not sink.errors else None


def read_weights(path: Path) -> tuple[list[tuple[str, float, int]], list[LineError]]:
    """Courier-recorded weights from CSV ``tracking_number,weight_kg``: (number, kg, line)."""
    if path.suffix.lower() != ".csv":
        return [], [LineError(str(path), 0, "unsupported file type; use .csv")]
    errors: list[LineError] = []
    try:
        rows = _csv_rows(path, _WEIGHTS_CSV, errors)
    except OSError as exc:
        return [], [LineError(str(path), 0, f"cannot read: {exc.strerror or exc}")]
    found: dict[str, tuple[str, float, int]] = {}
    first_line: dict[str, int] = {}
    utc = ZoneInfo("UTC")
    for line, row in rows or []:
        ctx = _Ctx(_Sink(str(path), line), utc, None, csv=True)
        number = _text(ctx, row.get("tracking_number"), ("tracking_number",), required=True)
        if number is not None and not _TRACKING.fullmatch(number):
            ctx.err(("tracking_number",), f'"{number}": must be 5-40 letters, digits or -')
        weight = _weight(ctx, row.get("weight_kg"), ("weight_kg",))
        if weight is None and row.get("weight_kg") is None:
            ctx.err(("weight_kg",), "required")
        errors += ctx.sink.errors
        if number is not None and number in first_line:
            why = f'tracking_number: "{number}" also on line {first_line[number]}'
            errors.append(LineError(str(path), line, why))
            found.pop(number, None)
        elif number is not None:
            first_line[number] = line
            if not ctx.sink.errors and weight is not None:
                found[number] = (number, weight, line)
    weights = list(found.values())
    return weights, sorted(errors, key=lambda e: e.line)
