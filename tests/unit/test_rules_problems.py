"""Unit tests for the event-based rules, multi-parcel orders and resolution reasons."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from carriers.model import Problem, Status, TrackingEvent
from tests.unit.rules_builders import (
    GUANGZHOU,
    LHASA,
    PAID,
    SHENZHEN,
    hours,
    order,
    parcel,
    picked_up,
    scan,
)
from tracker.domain import playbook as pb
from tracker.domain.model import ExceptionKind, Severity
from tracker.domain.playbook import Resolution
from tracker.domain.policy import Policy
from tracker.domain.rules import (
    detect,
    detect_carrier_exception,
    detect_delivery_failed,
    detect_returned,
    detect_stalled,
    detect_weight_mismatch,
    detect_wrong_region,
    resolution_reason,
)

K = ExceptionKind
POLICY = Policy()
NOW = PAID + hours(60)
FAR = PAID + timedelta(days=60)
PICKUP = picked_up(PAID + hours(22))


def in_zhejiang(
    offset: float, city: str = "杭州市", status: Status = Status.IN_TRANSIT
) -> TrackingEvent:
    """A scan in Zhejiang ``offset`` hours after payment."""
    return scan(PAID + hours(offset), status, province="浙江省", city=city)


# --- wrong_region ------------------------------------------------------------------


def test_scan_outside_the_destination_province_after_one_inside_fires() -> None:
    """Inside Zhejiang, then Nanjing: wrong_region (medium, agents only)."""
    nanjing = scan(PAID + hours(40), province="江苏省", city="南京市")
    astray = order(parcel(PICKUP, in_zhejiang(30), nanjing), deliver_by=FAR)
    found = detect_wrong_region(astray, POLICY, NOW)
    assert found is not None
    assert found.severity is Severity.MEDIUM
    assert found.notify_buyer is False
    assert found.evidence["trigger"] == "left_destination_province"
    assert found.evidence["outside_scan"]["place"] == "江苏省南京市"


def test_coming_back_inside_clears_the_detour() -> None:
    """Back in Zhejiang after the detour: no wrong_region."""
    nanjing = scan(PAID + hours(40), province="江苏省", city="南京市")
    rerouted = order(parcel(PICKUP, in_zhejiang(30), nanjing, in_zhejiang(50)), deliver_by=FAR)
    assert detect_wrong_region(rerouted, POLICY, NOW) is None


def test_passing_other_provinces_before_arriving_is_normal() -> None:
    """Guangzhou -> Jiangxi -> Hangzhou never left the destination after entering it."""
    jiangxi = scan(PAID + hours(26), province="江西省", city="南昌市")
    normal = order(parcel(PICKUP, jiangxi, in_zhejiang(30)), deliver_by=FAR)
    assert detect_wrong_region(normal, POLICY, NOW) is None


def test_same_province_lane_may_route_through_a_neighbour_before_the_city() -> None:
    """Guangzhou -> Hunan hub -> Shenzhen is fine; Shenzhen -> Hunan is not."""
    hunan = scan(PAID + hours(26), province="湖南省", city="长沙市")
    shenzhen = scan(PAID + hours(30), province="广东省", city="深圳市")
    fine = order(parcel(PICKUP, hunan, shenzhen), destination=SHENZHEN, deliver_by=FAR)
    assert detect_wrong_region(fine, POLICY, NOW) is None
    hunan_after = scan(PAID + hours(40), province="湖南省", city="长沙市")
    astray = order(parcel(PICKUP, shenzhen, hunan_after), destination=SHENZHEN, deliver_by=FAR)
    assert detect_wrong_region(astray, POLICY, NOW) is not None


def test_out_for_delivery_in_another_city_fires() -> None:
    """Out for delivery in Ningbo for a Hangzhou address: wrong_region."""
    ningbo = in_zhejiang(40, city="宁波市", status=Status.OUT_FOR_DELIVERY)
    astray = order(parcel(PICKUP, ningbo), deliver_by=FAR)
    found = detect_wrong_region(astray, POLICY, NOW)
    assert found is not None
    assert found.evidence["trigger"] == "delivery_scan_in_other_city"
    assert found.severity is Severity.MEDIUM


def test_delivered_in_another_city_is_high() -> None:
    """Signed for in Ningbo: high, even though the parcel is delivered."""
    ningbo = in_zhejiang(40, city="宁波市", status=Status.DELIVERED)
    found = detect_wrong_region(order(parcel(PICKUP, ningbo)), POLICY, NOW)
    assert found is not None and found.severity is Severity.HIGH


def test_county_level_city_counts_as_its_prefecture() -> None:
    """Delivered in 建德市 (under 杭州) for a Hangzhou address is the right city."""
    jiande = in_zhejiang(40, city="建德市", status=Status.DELIVERED)
    assert detect_wrong_region(order(parcel(PICKUP, jiande)), POLICY, NOW) is None


@pytest.mark.parametrize("problem", [Problem.MIS_SORTED, Problem.OUT_OF_AREA])
def test_mis_sort_and_out_of_area_codes_fire_until_delivered(problem: Problem) -> None:
    """A provider mis-sort/out-of-area code fires; a later delivery in the city clears it."""
    flagged = scan(PAID + hours(30), Status.EXCEPTION, problem=problem)
    open_case = order(parcel(PICKUP, flagged), deliver_by=FAR)
    found = detect_wrong_region(open_case, POLICY, NOW)
    assert found is not None and found.evidence["trigger"] == problem.value
    assert detect_carrier_exception(open_case, POLICY, NOW) is None
    done = in_zhejiang(50, status=Status.DELIVERED)
    assert detect_wrong_region(order(parcel(PICKUP, flagged, done)), POLICY, NOW) is None


def test_destination_the_courier_does_not_serve_fires() -> None:
    """Deppon to Lhasa, where it does not deliver: wrong_region with the 'not served' wording."""
    policy = Policy(coverage={"deppon": frozenset({"西藏自治区"})})
    to_tibet = order(parcel(courier="deppon"), destination=LHASA, deliver_by=FAR)
    found = detect_wrong_region(to_tibet, policy, PAID + hours(21))
    assert found is not None
    assert found.evidence["uncovered_area"] == "西藏自治区"
    assert found.suggested_action == pb.ACTION_NOT_COVERED
    assert found.reason == pb.REASON_NOT_COVERED
    by_sf = order(parcel(courier="sf"), destination=LHASA)
    assert detect_wrong_region(by_sf, policy, PAID + hours(21)) is None


# --- weight_mismatch ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("ordered", "weighed", "fires"),
    [
        (2.0, 1.70, False),  # 0.3 kg short: exactly the 0.3 kg floor
        (2.0, 1.69, True),
        (4.0, 3.41, False),  # 15 % of 4 kg is 0.6 kg
        (4.0, 3.39, True),
        (2.0, 2.50, False),  # heavier is never a mismatch
    ],
)
def test_weight_mismatch_threshold(ordered: float, weighed: float, fires: bool) -> None:
    """Fires when short by more than max(0.3 kg, 15 %), not at the limit."""
    shipment = order(parcel(PICKUP, weight_kg=weighed), items_weight_kg=ordered)
    found = detect_weight_mismatch(shipment, POLICY, NOW)
    assert (found is not None) is fires
    if found is not None:
        assert found.notify_buyer is False
        assert found.severity is Severity.MEDIUM
        assert found.tracking_number == "YT0001"


def test_weight_mismatch_sums_split_parcels_and_needs_every_weight() -> None:
    """Two parcels of 1.0 kg cover a 2.0 kg order; an unknown weight decides nothing."""
    both = order(
        parcel(PICKUP, weight_kg=1.0),
        parcel(PICKUP, number="YT0002", weight_kg=1.0),
        items_weight_kg=2.0,
    )
    assert detect_weight_mismatch(both, POLICY, NOW) is None
    unknown = order(
        parcel(PICKUP, weight_kg=0.2), parcel(PICKUP, number="YT0002"), items_weight_kg=2.0
    )
    assert detect_weight_mismatch(unknown, POLICY, NOW) is None


# --- delivery_failed and returned ---------------------------------------------------


def test_failed_attempt_fires_and_a_second_one_is_high() -> None:
    """One failed attempt is medium; two are high."""
    first = in_zhejiang(40, status=Status.DELIVERY_FAILED)
    once = order(parcel(PICKUP, first), deliver_by=FAR)
    found = detect_delivery_failed(once, POLICY, NOW)
    assert found is not None and found.severity is Severity.MEDIUM
    assert found.next_step == pb.NEXT_DELIVERY_FAILED
    second = in_zhejiang(50, status=Status.DELIVERY_FAILED)
    twice = detect_delivery_failed(order(parcel(PICKUP, first, second)), POLICY, NOW)
    assert twice is not None and twice.severity is Severity.HIGH


def test_address_problem_fires_until_delivered() -> None:
    """A bad-address report fires with the address wording; a delivery clears it."""
    bad = scan(PAID + hours(40), Status.OUT_FOR_DELIVERY, problem=Problem.ADDRESS_PROBLEM)
    found = detect_delivery_failed(order(parcel(PICKUP, bad), deliver_by=FAR), POLICY, NOW)
    assert found is not None and found.reason == pb.REASON_ADDRESS_PROBLEM
    done = in_zhejiang(50, status=Status.DELIVERED)
    assert detect_delivery_failed(order(parcel(PICKUP, bad, done)), POLICY, NOW) is None


def test_refused_parcel_is_returned_not_delivery_failed() -> None:
    """A refusal after a failed attempt gives one returned ticket only."""
    failed = in_zhejiang(40, status=Status.DELIVERY_FAILED)
    refused = scan(PAID + hours(45), Status.DELIVERY_FAILED, problem=Problem.REFUSED)
    back = order(parcel(PICKUP, failed, refused), deliver_by=FAR)
    found = detect(back, POLICY, NOW)
    assert [d.kind for d in found] == [K.RETURNED]
    assert found[0].reason == pb.REASON_REFUSED
    assert found[0].severity is Severity.HIGH


@pytest.mark.parametrize(
    ("status", "reason"),
    [(Status.RETURNING, pb.REASON_RETURNING), (Status.RETURNED, pb.REASON_RETURNED)],
)
def test_returning_and_returned_fire_returned(status: Status, reason: str) -> None:
    """Status returning/returned is a returned ticket with the matching wording."""
    back = order(parcel(PICKUP, in_zhejiang(40, status=status)))
    found = detect_returned(back, POLICY, NOW)
    assert found is not None and found.reason == reason and found.notify_buyer


def test_redelivered_parcel_is_no_longer_returned() -> None:
    """A refused parcel later delivered clears returned."""
    refused = scan(PAID + hours(40), Status.DELIVERY_FAILED, problem=Problem.REFUSED)
    done = in_zhejiang(50, status=Status.DELIVERED)
    assert detect_returned(order(parcel(PICKUP, refused, done)), POLICY, NOW) is None


# --- carrier_exception ---------------------------------------------------------------


def test_held_parcel_is_a_carrier_exception_for_agents() -> None:
    """On hold with a HELD code: carrier_exception, medium, no buyer notice."""
    held = scan(PAID + hours(40), Status.ON_HOLD, problem=Problem.HELD, text="管控暂停派送")
    found = detect_carrier_exception(order(parcel(PICKUP, held), deliver_by=FAR), POLICY, NOW)
    assert found is not None
    assert found.severity is Severity.MEDIUM
    assert found.notify_buyer is False
    assert found.evidence["problem"] == "held"


def test_damage_fires_high_even_after_delivery() -> None:
    """A damage report stays a carrier_exception (compensation) after delivery."""
    broken = scan(PAID + hours(40), Status.IN_TRANSIT, problem=Problem.DAMAGED)
    done = in_zhejiang(50, status=Status.DELIVERED)
    found = detect_carrier_exception(order(parcel(PICKUP, broken, done)), POLICY, NOW)
    assert found is not None
    assert found.severity is Severity.HIGH
    assert found.suggested_action == pb.ACTION_DAMAGED


def test_past_delay_code_does_not_fire_once_moving_again() -> None:
    """A DELAYED code on an older scan is history when newer scans are normal."""
    delayed = scan(PAID + hours(30), problem=Problem.DELAYED)
    moving = order(parcel(PICKUP, delayed, in_zhejiang(50)), deliver_by=FAR)
    assert detect_carrier_exception(moving, POLICY, NOW) is None


def test_overdue_takes_over_an_on_hold_parcel() -> None:
    """A parcel on hold past its deadline is one overdue ticket, not also a carrier one."""
    held = scan(PAID + hours(40), Status.ON_HOLD, problem=Problem.HELD)
    late = order(parcel(PICKUP, held), deliver_by=PAID + hours(50))
    assert [d.kind for d in detect(late, POLICY, NOW)] == [K.OVERDUE]


# --- several parcels, the whole order ------------------------------------------------


def test_one_detection_per_kind_picks_the_oldest_and_lists_the_others() -> None:
    """Two stalled parcels: one stalled ticket about the older, the other in evidence."""
    older = parcel(PICKUP, in_zhejiang(30), number="YT0001")
    newer = parcel(PICKUP, in_zhejiang(34), number="YT0002")
    both = order(newer, older, deliver_by=FAR)
    found = detect(both, POLICY, PAID + hours(34 + 49))
    assert [d.kind for d in found] == [K.STALLED]
    assert found[0].tracking_number == "YT0001"
    assert found[0].evidence["other_shipments"][0]["tracking_number"] == "YT0002"


def test_most_severe_parcel_wins_over_the_oldest() -> None:
    """A newer parcel with two failed attempts (high) beats an older one with one (medium)."""
    once = parcel(PICKUP, in_zhejiang(40, status=Status.DELIVERY_FAILED), number="YT0001")
    twice = parcel(
        PICKUP,
        in_zhejiang(45, status=Status.DELIVERY_FAILED),
        in_zhejiang(50, status=Status.DELIVERY_FAILED),
        number="YT0002",
    )
    found = detect_delivery_failed(order(once, twice, deliver_by=FAR), POLICY, NOW)
    assert found is not None
    assert found.tracking_number == "YT0002"
    assert found.severity is Severity.HIGH
    assert found.evidence["other_shipments"][0]["severity"] == "medium"


def test_delivered_parcel_does_not_hide_its_stalled_sibling() -> None:
    """One parcel delivered, the other stalled: the stalled one is reported."""
    done = parcel(PICKUP, in_zhejiang(40, status=Status.DELIVERED), number="YT0001")
    stuck = parcel(PICKUP, in_zhejiang(30), number="YT0002")
    found = detect_stalled(order(done, stuck, deliver_by=FAR), POLICY, PAID + hours(80))
    assert found is not None and found.tracking_number == "YT0002"


def test_every_detection_is_json_ready_and_fully_worded() -> None:
    """Evidence serialises to JSON; action, reason and next step are never empty."""
    broken = scan(PAID + hours(40), Status.ON_HOLD, problem=Problem.DAMAGED, city="南京市")
    messy = order(
        parcel(PICKUP, in_zhejiang(30), broken, weight_kg=0.5),
        parcel(number="YT0002", weight_kg=0.5),
        items_weight_kg=3.0,
        deliver_by=PAID + hours(50),
    )
    found = detect(messy, POLICY, NOW)
    assert {d.kind for d in found} >= {K.NOT_SHIPPED, K.WEIGHT_MISMATCH, K.CARRIER_EXCEPTION}
    for detection in found:
        json.dumps(detection.evidence, ensure_ascii=False)
        assert detection.suggested_action and detection.reason and detection.next_step
        assert detection.notify_buyer is pb.NOTIFY_BUYER[detection.kind]


def test_detect_is_fast_enough_for_thousands_of_orders() -> None:
    """A thousand busy orders evaluate well under a second."""
    events = [PICKUP, *(in_zhejiang(30 + i) for i in range(20))]
    busy = order(parcel(*events), parcel(*events, number="YT0002"), items_weight_kg=1.0)
    started = time.perf_counter()
    for _ in range(1000):
        detect(busy, POLICY, NOW)
    assert time.perf_counter() - started < 1.0


# --- resolution reasons ---------------------------------------------------------------


def test_resolution_reasons_say_why_a_ticket_closed() -> None:
    """Delivered, moving again, picked up, or taken over by a more specific kind."""
    delivered = order(parcel(PICKUP, in_zhejiang(50, status=Status.DELIVERED)))
    assert resolution_reason(K.OVERDUE, delivered, POLICY, NOW) == Resolution.DELIVERED
    moving = order(parcel(PICKUP, in_zhejiang(55)), deliver_by=FAR)
    assert resolution_reason(K.STALLED, moving, POLICY, NOW) == Resolution.MOVING_AGAIN
    shipped = order(parcel(PICKUP))
    assert resolution_reason(K.NOT_SHIPPED, shipped, POLICY, NOW) == "已发货并揽收"
    silent = order(parcel(PICKUP, in_zhejiang(30)), deliver_by=FAR)
    later = PAID + hours(30) + timedelta(days=8)
    assert resolution_reason(K.STALLED, silent, POLICY, later) == "已转为疑似丢件处理"
    refused = scan(PAID + hours(45), Status.DELIVERY_FAILED, problem=Problem.REFUSED)
    back = order(parcel(PICKUP, refused), deliver_by=FAR)
    assert resolution_reason(K.DELIVERY_FAILED, back, POLICY, NOW) == "已转为拒收或退回处理"
    right_city = order(parcel(PICKUP, in_zhejiang(50, status=Status.DELIVERED)))
    assert resolution_reason(K.WRONG_REGION, right_city, POLICY, NOW) == "已在收货城市签收"


def test_resolution_reason_admits_a_kind_that_still_fires() -> None:
    """Asked about a kind that still fires, the phrase says it still applies."""
    assert resolution_reason(K.NOT_SHIPPED, order(), POLICY, NOW) == Resolution.STILL_APPLIES


def test_origin_defaults_do_not_leak_between_orders() -> None:
    """The same policy object serves orders on different lanes correctly (cache is per lane)."""
    near = order(parcel(PICKUP, shipped_at=PAID + hours(20)), destination=GUANGZHOU)
    far = order(parcel(PICKUP, shipped_at=PAID + hours(20)), destination=LHASA)
    now = PAID + hours(20 + 30)
    assert detect(near, POLICY, now)[0].kind is K.OVERDUE
    assert all(d.kind is not K.OVERDUE for d in detect(far, POLICY, now))
