"""Read order and courier-weight files (DESIGN §8) into domain objects, reporting every bad line.

Pure apart from reading the one file: no database, no clock. Each reader returns what it
could build *and* a :class:`LineError` per problem; the caller stores nothing when any error
exists. Only orders (and weights) without errors are returned. Each order record is checked
by :mod:`tracker.service.order_records`, whose docstring lists the field rules.

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
"""

from __future__ import annotations

import csv
import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tracker.domain.model import Address, Order
from tracker.service.order_records import (
    ORDER_KEYS,
    PART_KEYS,
    PERSONAL_KEYS,
    SHIPPED_AT_SKEW,
    LineError,
    Loc,
    Sink,
    order_from_record,
    weight_row,
)

__all__ = ["CSV_COLUMNS", "SHIPPED_AT_SKEW", "LineError", "read_orders", "read_weights"]

#: every column an orders CSV may have, in the suggested order
CSV_COLUMNS: tuple[str, ...] = ORDER_KEYS + tuple(
    f"{part}.{key}" for part, keys in PART_KEYS.items() for key in keys
)
_CSV_REQUIRED = (
    "order_id", "paid_at", "buyer.name", "buyer.phone", "destination.province",
    "destination.city", "item.sku", "item.name", "item.qty",
)  # fmt: skip
_ORDER_LEVEL = tuple(c for c in CSV_COLUMNS if not c.startswith(("item.", "shipment.")))
_IGNORED = "\0"  # header name of a reported unknown or repeated column


@dataclass
class _CsvSink(Sink):
    """Errors of one CSV order: each field points at the row it came from, named by column."""

    field_lines: dict[str, int] = field(default_factory=dict)
    item_lines: list[int] = field(default_factory=list)
    shipment_lines: list[int] = field(default_factory=list)

    def place(self, loc: Loc) -> tuple[int, str]:
        head, rest = loc[0], [str(p) for p in loc[2:]]
        if head in ("items", "shipments") and len(loc) > 1:
            lines = self.item_lines if head == "items" else self.shipment_lines
            return lines[int(loc[1])], ".".join([str(head)[:-1], *rest])
        name = super().place(loc)[1]
        return self.field_lines.get(name, self.line), name

    def where(self, loc: Loc) -> str:
        return f"line {self.place(loc)[0]}"


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
            sink = Sink(str(path), n)
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
            order = order_from_record(sink, rec, tz=tz, default_origin=default_origin, csv=False)
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
        order = _csv_order(group, sink, tz, default_origin)
        errors += sink.errors
        if order is not None:
            orders.append(order)
    return orders, errors


def _csv_order(
    group: list[tuple[int, dict[str, str | None]]],
    sink: _CsvSink,
    tz: ZoneInfo,
    default_origin: Address | None,
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
                shown = "" if col.split(".")[-1] in PERSONAL_KEYS else f' "{v}"'
                why = f"{col}:{shown} disagrees with line {sink.field_lines[col]} of this order"
                sink.errors.append(LineError(sink.path, line, why))
    rec: dict[str, Any] = {k: values.get(k) for k in ORDER_KEYS}
    for part in ("buyer", "origin", "destination"):
        sub = {k: values.get(f"{part}.{k}") for k in PART_KEYS[part]}
        rec[part] = sub if part != "origin" or any(sub.values()) else None
    rec["items"], rec["shipments"] = [], []
    shipment_rows: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
    for line, row in group:
        item = {k: row.get(f"item.{k}") for k in PART_KEYS["item"]}
        if any(item.values()):
            rec["items"].append(item)
            sink.item_lines.append(line)
        ship = {k: row.get(f"shipment.{k}") for k in PART_KEYS["shipment"]}
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
    order = order_from_record(sink, rec, tz=tz, default_origin=default_origin, csv=True)
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
    for line, row in rows or []:
        sink = Sink(str(path), line)
        number, weight = weight_row(sink, row)
        errors += sink.errors
        if number is not None and number in first_line:
            why = f'tracking_number: "{number}" also on line {first_line[number]}'
            errors.append(LineError(str(path), line, why))
            found.pop(number, None)
        elif number is not None:
            first_line[number] = line
            if not sink.errors and weight is not None:
                found[number] = (number, weight, line)
    weights = list(found.values())
    return weights, sorted(errors, key=lambda e: e.line)
