"""Kuaidi100 parsing, code tables and request/callback signing, over the synthetic fixtures."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from carriers.kuaidi100 import codes
from carriers.kuaidi100.parse import decode_body, parse_callback, parse_query
from carriers.kuaidi100.sign import (
    RESULT_V2,
    callback_ack,
    query_form,
    query_param,
    verify_callback_sign,
)
from carriers.model import ErrorKind, Location, Problem, Status
from carriers.registry import COURIERS

FIXTURES = Path(__file__).parents[1] / "fixtures" / "kuaidi100"
SOURCE = "kuaidi100"
SHANGHAI = ZoneInfo("Asia/Shanghai")

NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


def raw(name: str) -> bytes:
    """The bytes of a fixture file."""
    return (FIXTURES / name).read_bytes()


def load(name: str) -> dict[str, Any]:
    """A fixture decoded, for building variants in the test."""
    data: dict[str, Any] = json.loads(decode_body(raw(name)))
    return data


def query(body: bytes | str | dict[str, Any], courier: str = "yto", **kw: Any) -> Any:
    """parse_query on a body (a dict is JSON-encoded first)."""
    if isinstance(body, dict):
        body = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return parse_query(body, courier=courier, tracking_number="N1", source=SOURCE, **kw)


# --- request building and signatures -------------------------------------------------


def test_query_form_signs_param_key_customer_in_upper_case_md5() -> None:
    """The sign is upper-case MD5 of param + key + customer, over the exact param sent."""
    form = query_form("CUST01", "k3y", "yto", " YT7000000001 ", phone="138 0013 8000")
    expected = hashlib.md5(f"{form['param']}k3yCUST01".encode()).hexdigest().upper()
    assert form["sign"] == expected
    assert form["customer"] == "CUST01"
    assert set(form) == {"customer", "sign", "param"}


def test_query_param_carries_resultv2_4_and_hints() -> None:
    """The param is compact JSON with com, num, phone digits, from/to and resultv2 "4"."""
    param = json.loads(
        query_form("C", "K", "sf", "SF1", "13800138000", "广东省广州市", "浙江省杭州市")["param"]
    )
    assert param == {
        "com": "shunfeng",
        "num": "SF1",
        "phone": "13800138000",
        "from": "广东省广州市",
        "to": "浙江省杭州市",
        "resultv2": "4",
        "show": "0",
        "order": "desc",
    }
    assert RESULT_V2 == "4"
    assert "广东" in query_param("sf", "SF1", from_city="广东省")  # UTF-8 kept, not \\u escaped


def test_query_param_is_the_json_encoders_text_for_awkward_values() -> None:
    """Quotes, backslashes, control and non-ASCII characters: the stdlib encoder's exact text."""
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
    odd = ['a"b', "c\\d", "e\nf\x00\x1f", "广东省\u2028", "😀 \t", "\ud800", ""]
    for number in odd:
        for place in (None, *odd):
            for phone in (None, "138-1234", "13800138000"):
                body = {"com": "yuantong", "num": number.strip()}
                if phone:
                    body["phone"] = phone.rsplit("-", 1)[-1]
                if place:
                    body["from"] = place
                    body["to"] = place + "市"
                body.update({"resultv2": "4", "show": "0", "order": "desc"})
                to_place = place + "市" if place else None
                assert query_param("yto", number, phone, place, to_place) == encoder.encode(body)


def test_query_param_virtual_phone_keeps_tail_after_dash() -> None:
    """An e-commerce virtual number 138...-1234 is sent as its tail 1234."""
    assert json.loads(query_param("zto", "ZT1", phone="13800138000-1234"))["phone"] == "1234"
    assert "phone" not in json.loads(query_param("zto", "ZT1", phone=""))


def test_query_param_unknown_courier_is_a_value_error() -> None:
    """A courier Kuaidi100 has no code for is refused before any request is built."""
    with pytest.raises(ValueError, match="no Kuaidi100 company code"):
        query_param("nosuch", "X1")


def test_verify_callback_sign_accepts_md5_of_param_and_salt() -> None:
    """The push sign is MD5(param + salt); either hex case verifies, anything else fails."""
    param = (FIXTURES / "callback_polling.json").read_text(encoding="utf-8")
    good = hashlib.md5((param + "s@lt").encode("utf-8")).hexdigest()
    assert verify_callback_sign(param, "s@lt", good.upper())
    assert verify_callback_sign(param, "s@lt", good)
    assert not verify_callback_sign(param, "other", good.upper())
    assert not verify_callback_sign(param + " ", "s@lt", good.upper())
    assert not verify_callback_sign(param, "s@lt", "")


def test_callback_ack_is_the_documented_body() -> None:
    """The push answer is {"result": true, "returnCode": "200", "message": "成功"}."""
    assert callback_ack() == {"result": True, "returnCode": "200", "message": "成功"}
    assert callback_ack(False)["result"] is False


# --- code tables ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "name", "status", "problem"),
    [
        ("0", "在途", Status.IN_TRANSIT, None),
        ("1001", "到达派件城市", Status.IN_TRANSIT, None),
        ("1002", "干线", Status.IN_TRANSIT, None),
        ("1003", "转递", Status.IN_TRANSIT, None),
        ("1", "揽收", Status.PICKED_UP, None),
        ("101", "已下单", Status.PENDING, None),
        ("102", "待揽收", Status.PENDING, None),
        ("103", "已揽收", Status.PICKED_UP, None),
        ("2", "疑难", Status.EXCEPTION, Problem.OTHER),
        ("201", "超时未签收", None, Problem.DELAYED),
        ("202", "超时未更新", None, Problem.NO_PROGRESS),
        ("203", "拒收", Status.DELIVERY_FAILED, Problem.REFUSED),
        ("204", "派件异常", Status.DELIVERY_FAILED, None),
        ("205", "柜或驿站超时未取", Status.READY_FOR_PICKUP, Problem.LOCKER_OVERDUE),
        ("206", "无法联系", Status.DELIVERY_FAILED, Problem.UNREACHABLE),
        ("207", "超区", Status.EXCEPTION, Problem.OUT_OF_AREA),
        ("208", "滞留", Status.ON_HOLD, Problem.HELD),
        ("209", "破损", Status.EXCEPTION, Problem.DAMAGED),
        ("210", "销单", Status.EXCEPTION, Problem.OTHER),
        ("3", "签收", Status.DELIVERED, None),
        ("301", "本人签收", Status.DELIVERED, None),
        ("302", "派件异常后签收", Status.DELIVERED, None),
        ("303", "代签", Status.DELIVERED, None),
        ("304", "投柜或站签收", Status.DELIVERED, None),
        ("4", "退签", Status.RETURNED, None),
        ("401", "已销单", Status.EXCEPTION, Problem.OTHER),
        ("5", "派件", Status.OUT_FOR_DELIVERY, None),
        ("501", "投柜或驿站", Status.READY_FOR_PICKUP, None),
        ("6", "退回", Status.RETURNING, None),
        ("7", "转投", Status.IN_TRANSIT, None),
        ("8", "清关", Status.IN_TRANSIT, None),
        ("10", "待清关", Status.IN_TRANSIT, None),
        ("11", "清关中", Status.IN_TRANSIT, None),
        ("12", "已清关", Status.IN_TRANSIT, None),
        ("13", "清关异常", Status.ON_HOLD, Problem.CUSTOMS),
        ("14", "拒签", Status.RETURNING, Problem.REFUSED),
    ],
)
def test_every_documented_state_maps_to_status_and_problem(
    code: str, name: str, status: Status | None, problem: Problem | None
) -> None:
    """Each documented state / sub-state code has its documented name and our mapping."""
    meaning = codes.lookup(code)
    assert meaning == codes.Code(name, status, problem)
    assert codes.lookup_name(name) == code


@pytest.mark.parametrize(
    ("code", "main"),
    [
        ("1002", "0"),
        ("103", "1"),
        ("206", "2"),
        ("304", "3"),
        ("401", "4"),
        ("501", "5"),
        ("11", "8"),
        ("14", "14"),
    ],
)
def test_family_gives_the_main_state(code: str, main: str) -> None:
    """A sub-state belongs to its main state (1002 -> 0, 11 -> 8)."""
    assert codes.family(code) == main


def test_courier_codes_round_trip_for_every_canonical_courier() -> None:
    """All 14 canonical couriers have a Kuaidi100 com that maps back; 德邦物流 is deppon too."""
    assert set(codes.COURIER_TO_COM) == set(COURIERS)
    for courier, com in codes.COURIER_TO_COM.items():
        assert codes.canonical_courier(com) == courier
    assert codes.com_code("jt") == "jtexpress"
    assert codes.com_code("chinapost") == "youzhengguonei"
    assert codes.canonical_courier("debangwuliu") == "deppon"
    assert codes.canonical_courier("huitongkuaidi") is None


# --- query answers -------------------------------------------------------------------


def test_delivered_query_is_finished_with_events_oldest_first() -> None:
    """A state 3 answer is delivered and finished, scans oldest first with sub-state raw codes."""
    result = query(raw("query_resultv2_4_delivered.json"))
    assert result.ok and result.error is None
    assert result.status is Status.DELIVERED
    assert result.finished and result.problem is None and result.courier_corrected is None
    assert [e.raw_code for e in result.events] == [
        "1/103",
        "0/1002",
        "0/1002",
        "0/1001",
        "5/5",
        "3/301",
    ]
    assert [e.status for e in result.events] == [
        Status.PICKED_UP,
        Status.IN_TRANSIT,
        Status.IN_TRANSIT,
        Status.IN_TRANSIT,
        Status.OUT_FOR_DELIVERY,
        Status.DELIVERED,
    ]
    times = [e.time for e in result.events]
    assert times == sorted(times)
    assert times[0] == datetime(2026, 9, 11, 18, 20, 3, tzinfo=SHANGHAI)
    assert times[0].utcoffset() is not None and times[0].isoformat().endswith("+08:00")
    assert result.events[-1].text.startswith("您的快件已签收，签收人：本人签收")
    assert result.extra["route_from"] == "广东,广州市"
    assert result.extra["state"] == "3" and result.extra["ischeck"] == "1"


def test_area_name_gives_canonical_province_city_and_district() -> None:
    """An areaName "广东,广州市,白云区" gives 广东省/广州市/白云区; a city alone, no district."""
    events = query(raw("query_resultv2_4_delivered.json")).events
    assert events[0].location == Location("中国", "广东省", "广州市", "白云区")
    assert events[1].location == Location("中国", "广东省", "广州市", None)
    assert events[-1].location == Location("中国", "浙江省", "杭州市", "西湖区")


def test_area_name_of_a_municipality_alone_is_its_own_city() -> None:
    """An areaName "上海市" alone gives province and city 上海市."""
    body = load("query_resultv2_4_in_transit.json")
    body["data"][0]["areaName"] = "上海市"
    assert query(body).events[-1].location == Location("中国", "上海市", "上海市", None)


def test_scan_without_area_name_is_located_from_its_text() -> None:
    """No areaName: the place comes from the text, before 下一站."""
    result = query(raw("query_resultv2_4_in_transit.json"))
    assert result.status is Status.IN_TRANSIT and not result.finished
    newest = result.events[-1]
    assert "areaName" not in load("query_resultv2_4_in_transit.json")["data"][0]
    assert newest.location == Location("中国", "广东省", "广州市", None)


def test_generic_difficult_state_takes_the_scan_sub_state() -> None:
    """A state 2 (疑难) with a 206 scan: delivery_failed / unreachable, raw code kept."""
    result = query(raw("query_resultv2_4_problem_unreachable.json"), courier="zto")
    assert result.status is Status.DELIVERY_FAILED
    assert result.problem is Problem.UNREACHABLE
    assert result.events[-1].raw_code == "2/206"
    assert result.events[-1].problem is Problem.UNREACHABLE
    assert not result.finished and result.courier_corrected is None


def test_gbk_encoded_body_is_decoded() -> None:
    """A GBK body (not valid UTF-8) parses with its Chinese text intact."""
    body = raw("query_resultv2_4_gbk_encoded.json")
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    result = query(body, courier="sto")
    assert result.ok
    assert result.status is Status.READY_FOR_PICKUP  # state 5 refined by the 501 scan
    assert result.events[-1].text.startswith("您的快件已存放至【菜鸟驿站")
    assert result.events[-1].location.city == "杭州市"


def test_no_result_500_is_pending_not_an_error() -> None:
    """A returnCode 500 查询无结果 is an ok pending result with no scans."""
    result = query(raw("query_500_no_result.json"))
    assert result.ok and result.error is None
    assert result.status is Status.PENDING and result.events == ()
    assert result.extra == {"returnCode": "500", "message": "查询无结果，请隔段时间再查"}


@pytest.mark.parametrize(
    ("name", "kind", "retryable"),
    [
        ("query_503_sign_failed.json", ErrorKind.AUTH, False),
        ("query_601_key_expired.json", ErrorKind.AUTH, False),
        ("query_400_company_not_found.json", ErrorKind.PROVIDER, False),
        ("query_502_server_busy.json", ErrorKind.RATE_LIMITED, True),
        ("query_408_phone_required.json", ErrorKind.INVALID_NUMBER, False),
    ],
)
def test_failed_queries_are_errors_as_data(name: str, kind: ErrorKind, retryable: bool) -> None:
    """Each documented returnCode becomes a TrackingError of the right kind, with the raw body."""
    result = query(raw(name))
    assert not result.ok and result.error is not None
    assert result.error.kind is kind and result.error.retryable is retryable
    assert load(name)["returnCode"] in result.error.message
    assert load(name)["message"] in result.error.raw_excerpt
    assert result.events == ()


def test_messages_refine_the_return_code() -> None:
    """601 about 单量 is quota; a 频繁 message is rate limiting; an unknown 5xx is retryable."""
    quota = query({"result": False, "returnCode": "601", "message": "没有可用单量，请充值"})
    assert quota.error is not None and quota.error.kind is ErrorKind.QUOTA_EXCEEDED
    frequent = query({"result": False, "returnCode": "400", "message": "查询过于频繁"})
    assert frequent.error is not None and frequent.error.kind is ErrorKind.RATE_LIMITED
    unknown = query({"result": False, "returnCode": "599", "message": "?"})
    assert unknown.error is not None
    assert unknown.error.kind is ErrorKind.PROVIDER and unknown.error.retryable


def test_html_error_page_is_a_bad_response_with_excerpt() -> None:
    """An HTML gateway page becomes bad_response (retryable) with the page's start kept."""
    result = query(NGINX_502, http_status=502)
    assert result.error is not None
    assert result.error.kind is ErrorKind.BAD_RESPONSE and result.error.retryable
    assert "502 Bad Gateway" in result.error.raw_excerpt
    plain = query(NGINX_502)
    assert plain.error is not None and "HTML" in plain.error.message


def test_truncated_json_is_a_bad_response_never_an_exception() -> None:
    """A body cut mid-way becomes bad_response with an excerpt, not an exception."""
    body = raw("query_resultv2_4_delivered.json")[:700]
    result = query(body)
    assert result.error is not None and result.error.kind is ErrorKind.BAD_RESPONSE
    assert result.error.raw_excerpt.startswith("{")
    assert len(result.error.raw_excerpt) <= 300


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        (b"", None, ErrorKind.BAD_RESPONSE),
        (b"[1, 2]", None, ErrorKind.BAD_RESPONSE),
        (b'{"hello": "world"}', None, ErrorKind.BAD_RESPONSE),
        (b"Too Many Requests", 429, ErrorKind.RATE_LIMITED),
        (b"<html>forbidden</html>", 403, ErrorKind.AUTH),
    ],
)
def test_odd_bodies_and_http_statuses_are_errors(
    body: bytes, status: int | None, kind: ErrorKind
) -> None:
    """Empty, non-object, unknown-shape bodies and 429/403 pages become errors of the right kind."""
    result = query(body, http_status=status)
    assert result.error is not None and result.error.kind is kind


def test_company_in_answer_differing_from_request_is_a_correction() -> None:
    """An answer for another com than requested reports the canonical corrected courier."""
    result = query(raw("query_resultv2_4_problem_unreachable.json"), courier="yto")
    assert result.courier == "yto" and result.courier_corrected == "zto"


def test_assessment_state_keeps_the_latest_scan_status() -> None:
    """A state 202 超时未更新 keeps the newest scan's status and adds no_progress."""
    body = load("query_resultv2_4_in_transit.json")
    body["state"] = "202"
    result = query(body)
    assert result.status is Status.IN_TRANSIT and result.problem is Problem.NO_PROGRESS


def test_default_state_0_without_scans_is_pending() -> None:
    """A state 0 is the default: with no scans the parcel is pending, not in transit."""
    body = load("query_resultv2_4_in_transit.json")
    body["data"] = []
    result = query(body)
    assert result.ok and result.status is Status.PENDING and result.events == ()


def test_ascending_order_gives_the_same_events() -> None:
    """order=asc answers give the same oldest-first events."""
    body = load("query_resultv2_4_delivered.json")
    asc = copy.deepcopy(body)
    asc["data"].reverse()
    assert query(asc).events == query(body).events


def test_unreadable_scan_time_is_dropped_and_counted() -> None:
    """A scan whose time cannot be read is left out and counted in extra."""
    body = load("query_resultv2_4_delivered.json")
    body["data"][2]["time"] = body["data"][2]["ftime"] = "yesterday"
    result = query(body)
    assert len(result.events) == 5 and result.extra["dropped_events"] == "1"


def test_scan_with_only_a_state_name_maps_through_the_name() -> None:
    """resultv2=1 scans carry only the name in status: it maps, and is kept as the raw code."""
    body = load("query_resultv2_4_in_transit.json")
    for item in body["data"]:
        item.pop("statusCode")
    body["data"][0]["status"] = "在途"
    result = query(body)
    assert [e.raw_code for e in result.events] == ["已揽收", "干线", "在途"]
    assert result.events[0].status is Status.PICKED_UP


# --- push callbacks ------------------------------------------------------------------


def callback(name: str) -> Any:
    """parse_callback on a fixture's param text."""
    return parse_callback((FIXTURES / name).read_text(encoding="utf-8"), source=SOURCE)


def test_signed_polling_push_verifies_and_parses() -> None:
    """A polling push: the sign verifies, the result is in transit and not finished."""
    param = (FIXTURES / "callback_polling.json").read_text(encoding="utf-8")
    sign = hashlib.md5((param + "salt").encode()).hexdigest().upper()
    assert verify_callback_sign(param, "salt", sign)
    result = parse_callback(param, source=SOURCE)
    assert (result.courier, result.tracking_number) == ("yto", "YT7000000002")
    assert result.status is Status.IN_TRANSIT and not result.finished
    assert len(result.events) == 3 and result.extra["push_status"] == "polling"


def test_shutdown_push_is_finished_delivered() -> None:
    """A shutdown push with state 3 is delivered and finished."""
    result = callback("callback_shutdown_delivered.json")
    assert result.status is Status.DELIVERED and result.finished
    assert result.events[-1].raw_code == "3/301"


def test_abort_after_3_days_without_record_is_pending_no_progress() -> None:
    """An abort for 3天查询无记录 is finished, pending with no scans, problem no_progress."""
    result = callback("callback_abort_3_days_no_record.json")
    assert result.ok and result.finished
    assert result.status is Status.PENDING and result.events == ()
    assert result.problem is Problem.NO_PROGRESS
    assert result.extra["push_message"] == "3天查询无记录"


def test_abort_after_60_days_without_change_is_lost() -> None:
    """An abort for 60天无变化 is finished, keeps its last status and adds problem lost."""
    result = callback("callback_abort_60_days_no_change.json")
    assert result.finished and result.problem is Problem.LOST
    assert result.status is Status.IN_TRANSIT and len(result.events) == 2


def test_abort_with_com_new_reports_the_correction_and_goes_on() -> None:
    """An abort with comNew: courier corrected to zto, not finished (Kuaidi100 re-subscribed)."""
    result = callback("callback_abort_com_new.json")
    assert result.courier == "yto" and result.courier_corrected == "zto"
    assert not result.finished and result.status is Status.PENDING


def test_autocheck_push_names_the_original_and_corrected_courier() -> None:
    """With autoCheck 1, comOld yuantong, comNew zhongtong: courier yto, corrected zto."""
    result = callback("callback_autocheck_corrected.json")
    assert result.courier == "yto" and result.courier_corrected == "zto"
    assert result.extra["comOld"] == "yuantong" and result.extra["autoCheck"] == "1"
    assert result.status is Status.IN_TRANSIT and len(result.events) == 2


def test_push_with_unknown_company_keeps_the_raw_code() -> None:
    """A push for a com with no canonical code keeps that com as the courier."""
    data = load("callback_polling.json")
    data["lastResult"]["com"] = "huitongkuaidi"
    result = parse_callback(json.dumps(data, ensure_ascii=False), source=SOURCE)
    assert result.courier == "huitongkuaidi" and result.courier_corrected is None


@pytest.mark.parametrize("param", ["", "{not json", "[]", '{"status": "polling"'])
def test_broken_push_is_a_bad_response(param: str) -> None:
    """A push param that is not a JSON object becomes bad_response, never an exception."""
    result = parse_callback(param, source=SOURCE)
    assert result.error is not None and result.error.kind is ErrorKind.BAD_RESPONSE
