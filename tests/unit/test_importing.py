"""Reading order and weight files: DESIGN §8 records, CSV flattening, every validation rule."""

from __future__ import annotations

import copy
import csv
import io
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tracker.domain.model import Address, Buyer, Item, Order, ShipmentRecord
from tracker.service.importing import (
    CSV_COLUMNS,
    SHIPPED_AT_SKEW,
    LineError,
    read_orders,
    read_weights,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "orders"
SHANGHAI = ZoneInfo("Asia/Shanghai")
CST = timezone(timedelta(hours=8))
SHOP = Address("广东省", "广州市")

DESIGN_ORDER = Order(
    order_id="A1001",
    paid_at=datetime(2026, 9, 10, 10, 0, tzinfo=CST),
    ship_by=datetime(2026, 9, 12, 10, 0, tzinfo=CST),
    deliver_by=None,
    buyer=Buyer(name="张三", phone="13800138000", chat_id=None, opt_out=False),
    origin=Address("广东省", "广州市"),
    destination=Address("浙江省", "杭州市", "西湖区", "文三路 1 号"),
    items=(Item("TEA-500", "龙井 500g", 2, 0.5),),
    shipments=(
        ShipmentRecord("yto", "YT7000000001", datetime(2026, 9, 11, 9, 0, tzinfo=CST), None),
    ),
)


def base_record() -> dict[str, Any]:
    """The DESIGN §8 sample record as a dict, fresh for each mutation."""
    line = (FIXTURES / "design_sample.jsonl").read_text(encoding="utf-8")
    record: dict[str, Any] = json.loads(line)
    return record


def to_csv_rows(rec: dict[str, Any]) -> list[dict[str, str]]:
    """Flatten a record the documented way: one row per item, shipments alongside."""

    def cell(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v)

    top = {k: cell(rec.get(k)) for k in ("order_id", "paid_at", "ship_by", "deliver_by")}
    for part in ("buyer", "origin", "destination"):
        for k, v in (rec.get(part) or {}).items():
            top[f"{part}.{k}"] = cell(v)
    items = rec.get("items") or []
    shipments = rec.get("shipments") or []
    rows = []
    for i in range(max(len(items), len(shipments), 1)):
        row = dict(top)
        for k, v in (items[i] if i < len(items) else {}).items():
            row[f"item.{k}"] = cell(v)
        for k, v in (shipments[i] if i < len(shipments) else {}).items():
            row[f"shipment.{k}"] = cell(v)
        rows.append(row)
    return rows


def write_csv(path: Path, rows: list[dict[str, str]], columns: list[str] | None = None) -> Path:
    """Write rows under a header of every documented column and any extra used."""
    if columns is None:
        columns = list(CSV_COLUMNS)
        columns += [c for r in rows for c in r if c not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def write_jsonl(path: Path, records: list[Any]) -> Path:
    """One JSON value a line (strings are written verbatim)."""
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read(path: Path, default_origin: Address | None = SHOP) -> tuple[list[Order], list[LineError]]:
    """read_orders with the shop's defaults."""
    return read_orders(path, timezone=SHANGHAI, default_origin=default_origin)


def read_as(
    fmt: str, tmp_path: Path, rec: dict[str, Any], default_origin: Address | None = SHOP
) -> tuple[list[Order], list[str]]:
    """Write ``rec`` as ``.jsonl`` or ``.csv``, read it back; errors as strings."""
    if fmt == "jsonl":
        path = write_jsonl(tmp_path / "orders.jsonl", [rec])
    else:
        path = write_csv(tmp_path / "orders.csv", to_csv_rows(rec))
    orders, errors = read(path, default_origin)
    return orders, [str(e) for e in errors]


def csv_name(field: str) -> str:
    """The CSV column that reports a JSON path: ``items[1].qty`` -> ``item.qty``."""
    return re.sub(r"^(item|shipment)s\[\d+\]", r"\1", field)


EXCEL = "looks mangled by Excel (1.2E+10); format the column as text"
FORMATS = pytest.mark.parametrize("fmt", ["jsonl", "csv"])


def mutate(rec: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A copy of ``rec`` with ``a.b[0].c`` set to ``value`` (``...`` deletes it)."""
    out = copy.deepcopy(rec)
    parts: list[str | int] = []
    for p in dotted.split("."):
        m = re.fullmatch(r"(\w+)\[(\d+)\]", p)
        parts += [m[1], int(m[2])] if m else [p]
    target: Any = out
    for part in parts[:-1]:
        target = target[part]
    if value is ...:
        del target[parts[-1]]
    else:
        target[parts[-1]] = value
    return out


# ------------------------------------------------------------------ the DESIGN sample


def test_design_sample_jsonl_parses_to_the_expected_order() -> None:
    """The exact DESIGN §8 record reads as the Order it describes, with no errors."""
    orders, errors = read(FIXTURES / "design_sample.jsonl", default_origin=None)
    assert errors == []
    assert orders == [DESIGN_ORDER]
    assert orders[0].paid_at.utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize(
    "name", ["design_sample.csv", "design_sample_bom.csv", "design_sample_gb18030.csv"]
)
def test_design_sample_csv_gives_the_identical_order(name: str) -> None:
    """The CSV flattening of the sample (UTF-8, UTF-8 with BOM, GB18030) gives the same Order."""
    orders, errors = read(FIXTURES / name, default_origin=None)
    assert errors == []
    assert orders == [DESIGN_ORDER]


def test_multi_order_csv_equals_jsonl() -> None:
    """Grouped, merged-cell, multi-item, multi-parcel CSV rows equal the JSONL records."""
    from_csv, csv_errors = read(FIXTURES / "multi.csv")
    from_jsonl, jsonl_errors = read(FIXTURES / "multi.jsonl")
    assert csv_errors == [] and jsonl_errors == []
    assert from_csv == from_jsonl
    a2001 = from_csv[0]
    assert [i.sku for i in a2001.items] == ["TEA-500", "CUP-01"]
    assert [s.tracking_number for s in a2001.shipments] == ["SF1000000001", "YT7000000002"]
    assert a2001.buyer == Buyer("李四", "13900139000", "wx-li4", True)
    assert a2001.origin == Address("浙江省", "杭州市")
    assert a2001.destination.province == "上海市"
    assert from_csv[1].origin == SHOP


def test_csv_column_names_are_pinned() -> None:
    """The documented CSV header names do not change by accident."""
    assert CSV_COLUMNS == (
        "order_id", "paid_at", "ship_by", "deliver_by",
        "buyer.name", "buyer.phone", "buyer.chat_id", "buyer.opt_out",
        "origin.province", "origin.city", "origin.district", "origin.address",
        "destination.province", "destination.city", "destination.district", "destination.address",
        "item.sku", "item.name", "item.qty", "item.unit_weight_kg",
        "shipment.courier", "shipment.tracking_number", "shipment.shipped_at", "shipment.weight_kg",
    )  # fmt: skip


# ------------------------------------------------------------------ rules, both formats

BAD_VALUES = [
    ("order_id", "", "order_id: required"),
    ("order_id", "X" * 65, "order_id: longer than 64 characters"),
    ("paid_at", ..., "paid_at: required"),
    ("paid_at", "2026-09-10", 'paid_at: "2026-09-10" is a date without a time'),
    ("paid_at", "10/09/2026 10:00", "paid_at: not an ISO 8601 time"),
    ("ship_by", "2026-09-10T10:00:00+08:00", "ship_by: must be after paid_at"),
    ("ship_by", "2026-09-09T10:00:00+08:00", "ship_by: must be after paid_at"),
    ("deliver_by", "2026-09-09T23:00:00+08:00", "deliver_by: must be after paid_at"),
    ("deliver_by", "2026-09-11T10:00:00+08:00", "deliver_by: must not be before ship_by"),
    ("deliver_by", "2026-09-15", 'deliver_by: "2026-09-15" is a date without a time'),
    ("buyer.name", "", "buyer.name: required"),
    ("buyer.name", "  ", "buyer.name: required"),
    ("buyer.phone", "1380013800", "buyer.phone: not a mainland mobile number (11 digits"),
    ("buyer.phone", "12800138000", "buyer.phone: not a mainland mobile number"),
    ("buyer.phone", "010-62345678", "buyer.phone: not a mainland mobile number"),
    ("buyer.phone", "138****8000", "buyer.phone: not a mainland mobile number"),
    ("buyer.phone", "+1 13800138000", "buyer.phone: not a mainland mobile number"),
    ("buyer.phone", "", "buyer.phone: required"),
    ("destination.province", "火星", 'destination.province: unknown province "火星"'),
    ("destination.province", "", "destination.province: required"),
    ("destination.city", "", "destination.city: required"),
    ("destination.city", "广州", 'destination.city: "广州市" is not in 浙江省'),
    ("origin.province", "Atlantis", 'origin.province: unknown province "Atlantis"'),
    ("origin.city", "", "origin.city: required"),
    ("items[0].sku", "", "items[0].sku: required"),
    ("items[0].name", "", "items[0].name: required"),
    ("items[0].qty", 0, "items[0].qty: must be a whole number > 0"),
    ("items[0].qty", -1, "items[0].qty: must be a whole number > 0"),
    ("items[0].qty", 1.5, "items[0].qty: must be a whole number > 0"),
    ("items[0].qty", ..., "items[0].qty: required"),
    ("items[0].unit_weight_kg", -0.5, "items[0].unit_weight_kg: must be a number of kg >= 0"),
    ("shipments[0].courier", "yto2", 'shipments[0].courier: unknown courier code "yto2" (known: '),
    ("shipments[0].courier", "", "shipments[0].courier: required"),
    ("shipments[0].tracking_number", "", "shipments[0].tracking_number: required"),
    ("shipments[0].tracking_number", "YT70", "must be 5-40 letters, digits or -"),
    ("shipments[0].tracking_number", "Y" * 41, "must be 5-40 letters, digits or -"),
    ("shipments[0].tracking_number", "YT 7000001", "must be 5-40 letters, digits or -"),
    ("shipments[0].tracking_number", "YT_7000001", "must be 5-40 letters, digits or -"),
    ("shipments[0].shipped_at", "2026-09-10T09:00:00+08:00", "must not be before paid_at"),
    ("shipments[0].shipped_at", "tomorrow", "shipments[0].shipped_at: not an ISO 8601 time"),
    ("shipments[0].weight_kg", -1, "shipments[0].weight_kg: must be a number of kg >= 0"),
]


@FORMATS
@pytest.mark.parametrize(("field", "value", "reason"), BAD_VALUES)
def test_bad_value_is_reported_with_line_and_field(
    fmt: str, tmp_path: Path, field: str, value: Any, reason: str
) -> None:
    """Each rule rejects its bad value as FILE:LINE: field: reason, and the order is dropped."""
    orders, errors = read_as(fmt, tmp_path, mutate(base_record(), field, value))
    expected = reason if fmt == "jsonl" else csv_name(reason)
    assert orders == []
    assert len(errors) == 1, errors
    line = 2 if fmt == "csv" else 1
    assert errors[0].startswith(f"{tmp_path / ('orders.' + fmt)}:{line}: ")
    assert expected in errors[0]


GOOD_VALUES: list[tuple[str, Any, Callable[[Order], Any], Any]] = [
    ("order_id", "X" * 64, lambda o: o.order_id, "X" * 64),
    ("order_id", "  A1001 ", lambda o: o.order_id, "A1001"),
    ("paid_at", "2026-09-10T02:00:00Z", lambda o: o.paid_at, datetime(2026, 9, 10, 10, tzinfo=CST)),
    ("paid_at", "2026-09-10T10:00:00", lambda o: o.paid_at, datetime(2026, 9, 10, 10, tzinfo=CST)),
    ("paid_at", "2026-09-10 10:00", lambda o: o.paid_at.tzinfo, SHANGHAI),
    ("ship_by", None, lambda o: o.ship_by, None),
    ("ship_by", ..., lambda o: o.ship_by, None),
    ("deliver_by", "2026-09-12T10:00:00+08:00", lambda o: o.deliver_by, DESIGN_ORDER.ship_by),
    ("buyer.phone", "+86 138-0013-8000", lambda o: o.buyer.phone, "13800138000"),
    ("buyer.phone", "86 13800138000", lambda o: o.buyer.phone, "13800138000"),
    ("buyer.phone", "0086-13800138000", lambda o: o.buyer.phone, "13800138000"),
    ("buyer.phone", "138 0013 8000", lambda o: o.buyer.phone, "13800138000"),
    ("buyer.phone", "19912345678", lambda o: o.buyer.phone, "19912345678"),
    ("buyer.chat_id", "wx-zhang3", lambda o: o.buyer.chat_id, "wx-zhang3"),
    ("buyer.chat_id", ..., lambda o: o.buyer.chat_id, None),
    ("buyer.opt_out", True, lambda o: o.buyer.opt_out, True),
    ("buyer.opt_out", ..., lambda o: o.buyer.opt_out, False),
    ("destination.province", "浙江", lambda o: o.destination.province, "浙江省"),
    ("destination.province", "Zhejiang", lambda o: o.destination.province, "浙江省"),
    ("destination.city", "杭州", lambda o: o.destination.city, "杭州市"),
    ("destination.city", "新城镇", lambda o: o.destination.city, "新城镇"),
    ("destination.district", ..., lambda o: o.destination.district, None),
    ("destination.address", ..., lambda o: o.destination.address, None),
    ("origin", ..., lambda o: o.origin, SHOP),
    ("origin.province", "广东", lambda o: o.origin.province, "广东省"),
    ("items[0].qty", 1, lambda o: o.items[0].qty, 1),
    ("items[0].unit_weight_kg", None, lambda o: o.items[0].unit_weight_kg, None),
    ("items[0].unit_weight_kg", 0, lambda o: o.items[0].unit_weight_kg, 0.0),
    ("items[0].unit_weight_kg", ..., lambda o: o.items[0].unit_weight_kg, None),
    ("shipments", ..., lambda o: o.shipments, ()),
    ("shipments[0].courier", "YTO", lambda o: o.shipments[0].courier, "yto"),
    ("shipments[0].courier", "jt", lambda o: o.shipments[0].courier, "jt"),
    ("shipments[0].tracking_number", "Y" * 40, lambda o: o.shipments[0].tracking_number, "Y" * 40),
    ("shipments[0].tracking_number", "ab-12", lambda o: o.shipments[0].tracking_number, "ab-12"),
    ("shipments[0].shipped_at", ..., lambda o: o.shipments[0].shipped_at, None),
    ("shipments[0].weight_kg", 1.25, lambda o: o.shipments[0].weight_kg, 1.25),
    ("shipments[0].weight_kg", 0, lambda o: o.shipments[0].weight_kg, 0.0),
]


@FORMATS
@pytest.mark.parametrize(("field", "value", "get", "expected"), GOOD_VALUES)
def test_good_value_is_accepted_and_normalised(
    fmt: str, tmp_path: Path, field: str, value: Any, get: Callable[[Order], Any], expected: Any
) -> None:
    """Each rule accepts its good values and stores them normalised."""
    orders, errors = read_as(fmt, tmp_path, mutate(base_record(), field, value))
    assert errors == []
    assert get(orders[0]) == expected


@FORMATS
def test_naive_times_are_read_in_the_configured_timezone(fmt: str, tmp_path: Path) -> None:
    """A time without an offset is local time in the given timezone, not UTC."""
    rec = mutate(base_record(), "paid_at", "2026-09-10T10:00:00")
    orders, errors = read_as(fmt, tmp_path, rec)
    assert errors == []
    assert orders[0].paid_at == datetime(2026, 9, 10, 2, tzinfo=UTC)
    orders, _ = read_orders(
        tmp_path / f"orders.{fmt}", timezone=ZoneInfo("Europe/Berlin"), default_origin=SHOP
    )
    assert orders[0].paid_at == datetime(2026, 9, 10, 8, tzinfo=UTC)


@FORMATS
def test_shipped_at_may_precede_paid_at_by_a_little_clock_skew(fmt: str, tmp_path: Path) -> None:
    """shipped_at up to SHIPPED_AT_SKEW before paid_at is accepted; more is an error."""
    paid = datetime(2026, 9, 10, 10, tzinfo=CST)
    ok = mutate(base_record(), "shipments[0].shipped_at", (paid - SHIPPED_AT_SKEW).isoformat())
    assert read_as(fmt, tmp_path, ok)[1] == []
    late = (paid - SHIPPED_AT_SKEW - timedelta(seconds=1)).isoformat()
    bad = mutate(base_record(), "shipments[0].shipped_at", late)
    assert "must not be before paid_at" in read_as(fmt, tmp_path, bad)[1][0]


@FORMATS
def test_missing_origin_without_shop_default_is_an_error(fmt: str, tmp_path: Path) -> None:
    """No origin and no [shop] origin configured names the field and the fix."""
    rec = mutate(base_record(), "origin", ...)
    orders, errors = read_as(fmt, tmp_path, rec, default_origin=None)
    assert orders == []
    assert errors == [
        f"{tmp_path / ('orders.' + fmt)}:2: origin: missing and no [shop] origin configured"
        if fmt == "csv"
        else f"{tmp_path / 'orders.jsonl'}:1: origin: missing and no [shop] origin configured"
    ]


@FORMATS
def test_duplicate_tracking_number_within_an_order_is_an_error(fmt: str, tmp_path: Path) -> None:
    """One parcel listed twice in an order (under any courier) is refused."""
    rec = base_record()
    rec["shipments"].append({"courier": "zto", "tracking_number": "YT7000000001"})
    rec["items"].append({"sku": "CUP-01", "name": "茶杯", "qty": 1})
    orders, errors = read_as(fmt, tmp_path, rec)
    assert orders == []
    where = "shipments[0]" if fmt == "jsonl" else "line 2"
    assert len(errors) == 1
    assert f'tracking_number: duplicate "YT7000000001" (also {where})' in errors[0]


@FORMATS
def test_unknown_courier_lists_the_known_codes(fmt: str, tmp_path: Path) -> None:
    """An unknown courier code is named, with every canonical code listed."""
    rec = mutate(base_record(), "shipments[0].courier", "yto2")
    _, errors = read_as(fmt, tmp_path, rec)
    assert errors[0].endswith(
        'courier: unknown courier code "yto2" (known: sf, yto, zto, sto, yunda, jd, ems, '
        "chinapost, jt, deppon, ups, fedex, dhl, usps)"
    )


@FORMATS
def test_personal_data_is_never_echoed(fmt: str, tmp_path: Path) -> None:
    """Errors about phone numbers do not repeat the number."""
    rec = mutate(base_record(), "buyer.phone", "1380013800")
    _, errors = read_as(fmt, tmp_path, rec)
    assert "1380013800" not in errors[0]


# ------------------------------------------------------------------ JSON-only rules


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("items[0].qty", "2", "items[0].qty: must be a whole number > 0"),
        ("items[0].qty", True, "items[0].qty: must be a whole number > 0"),
        ("items[0].unit_weight_kg", "0.5", "items[0].unit_weight_kg: must be a number of kg"),
        ("shipments[0].weight_kg", float("nan"), "shipments[0].weight_kg: must be a number"),
        ("buyer.opt_out", "yes", "buyer.opt_out: must be true or false"),
        ("buyer.opt_out", 1, "buyer.opt_out: must be true or false"),
        ("order_id", 1001, "order_id: must be a string"),
        ("buyer.phone", 13800138000, "buyer.phone: must be a string"),
        ("buyer", "张三", "buyer: must be an object"),
        ("buyer", ..., "buyer: required"),
        ("destination", ..., "destination: required"),
        ("destination", ["浙江省"], "destination: must be an object"),
        ("items", [], "items: must be a non-empty list"),
        ("items", ..., "items: must be a non-empty list"),
        ("items[0]", "TEA-500", "items[0]: must be an object"),
        ("shipments", {"courier": "yto"}, "shipments: must be a list"),
        ("paid_at", 1757469600, "paid_at: must be a string"),
    ],
)
def test_json_types_are_strict(tmp_path: Path, field: str, value: Any, reason: str) -> None:
    """In JSONL numbers must be JSON numbers, flags JSON booleans, text JSON strings."""
    _, errors = read_as("jsonl", tmp_path, mutate(base_record(), field, value))
    assert any(reason in e for e in errors), errors


def test_json_whole_float_quantity_is_accepted(tmp_path: Path) -> None:
    """A quantity written 2.0 is the whole number 2."""
    orders, errors = read_as("jsonl", tmp_path, mutate(base_record(), "items[0].qty", 2.0))
    assert errors == [] and orders[0].items[0].qty == 2


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("ship_bye", "ship_bye: unknown field (did you mean ship_by?)"),
        ("buyer.nmae", "buyer.nmae: unknown field (did you mean name?)"),
        ("destination.zip", "destination.zip: unknown field"),
        ("items[0].price", "items[0].price: unknown field"),
        ("shipments[0].carrier", "shipments[0].carrier: unknown field (did you mean courier?)"),
    ],
)
def test_unknown_json_fields_are_errors(tmp_path: Path, field: str, message: str) -> None:
    """A misspelt or extra field is named, never silently ignored."""
    orders, errors = read_as("jsonl", tmp_path, mutate(base_record(), field, "x"))
    assert orders == []
    assert errors == [f"{tmp_path / 'orders.jsonl'}:1: {message}"]


def test_duplicate_json_key_is_an_error(tmp_path: Path) -> None:
    """A key given twice in one object is ambiguous and refused."""
    line = json.dumps(base_record(), ensure_ascii=False)[:-1] + ', "order_id": "A9"}'
    _, errors = read(write_jsonl(tmp_path / "o.jsonl", [line]))
    assert [str(e) for e in errors] == [f'{tmp_path / "o.jsonl"}:1: duplicate key "order_id"']


def test_jsonl_reports_every_bad_line_with_physical_line_numbers() -> None:
    """Each bad line of the sample bad file is reported, blank lines counted, good ones kept."""
    path = FIXTURES / "bad.jsonl"
    orders, errors = read(path)
    assert [o.order_id for o in orders] == ["A7"]
    assert [str(e).removeprefix(f"{path}:") for e in errors] == [
        "3: not JSON: Expecting property name enclosed in double quotes (column 59)",
        "4: not a JSON object",
        "5: ship_bye: unknown field (did you mean ship_by?)",
        "5: buyer.phone: not a mainland mobile number (11 digits starting with 1)",
        '6: paid_at: "2026-09-10" is a date without a time (e.g. 2026-09-10T10:00:00+08:00)',
        "6: items[1].qty: must be a whole number > 0",
        '7: order_id: "A1" also on line 1; give each once',
        '8: shipments[0].courier: unknown courier code "yto2" (known: sf, yto, zto, sto, yunda,'
        " jd, ems, chinapost, jt, deppon, ups, fedex, dhl, usps)",
    ]


def test_duplicate_order_id_names_both_lines_and_keeps_neither(tmp_path: Path) -> None:
    """The same order_id twice in one file is an error naming both lines; neither is kept."""
    rec = base_record()
    path = write_jsonl(tmp_path / "o.jsonl", [rec, mutate(rec, "order_id", "B1"), rec])
    orders, errors = read(path)
    assert [o.order_id for o in orders] == ["B1"]
    assert [str(e) for e in errors] == [
        f'{path}:3: order_id: "A1001" also on line 1; give each once'
    ]


def test_jsonl_bom_blank_lines_and_bad_utf8(tmp_path: Path) -> None:
    """A UTF-8 BOM is allowed, blank lines skipped, a line that is not UTF-8 is one error."""
    line = json.dumps(base_record(), ensure_ascii=False).encode()
    path = tmp_path / "o.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + line + b"\r\n\r\n   \n" + '{"order_id": "张"}'.encode("gb18030")
    )
    orders, errors = read(path)
    assert orders == [DESIGN_ORDER]
    assert [str(e) for e in errors] == [f"{path}:4: not UTF-8 text"]


@pytest.mark.parametrize("value", ['"A1001"', "[1, 2]", "null", "42"])
def test_json_line_that_is_not_an_object_is_one_error(tmp_path: Path, value: str) -> None:
    """A JSON value other than an object is reported once for its line."""
    _, errors = read(write_jsonl(tmp_path / "o.jsonl", [value]))
    assert [e.reason for e in errors] == ["not a JSON object"]


# ------------------------------------------------------------------ CSV-only rules


@pytest.mark.parametrize(
    ("column", "value", "get", "expected"),
    [
        ("item.qty", "2", lambda o: o.items[0].qty, 2),
        ("item.qty", "3.0", lambda o: o.items[0].qty, 3),
        ("item.unit_weight_kg", ".25", lambda o: o.items[0].unit_weight_kg, 0.25),
        ("item.unit_weight_kg", "", lambda o: o.items[0].unit_weight_kg, None),
        ("buyer.opt_out", "是", lambda o: o.buyer.opt_out, True),
        ("buyer.opt_out", "否", lambda o: o.buyer.opt_out, False),
        ("buyer.opt_out", "YES", lambda o: o.buyer.opt_out, True),
        ("buyer.opt_out", "1", lambda o: o.buyer.opt_out, True),
        ("buyer.opt_out", "0", lambda o: o.buyer.opt_out, False),
        ("buyer.opt_out", "", lambda o: o.buyer.opt_out, False),
        ("buyer.chat_id", "", lambda o: o.buyer.chat_id, None),
        ("shipment.weight_kg", " 1.5 ", lambda o: o.shipments[0].weight_kg, 1.5),
    ],
)
def test_csv_text_values(
    tmp_path: Path, column: str, value: str, get: Callable[[Order], Any], expected: Any
) -> None:
    """CSV cells are text: digits, yes/no words and blanks read as documented."""
    rows = to_csv_rows(base_record())
    rows[0][column] = value
    orders, errors = read(write_csv(tmp_path / "o.csv", rows))
    assert errors == []
    assert get(orders[0]) == expected


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("item.qty", "two", "item.qty: must be a whole number > 0"),
        ("item.qty", "1.5", "item.qty: must be a whole number > 0"),
        ("item.qty", "", "item.qty: required"),
        ("item.unit_weight_kg", "0.5kg", "item.unit_weight_kg: must be a number of kg >= 0"),
        ("shipment.weight_kg", "nan", "shipment.weight_kg: must be a number of kg >= 0"),
        ("buyer.opt_out", "maybe", "buyer.opt_out: must be true or false (or 1/0, yes/no, 是/否)"),
        ("shipment.tracking_number", "7.31E+13", f'shipment.tracking_number: "7.31E+13" {EXCEL}'),
        ("order_id", "1.23457E+18", f'order_id: "1.23457E+18" {EXCEL}'),
        ("buyer.phone", "1.38001E+10", f"buyer.phone: {EXCEL}"),
    ],
)
def test_csv_bad_text_values(tmp_path: Path, column: str, value: str, reason: str) -> None:
    """Unreadable CSV cells name their column and line."""
    rows = to_csv_rows(base_record())
    rows[0][column] = value
    path = write_csv(tmp_path / "o.csv", rows)
    _, errors = read(path)
    assert [str(e) for e in errors] == [f"{path}:2: {reason}"]


def test_csv_reports_every_bad_line() -> None:
    """The sample bad CSV reports each bad row on its own line; the good order survives."""
    path = FIXTURES / "bad.csv"
    orders, errors = read(path)
    assert [o.order_id for o in orders] == ["A6"]
    assert [str(e).removeprefix(f"{path}:") for e in errors] == [
        '3: destination.province: unknown province "火星"',
        "4: item.qty: must be a whole number > 0",
        '5: paid_at: "2026-09-11T10:00:00+08:00" disagrees with line 2 of this order',
        '6: shipment.courier: unknown courier code "yto2" (known: sf, yto, zto, sto, yunda, jd,'
        " ems, chinapost, jt, deppon, ups, fedex, dhl, usps)",
        "7: buyer.phone: looks mangled by Excel (1.2E+10); format the column as text",
    ]


def test_csv_disagreeing_personal_field_names_lines_not_values(tmp_path: Path) -> None:
    """Order-level cells that disagree are an error on the later line, without personal data."""
    rows = to_csv_rows(base_record())
    rows.append({**rows[0], "buyer.phone": "13900139000", "item.sku": "CUP-01"})
    path = write_csv(tmp_path / "o.csv", rows)
    orders, errors = read(path)
    assert orders == []
    assert [str(e) for e in errors] == [
        f"{path}:3: buyer.phone: disagrees with line 2 of this order"
    ]


def test_csv_rows_of_one_order_need_not_be_consecutive(tmp_path: Path) -> None:
    """Rows with the same order_id are grouped wherever they are, items in row order."""
    a = to_csv_rows(base_record())[0]
    b = to_csv_rows(mutate(base_record(), "order_id", "B1"))[0]
    a2 = {"order_id": "A1001", "item.sku": "CUP-01", "item.name": "茶杯", "item.qty": "1"}
    orders, errors = read(write_csv(tmp_path / "o.csv", [a, b, a2]))
    assert errors == []
    assert [o.order_id for o in orders] == ["A1001", "B1"]
    assert [i.sku for i in orders[0].items] == ["TEA-500", "CUP-01"]
    assert len(orders[0].shipments) == 1


def test_csv_shipment_only_row_adds_a_parcel_not_an_item(tmp_path: Path) -> None:
    """A row with blank item cells adds its shipment only."""
    rows = to_csv_rows(base_record())
    rows.append(
        {"order_id": "A1001", "shipment.courier": "sf", "shipment.tracking_number": "SF12345"}
    )
    orders, errors = read(write_csv(tmp_path / "o.csv", rows))
    assert errors == []
    assert len(orders[0].items) == 1
    assert [(s.courier, s.tracking_number) for s in orders[0].shipments] == [
        ("yto", "YT7000000001"),
        ("sf", "SF12345"),
    ]


def test_csv_same_parcel_with_conflicting_weight_is_an_error(tmp_path: Path) -> None:
    """A parcel repeated on several rows must carry the same shipped_at and weight_kg."""
    rows = to_csv_rows(mutate(base_record(), "shipments[0].weight_kg", 1.0))
    rows.append({**rows[0], "item.sku": "CUP-01", "shipment.weight_kg": "2.0"})
    path = write_csv(tmp_path / "o.csv", rows)
    _, errors = read(path)
    assert [str(e) for e in errors] == [
        f'{path}:3: shipment.weight_kg: "2.0" disagrees with line 2 for YT7000000001'
    ]


def test_csv_order_without_item_rows_is_an_error(tmp_path: Path) -> None:
    """An order whose rows carry no item is refused."""
    rows = to_csv_rows(base_record())
    for k in ("item.sku", "item.name", "item.qty", "item.unit_weight_kg"):
        rows[0][k] = ""
    path = write_csv(tmp_path / "o.csv", rows)
    _, errors = read(path)
    assert [str(e) for e in errors] == [f"{path}:2: items: no item rows"]


def test_csv_header_aliases_case_and_optional_columns(tmp_path: Path) -> None:
    """items./shipments. prefixes, any letter case and only the required columns are fine."""
    text = (
        "Order_ID, paid_at ,BUYER.NAME,buyer.phone,destination.province,destination.city,"
        "items.sku,Items.Name,items.qty,shipments.courier,shipments.tracking_number\n"
        "A1,2026-09-10T10:00:00+08:00,张三,13800138000,浙江省,杭州市,TEA-500,龙井,2,sf,SF12345\n"
    )
    (tmp_path / "o.csv").write_text(text, encoding="utf-8")
    orders, errors = read(tmp_path / "o.csv")
    assert errors == []
    assert orders[0].items == (Item("TEA-500", "龙井", 2, None),)
    assert orders[0].shipments == (ShipmentRecord("sf", "SF12345"),)


def test_csv_header_problems_are_reported_on_line_1(tmp_path: Path) -> None:
    """Unknown, repeated and missing columns are named on the header line."""
    text = "order_id,paid_at,ship_bye,buyer.name,buyer.name,destination.province,destination.city,"
    text += "item.sku,item.name,item.qty\nA1,2026-09-10T10:00:00+08:00,,张三,张三,浙江,杭州,T,T,1\n"
    path = tmp_path / "o.csv"
    path.write_text(text, encoding="utf-8")
    orders, errors = read(path)
    assert orders == []
    assert [str(e) for e in errors] == [
        f'{path}:1: unknown column "ship_bye" (did you mean ship_by?)',
        f'{path}:1: column "buyer.name" appears twice',
        f"{path}:1: missing column(s): buyer.phone",
    ]


def test_csv_row_with_wrong_field_count_is_an_error(tmp_path: Path) -> None:
    """A short row, or a value beyond the header, is one error; trailing empty cells are fine."""
    rows = to_csv_rows(base_record())
    path = write_csv(tmp_path / "o.csv", rows)
    good = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([good[0], good[1] + ",,", "A2,2026", good[1] + ",x"]) + "\n")
    orders, errors = read(path)
    assert [e.line for e in errors] == [3, 4]
    assert "fields where the header has" in errors[0].reason
    assert "has no name in the header" in errors[1].reason
    assert [o.order_id for o in orders] == ["A1001"]


def test_csv_quoted_newline_keeps_physical_line_numbers(tmp_path: Path) -> None:
    """A cell spanning two lines shifts later rows' line numbers as an editor shows them."""
    rows = to_csv_rows(mutate(base_record(), "destination.address", "文三路\n1 号"))
    rows.append({**to_csv_rows(mutate(base_record(), "order_id", "B1"))[0], "item.qty": "0"})
    path = write_csv(tmp_path / "o.csv", rows)
    orders, errors = read(path)
    assert orders[0].destination.address == "文三路\n1 号"
    assert [str(e) for e in errors] == [f"{path}:4: item.qty: must be a whole number > 0"]


def test_csv_row_without_order_id_is_an_error(tmp_path: Path) -> None:
    """Every row must carry its order_id."""
    rows = to_csv_rows(base_record())
    rows.append({**rows[0], "order_id": ""})
    path = write_csv(tmp_path / "o.csv", rows)
    _, errors = read(path)
    assert [str(e) for e in errors] == [f"{path}:3: order_id: required"]


def test_csv_unknown_column_still_checks_rows(tmp_path: Path) -> None:
    """An unknown column is an error, and every row's other problems are still reported."""
    rows = to_csv_rows(mutate(base_record(), "items[0].qty", 0))
    rows[0]["ship_bye"] = "2026-09-12T10:00:00+08:00"
    path = write_csv(tmp_path / "o.csv", rows)
    orders, errors = read(path)
    assert orders == []
    assert [str(e) for e in errors] == [
        f'{path}:1: unknown column "ship_bye" (did you mean ship_by?)',
        f"{path}:2: item.qty: must be a whole number > 0",
    ]


def test_gb18030_csv_is_detected(tmp_path: Path) -> None:
    """A CSV that is not UTF-8 is read as GB18030 (Excel on Chinese Windows)."""
    orders, errors = read(FIXTURES / "design_sample_gb18030.csv", default_origin=None)
    assert errors == []
    assert orders[0].buyer.name == "张三"
    assert orders[0].destination.address == "文三路 1 号"


def test_csv_mixing_utf8_and_gb18030_is_refused(tmp_path: Path) -> None:
    """A file whose lines are in different encodings is one error, not silent mojibake."""
    good = (FIXTURES / "design_sample.csv").read_bytes()
    row = good.splitlines()[1].decode("utf-8").replace("A1001", "B1")
    path = tmp_path / "o.csv"
    path.write_bytes(good + row.encode("gb18030") + b"\r\n")
    orders, errors = read(path)
    assert orders == []
    assert [str(e) for e in errors] == [
        f"{path}:3: mixed encodings: line 2 is UTF-8 but this line is not; save as UTF-8"
    ]


def test_csv_bytes_in_no_known_encoding_are_refused(tmp_path: Path) -> None:
    """Bytes that are neither UTF-8 nor GB18030 are reported with their line."""
    path = tmp_path / "o.csv"
    path.write_bytes(b"order_id\n\x81\x20\n")
    _, errors = read(path)
    assert [str(e) for e in errors] == [f"{path}:2: neither UTF-8 nor GB18030 text"]


# ------------------------------------------------------------------ files


@pytest.mark.parametrize("name", ["orders.xlsx", "orders.json", "orders"])
def test_unsupported_file_type_is_one_error_at_line_0(tmp_path: Path, name: str) -> None:
    """Only .jsonl and .csv are read; anything else is refused before opening it."""
    orders, errors = read(tmp_path / name)
    assert orders == []
    assert [str(e) for e in errors] == [
        f"{tmp_path / name}:0: unsupported file type; use .jsonl or .csv"
    ]


def test_extension_is_case_insensitive(tmp_path: Path) -> None:
    """ORDERS.CSV from Windows is a CSV file."""
    path = tmp_path / "ORDERS.CSV"
    path.write_bytes((FIXTURES / "design_sample.csv").read_bytes())
    assert read(path) == ([DESIGN_ORDER], [])


@pytest.mark.parametrize("name", ["missing.jsonl", "missing.csv"])
def test_missing_file_is_an_error_not_an_exception(tmp_path: Path, name: str) -> None:
    """A file that cannot be read gives one error at line 0."""
    orders, errors = read(tmp_path / name)
    assert orders == []
    assert len(errors) == 1 and errors[0].line == 0
    assert errors[0].reason.startswith("cannot read:")


def test_empty_csv_needs_a_header(tmp_path: Path) -> None:
    """An empty CSV file is refused for want of a header."""
    (tmp_path / "o.csv").write_text("", encoding="utf-8")
    _, errors = read(tmp_path / "o.csv")
    assert [e.reason for e in errors] == ["empty file; a header row is required"]


def test_empty_jsonl_has_no_orders_and_no_errors(tmp_path: Path) -> None:
    """An empty JSONL file imports nothing without complaint."""
    (tmp_path / "o.jsonl").write_text("\n\n", encoding="utf-8")
    assert read(tmp_path / "o.jsonl") == ([], [])


def test_line_error_formats_as_file_line_reason() -> None:
    """A LineError prints as FILE:LINE: reason."""
    err = LineError("orders.csv", 7, "item.qty: must be a whole number > 0")
    assert str(err) == "orders.csv:7: item.qty: must be a whole number > 0"


# ------------------------------------------------------------------ weights


def test_weights_csv_is_read_with_line_numbers() -> None:
    """A courier bill gives (tracking_number, weight_kg, line) per row."""
    weights, errors = read_weights(FIXTURES / "weights.csv")
    assert errors == []
    assert weights == [("YT7000000001", 0.84, 2), ("SF1000000001", 1.2, 3)]


def test_weights_every_bad_row_is_reported() -> None:
    """Negative, missing or non-numeric weights, bad and repeated tracking numbers are errors."""
    path = FIXTURES / "weights_bad.csv"
    weights, errors = read_weights(path)
    assert weights == []
    assert [str(e).removeprefix(f"{path}:") for e in errors] == [
        "3: weight_kg: must be a number of kg >= 0",
        '4: tracking_number: "AB1": must be 5-40 letters, digits or -',
        '5: tracking_number: "YT7000000001" also on line 2',
        "6: weight_kg: required",
        "7: weight_kg: must be a number of kg >= 0",
    ]


@pytest.mark.parametrize("value", ["inf", "-0.1", "1e3", "NaN"])
def test_weights_must_be_finite_and_not_negative(tmp_path: Path, value: str) -> None:
    """Only plain finite numbers >= 0 are weights."""
    (tmp_path / "w.csv").write_text(f"tracking_number,weight_kg\nYT70000001,{value}\n")
    weights, errors = read_weights(tmp_path / "w.csv")
    assert weights == []
    assert [e.reason for e in errors] == ["weight_kg: must be a number of kg >= 0"]


def test_weights_header_is_required(tmp_path: Path) -> None:
    """A bill without its header row is refused on line 1 rather than misread."""
    (tmp_path / "w.csv").write_text("YT7000000001,0.84\n")
    weights, errors = read_weights(tmp_path / "w.csv")
    assert weights == []
    assert [e.reason for e in errors] == [
        'unknown column "YT7000000001"',
        'unknown column "0.84"',
        "missing column(s): tracking_number, weight_kg",
    ]


def test_weights_columns_may_be_reordered_and_extra_columns_refused(tmp_path: Path) -> None:
    """Column order is free; a column other than the two is named as unknown."""
    (tmp_path / "w.csv").write_text("weight_kg,Tracking_Number\n0.5,YT70000001\n")
    assert read_weights(tmp_path / "w.csv") == ([("YT70000001", 0.5, 2)], [])
    (tmp_path / "x.csv").write_text("tracking_number,weight_kg,fee\nYT70000001,0.5,12\n")
    _, errors = read_weights(tmp_path / "x.csv")
    assert [e.reason for e in errors] == ['unknown column "fee"']


def test_weights_gb18030_and_unsupported_type(tmp_path: Path) -> None:
    """Weights CSV may be GB18030; a file that is not .csv is refused at line 0."""
    (tmp_path / "w.csv").write_bytes("tracking_number,weight_kg\n顺丰1,1\n".encode("gb18030"))
    _, errors = read_weights(tmp_path / "w.csv")
    assert [e.reason for e in errors] == [
        'tracking_number: "顺丰1": must be 5-40 letters, digits or -'
    ]
    _, errors = read_weights(tmp_path / "w.xlsx")
    assert [str(e) for e in errors] == [f"{tmp_path / 'w.xlsx'}:0: unsupported file type; use .csv"]


def test_weights_csv_that_cannot_be_parsed_is_one_error(tmp_path: Path) -> None:
    """A cell too large for the CSV reader stops reading with an error on its line."""
    big = "x" * (csv.field_size_limit() + 1)
    (tmp_path / "w.csv").write_text(f'tracking_number,weight_kg\nYT70000001,1\nA,"{big}"\n')
    weights, errors = read_weights(tmp_path / "w.csv")
    assert weights == []
    assert [e.line for e in errors] == [3]
    assert errors[0].reason.startswith("not CSV: field larger than field limit")


def test_pathological_json_lines_are_errors_not_crashes(tmp_path: Path) -> None:
    """Deep nesting, over-long numbers and huge quantities are reported per line."""
    huge = mutate(base_record(), "items[0].qty", 10**400)
    path = write_jsonl(tmp_path / "o.jsonl", ["[" * 100_000, '{"a": ' + "1" * 5000 + "}", huge])
    _, errors = read(path)
    assert [e.line for e in errors] == [1, 2, 3]
    assert errors[0].reason.startswith("not usable JSON")
    assert errors[2].reason == "items[0].qty: must be a whole number > 0"
