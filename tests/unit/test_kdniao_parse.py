"""Kdniao parsing, code tables, request signing and push handling, over the synthetic fixtures."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest

from carriers.kdniao import codes
from carriers.kdniao.parse import parse_push, parse_query
from carriers.kdniao.sign import (
    REQUEST_TYPE_QUERY,
    data_sign,
    form_body,
    push_ack,
    query_request_data,
    request_form,
    verify_push_sign,
)
from carriers.model import ErrorKind, Location, Problem, Status
from carriers.registry import COURIERS

FIXTURES = Path(__file__).parents[1] / "fixtures" / "kdniao"
SOURCE = "kdniao"
SHANGHAI = ZoneInfo("Asia/Shanghai")
BAD = ErrorKind.BAD_RESPONSE


def raw(name: str) -> bytes:
    """The bytes of a fixture file."""
    return (FIXTURES / name).read_bytes()


def load(name: str) -> dict[str, Any]:
    """A fixture decoded, for building variants in the test."""
    data: dict[str, Any] = json.loads(raw(name))
    return data


def query(body: bytes | str | dict[str, Any], courier: str = "jd", **kw: Any) -> Any:
    """parse_query on a body (a dict is JSON-encoded first)."""
    if isinstance(body, dict):
        body = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return parse_query(body, courier=courier, tracking_number="N1", source=SOURCE, **kw)


def md5_b64(text: str) -> str:
    """Base64 of the lower-case hex MD5 string, computed independently of the code."""
    return base64.b64encode(hashlib.md5(text.encode("utf-8")).hexdigest().encode()).decode()


# --- signing and request building ----------------------------------------------------


def test_data_sign_matches_the_documented_worked_example() -> None:
    """The docs' example RequestData and key sign as OWFhM2I5...ZTk0MmE=."""
    request_data = "{'OrderCode':'','ShipperCode':'SF','LogisticCode':'118954907573'}"
    key = "56da2cf8-c8a2-44b2-b6fa-476cd7d1ba17"
    assert data_sign(request_data, key) == "OWFhM2I5N2ViM2U2MGRkMjc4YzU2NmVlZWI3ZDk0MmE="
    assert base64.b64decode(data_sign(request_data, key)) == b"9aa3b97eb3e60dd278c566eeeb7d942a"


def test_request_form_has_the_five_signed_fields() -> None:
    """request_form gives RequestData, EBusinessID, RequestType, DataSign and DataType=2."""
    data = query_request_data("jd", " JDVA00000000001 ")
    form = request_form("1237100", "key-1", REQUEST_TYPE_QUERY, data)
    assert set(form) == {"RequestData", "EBusinessID", "RequestType", "DataSign", "DataType"}
    assert form["RequestType"] == "8001" and form["DataType"] == "2"
    assert json.loads(form["RequestData"]) == {
        "OrderCode": "",
        "ShipperCode": "JD",
        "LogisticCode": "JDVA00000000001",
    }
    assert form["DataSign"] == md5_b64(form["RequestData"] + "key-1")


def test_form_body_url_encodes_each_value_exactly_once() -> None:
    """On the wire DataSign's '=' is %3D (not %253D) and RequestData decodes back unchanged."""
    form = request_form("1237100", "key-1", "1002", {"ShipperCode": "SF", "LogisticCode": "中1"})
    body = form_body(form)
    assert "%253D" not in body and "DataSign=" in body
    assert parse_qs(body)["RequestData"] == [form["RequestData"]]
    assert parse_qs(body)["DataSign"] == [form["DataSign"]]


def test_query_request_data_sends_phone_tail_only_for_sf() -> None:
    """SF gets CustomerName = last four phone digits; other couriers never get it."""
    assert query_request_data("sf", "SF1", phone="138-0013-8000")["CustomerName"] == "8000"
    assert "CustomerName" not in query_request_data("zto", "ZT1", phone="13800138000")
    with pytest.raises(ValueError, match="no Kdniao ShipperCode"):
        query_request_data("nosuch", "X1")


def test_verify_push_sign_checks_request_data_and_key() -> None:
    """A push's DataSign verifies with the right key, also still URL-encoded; not otherwise."""
    request_data = (FIXTURES / "push_101_request_data.json").read_text(encoding="utf-8")
    sign = md5_b64(request_data + "key-1")
    assert verify_push_sign(request_data, sign, "key-1")
    assert verify_push_sign(request_data, sign.replace("=", "%3D"), "key-1")
    assert not verify_push_sign(request_data, sign, "key-2")
    assert not verify_push_sign(request_data.replace("JD", "SF"), sign, "key-1")


def test_push_ack_is_the_documented_body_in_china_time() -> None:
    """The push answer carries EBusinessID, UpdateTime (China time), Success and Reason."""
    ack = push_ack("1237100", datetime(2026, 9, 13, 3, 21, 30, tzinfo=UTC))
    assert ack == {
        "EBusinessID": "1237100",
        "UpdateTime": "2026-09-13 11:21:30",
        "Success": True,
        "Reason": "",
    }
    assert push_ack("1237100", datetime(2026, 9, 13), False, "签名错误")["Success"] is False


# --- code tables ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "name", "status", "problem"),
    [
        ("0", "暂无轨迹信息", Status.PENDING, None),
        ("1", "已揽收", Status.PICKED_UP, None),
        ("10", "待揽件", Status.PENDING, None),
        ("2", "在途中", Status.IN_TRANSIT, None),
        ("201", "到达派件城市", Status.IN_TRANSIT, None),
        ("202", "派件中", Status.OUT_FOR_DELIVERY, None),
        ("204", "到达转运中心", Status.IN_TRANSIT, None),
        ("205", "到达派件网点", Status.IN_TRANSIT, None),
        ("206", "寄件网点发件", Status.IN_TRANSIT, None),
        ("211", "已放入快递柜或驿站", Status.READY_FOR_PICKUP, None),
        ("3", "已签收", Status.DELIVERED, None),
        ("301", "正常签收", Status.DELIVERED, None),
        ("302", "派件异常后最终签收", Status.DELIVERED, None),
        ("304", "代收签收", Status.DELIVERED, None),
        ("311", "快递柜或驿站签收", Status.DELIVERED, None),
        ("4", "问题件", Status.EXCEPTION, Problem.OTHER),
        ("401", "发货无信息", None, Problem.NO_PROGRESS),
        ("402", "超时未签收", None, Problem.DELAYED),
        ("403", "超时未更新", None, Problem.NO_PROGRESS),
        ("404", "拒收(退件)", Status.RETURNING, Problem.REFUSED),
        ("405", "派件异常", Status.DELIVERY_FAILED, None),
        ("406", "退货签收", Status.RETURNED, None),
        ("407", "退货未签收", Status.RETURNING, None),
        ("412", "快递柜或驿站超时未取", Status.READY_FOR_PICKUP, Problem.LOCKER_OVERDUE),
        ("413", "单号已拦截", Status.ON_HOLD, Problem.INTERCEPTED),
        ("414", "破损", Status.EXCEPTION, Problem.DAMAGED),
        ("415", "客户取消发货", Status.EXCEPTION, Problem.OTHER),
        ("416", "无法联系", Status.DELIVERY_FAILED, Problem.UNREACHABLE),
        ("417", "配送延迟", None, Problem.DELAYED),
        ("418", "快件取出", Status.EXCEPTION, Problem.OTHER),
        ("419", "重新派送", Status.OUT_FOR_DELIVERY, None),
        ("420", "收货地址不详细", Status.DELIVERY_FAILED, Problem.ADDRESS_PROBLEM),
        ("421", "收件人电话错误", Status.DELIVERY_FAILED, Problem.UNREACHABLE),
        ("422", "错分件", Status.EXCEPTION, Problem.MIS_SORTED),
        ("423", "超区件", Status.EXCEPTION, Problem.OUT_OF_AREA),
        ("5", "转寄", Status.IN_TRANSIT, None),
        ("6", "清关", Status.IN_TRANSIT, None),
        ("601", "待清关", Status.IN_TRANSIT, None),
        ("602", "清关中", Status.IN_TRANSIT, None),
        ("603", "已清关", Status.IN_TRANSIT, None),
        ("604", "清关异常", Status.ON_HOLD, Problem.CUSTOMS),
    ],
)
def test_every_documented_state_ex_maps_to_status_and_problem(
    code: str, name: str, status: Status | None, problem: Problem | None
) -> None:
    """Each documented StateEx / Action code has its documented name and our mapping."""
    assert codes.STATES_EX[code] == codes.Code(name, status, problem)


def test_shipper_codes_round_trip_for_every_canonical_courier() -> None:
    """All 14 canonical couriers have a ShipperCode mapping back; FEDEX_GJ is fedex too."""
    assert set(codes.COURIER_TO_SHIPPER) == set(COURIERS)
    for courier, shipper in codes.COURIER_TO_SHIPPER.items():
        assert codes.canonical_courier(shipper) == courier
    assert codes.shipper_code("jt") == "JTSD" and codes.shipper_code("yunda") == "YD"
    assert codes.canonical_courier("FEDEX_GJ") == "fedex"
    assert codes.canonical_courier("HTKY") is None


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("已收件[深圳市]", Status.PICKED_UP),
        ("正在派件..(派件人:邓裕富)[深圳 市]", Status.OUT_FOR_DELIVERY),
        ("快件已存放至【菜鸟驿站】，请及时领取", Status.READY_FOR_PICKUP),
        ("派件已签收[深圳市]", Status.DELIVERED),
        ("收件人拒收，快件退回", Status.RETURNING),
        ("快件在 深圳集散中心 [深圳市]", Status.IN_TRANSIT),
    ],
)
def test_text_without_action_gets_a_guessed_status(text: str, status: Status) -> None:
    """1002 traces carry no Action: the status is guessed from the Chinese text."""
    assert codes.classify_text(text).status is status


# --- query answers -------------------------------------------------------------------


def test_8001_out_for_delivery_keeps_actions_and_locations() -> None:
    """StateEx 202: out for delivery; scans oldest first, Action kept, Location parsed."""
    result = query(raw("query_8001_out_for_delivery.json"))
    assert result.ok and result.status is Status.OUT_FOR_DELIVERY
    assert not result.finished and result.problem is None and result.courier_corrected is None
    assert [e.raw_code for e in result.events] == ["1", "204", "2", "201", "205", "202"]
    assert result.events[0].status is Status.PICKED_UP
    assert result.events[-1].status is Status.OUT_FOR_DELIVERY
    assert result.events[0].time == datetime(2026, 9, 11, 17, 30, 12, tzinfo=SHANGHAI)
    assert result.events[0].location == Location("中国", "广东省", "广州市", None)
    assert result.events[-1].location == Location("中国", "浙江省", "杭州市", None)
    assert result.extra["estimated_delivery"] == "2026-09-13"
    assert result.extra["StateEx"] == "202" and result.extra["State"] == "2"


def test_8001_delivered_is_finished() -> None:
    """StateEx 301: delivered and finished."""
    result = query(raw("query_8001_delivered.json"))
    assert result.status is Status.DELIVERED and result.finished
    assert result.events[-1].raw_code == "301" and result.events[-1].status is Status.DELIVERED


def test_8001_locker_overdue_is_ready_for_pickup_with_problem() -> None:
    """StateEx 412: still at the locker, problem locker_overdue."""
    result = query(raw("query_8001_locker_overdue.json"), courier="yto")
    assert result.status is Status.READY_FOR_PICKUP
    assert result.problem is Problem.LOCKER_OVERDUE and not result.finished


def test_1002_docs_example_sorts_scans_and_guesses_statuses() -> None:
    """The documented 1002 example: unordered traces sorted, slash dates read, text classified."""
    result = query(raw("query_1002_docs_example_delivered.json"), courier="sf")
    assert result.status is Status.DELIVERED and result.finished
    times = [e.time for e in result.events]
    assert times == sorted(times) and len(times) == 7
    assert times[0] == datetime(2014, 6, 24, 20, 18, 58, tzinfo=SHANGHAI)
    assert all(e.raw_code == "" for e in result.events)
    assert result.events[0].status is Status.PICKED_UP
    assert [e.text for e in result.events[-2:]] == ["派件已签收[深圳市]", "签收人是:已签收[深圳市]"]
    assert result.events[-1].location.city == "深圳市"


@pytest.mark.parametrize("name", ["query_1002_no_trace.json", "query_8001_no_trace.json"])
def test_no_trace_yet_is_pending_not_an_error(name: str) -> None:
    """No traces (Success true, State 0 or none) is an ok pending result."""
    result = query(raw(name), courier="sf" if "1002" in name else "jd")
    assert result.ok and result.status is Status.PENDING and result.events == ()


def test_failure_without_reason_is_pending() -> None:
    """Success false with a null Reason and no traces (a documented variant) is pending."""
    body = load("query_1002_no_trace.json")
    body["Success"] = False
    result = query(body, courier="sf")
    assert result.ok and result.status is Status.PENDING


@pytest.mark.parametrize(
    ("name", "kind", "retryable"),
    [
        ("query_error_invalid_id_key.json", ErrorKind.AUTH, False),
        ("query_error_no_package.json", ErrorKind.QUOTA_EXCEEDED, False),
        ("query_error_invalid_shipper_code.json", ErrorKind.UNSUPPORTED_COURIER, False),
        ("query_error_too_frequent.json", ErrorKind.RATE_LIMITED, True),
    ],
)
def test_failure_reasons_are_errors_as_data(name: str, kind: ErrorKind, retryable: bool) -> None:
    """Success false with a Reason becomes a TrackingError of the right kind with the raw body."""
    result = query(raw(name))
    assert not result.ok and result.error is not None
    assert result.error.kind is kind and result.error.retryable is retryable
    assert load(name)["Reason"] in result.error.message
    assert load(name)["Reason"] in result.error.raw_excerpt


def test_gbk_encoded_answer_is_decoded() -> None:
    """A GBK-encoded answer parses with its Chinese text intact."""
    body = json.dumps(load("query_8001_out_for_delivery.json"), ensure_ascii=False).encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    result = query(body)
    assert result.ok and result.events[-1].text.startswith("配送员【钱师傅】正在为您派送")


@pytest.mark.parametrize(
    ("body", "status", "kind", "retryable"),
    [
        (
            b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>",
            502,
            ErrorKind.BAD_RESPONSE,
            True,
        ),
        (b'{"EBusinessID": "1237100", "Success": tr', None, ErrorKind.BAD_RESPONSE, True),
        (b"", None, ErrorKind.BAD_RESPONSE, True),
        (b'{"Message": "An error has occurred."}', 500, ErrorKind.BAD_RESPONSE, True),
        (b'{"Message": "An error has occurred."}', 200, ErrorKind.BAD_RESPONSE, False),
        (b"Too Many Requests", 429, ErrorKind.RATE_LIMITED, True),
    ],
)
def test_broken_bodies_are_bad_responses_never_exceptions(
    body: bytes, status: int | None, kind: ErrorKind, retryable: bool
) -> None:
    """HTML pages, truncated JSON, empty and unexpected bodies become errors with an excerpt."""
    result = query(body, http_status=status)
    assert result.error is not None
    assert result.error.kind is kind and result.error.retryable is retryable
    assert result.error.raw_excerpt == body.decode()[:300]


def test_assessment_state_ex_keeps_the_latest_scan_status() -> None:
    """StateEx 403 超时未更新 keeps the newest scan's status and adds no_progress."""
    body = load("query_8001_out_for_delivery.json")
    body["State"], body["StateEx"] = "4", "403"
    result = query(body)
    assert result.status is Status.OUT_FOR_DELIVERY and result.problem is Problem.NO_PROGRESS


def test_basic_state_takes_the_finer_action_of_the_newest_scan() -> None:
    """State 4 without StateEx and a newest 416 scan: delivery_failed / unreachable."""
    body = load("query_8001_out_for_delivery.json")
    del body["StateEx"]
    body["State"] = "4"
    body["Traces"].append(
        {"AcceptTime": "2026-09-13 10:02:00", "AcceptStation": "联系不上收件人", "Action": "416"}
    )
    result = query(body)
    assert result.status is Status.DELIVERY_FAILED and result.problem is Problem.UNREACHABLE


def test_newest_first_traces_are_reordered() -> None:
    """Traces sent newest first come out oldest first, the same as ascending."""
    body = load("query_8001_out_for_delivery.json")
    reversed_body = json.loads(json.dumps(body))
    reversed_body["Traces"].reverse()
    assert query(reversed_body).events == query(body).events


def test_answer_for_another_shipper_is_a_correction() -> None:
    """An answer whose ShipperCode maps to another courier reports the correction."""
    result = query(raw("query_8001_out_for_delivery.json"), courier="sf")
    assert result.courier_corrected == "jd"


# --- pushes --------------------------------------------------------------------------


def test_push_gives_one_result_per_item_with_its_own_outcome() -> None:
    """A 101 push: delivered JD, in-transit ZTO, and STO 三天无轨迹 as pending no_progress."""
    request_data = (FIXTURES / "push_101_request_data.json").read_text(encoding="utf-8")
    assert verify_push_sign(request_data, md5_b64(request_data + "k"), "k")
    jd, zto, sto = parse_push(request_data, source=SOURCE)
    assert (jd.courier, jd.tracking_number, jd.status, jd.finished) == (
        "jd",
        "JDVA00000000002",
        Status.DELIVERED,
        True,
    )
    assert jd.extra["CallBack"] == "A1001"
    assert (zto.courier, zto.status, zto.finished) == ("zto", Status.IN_TRANSIT, False)
    assert zto.extra["estimated_delivery"] == "2026-09-14"
    assert sto.ok and sto.courier == "sto" and sto.status is Status.PENDING
    assert sto.problem is Problem.NO_PROGRESS and sto.extra["Reason"] == "三天无轨迹"


def test_push_item_with_an_error_reason_does_not_sink_the_others() -> None:
    """One failed item becomes an error result; the other items still parse."""
    data = load("push_101_request_data.json")
    data["Data"][1]["Success"] = False
    data["Data"][1]["Reason"] = "无效的输入[【LogisticCode】不正确]"
    results = parse_push(json.dumps(data, ensure_ascii=False).encode("utf-8"), source=SOURCE)
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error is not None and results[1].error.kind is ErrorKind.INVALID_NUMBER
    assert results[1].tracking_number == "78000000000011"


@pytest.mark.parametrize("request_data", ["", "{bad", '{"PushTime": "x"}', '{"Data": "x"}', "[]"])
def test_broken_push_is_a_single_bad_response(request_data: str) -> None:
    """A RequestData that is not a push gives one bad_response result, never an exception."""
    results = parse_push(request_data, source=SOURCE)
    assert len(results) == 1
    assert results[0].error is not None and results[0].error.kind is ErrorKind.BAD_RESPONSE


def test_push_item_that_is_not_an_object_is_reported() -> None:
    """A non-object item in Data becomes a bad_response result beside the good ones."""
    data = load("push_101_request_data.json")
    data["Data"].insert(0, "oops")
    results = parse_push(json.dumps(data, ensure_ascii=False), source=SOURCE)
    assert len(results) == 4 and results[0].error is not None and results[1].ok
