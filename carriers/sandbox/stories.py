"""The sandbox's stories: what happens to a parcel in each scenario, as courier scans.

:func:`tell` writes a scenario's whole story as steps: hours after the previous step
(plus the 0-25 minutes :func:`carriers.sandbox.parse.timeline` adds), the raw code and
a courier-style Chinese text (【杭州市】快件已到达【杭州转运中心】, 派件员 and masked phone,
驿站 pick-up codes ...). Each scenario also says where "now" sits in its story when the
query has no anchor time (``Story.now_after`` + ``Story.tail_h``): a stalled parcel has
been silent for 80 h, an ``in_transit`` one has just reached its last hub, and so on.

Lanes follow the query's origin/destination hints (default 广东省广州市 -> 浙江省杭州市)
through the hubs of :mod:`carriers.sandbox.routes`. Everything is a pure function of
the scenario, the tracking number and the query.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from carriers import geo
from carriers.model import TrackingQuery
from carriers.registry import COURIERS
from carriers.sandbox import routes
from carriers.sandbox.scenarios import stable_int

__all__ = ["Step", "Story", "default_weight", "tell"]

_HUB_SUFFIX = {
    "sf": "集散中心",
    "yunda": "分拨中心",
    "jd": "分拣中心",
    "ems": "邮件处理中心",
    "chinapost": "邮件处理中心",
    "deppon": "枢纽中心",
}
_SITE_SUFFIX = {"sf": "营业点", "jd": "配送站", "ems": "揽投部", "chinapost": "揽投部"}
_SHORT_WEIGHT_KG = 0.4


@dataclass(frozen=True, slots=True)
class Step:
    """One scan of a story: hours after the previous scan, raw code, text."""

    gap_h: float
    code: str
    text: str
    daytime: bool = False  # a delivery-round scan: kept within working hours


@dataclass(frozen=True, slots=True)
class Story:
    """A scenario's scans, where "now" sits when no anchor is given, and the weight."""

    steps: tuple[Step, ...]
    now_after: int  # index of the step "now" follows without an anchor; -1 before all
    tail_h: float  # hours from that step to "now"
    weight_kg: float | None


class _Teller:
    """Writes one parcel's story; holds its lane, labels and people."""

    def __init__(self, number: str, courier: str, query: TrackingQuery) -> None:
        self.number = number
        self.origin = routes.resolve_endpoint(query.origin, routes.DEFAULT_ORIGIN, number + "o")
        self.dest = routes.resolve_endpoint(
            query.destination, routes.DEFAULT_DESTINATION, number + "d"
        )
        self.route = routes.plan_route(self.origin, self.dest)
        self.local = len(self.route) == 1  # same city: short hops, delivered the same day
        self.brand = COURIERS.get(courier, "我司快递服务")
        self.hub_suffix = _HUB_SUFFIX.get(courier, "转运中心")
        site_suffix = _SITE_SUFFIX.get(courier, "营业部")
        self.o_site = self._site(self.origin, routes.street(number + "o"), site_suffix)
        self.d_site = self._site(self.dest, routes.street(number + "d"), site_suffix)
        self.picker = routes.person(number + "picker")
        self.picker_phone = routes.masked_phone(number + "picker")
        self.deliverer = routes.person(number + "courier")
        self.phone = routes.masked_phone(number + "courier")
        self.steps: list[Step] = []

    @staticmethod
    def _site(end: routes.Endpoint, street: str, suffix: str) -> str:
        """A station label such as 杭州西湖区文三路营业部."""
        return f"{end.short}{end.district or ''}{street}{suffix}"

    def hub(self, place: str) -> str:
        """A hub label such as 杭州转运中心."""
        return f"{geo.short_name(place)}{self.hub_suffix}"

    def add(self, gap_h: float, code: str, text: str, *, daytime: bool = False) -> int:
        """Append a step; return its index."""
        self.steps.append(Step(gap_h, code, text, daytime))
        return len(self.steps) - 1

    # --- the common segments of a journey ---------------------------------------------

    def pickup(self) -> None:
        """揽收 at the origin station, then off to the first hub."""
        o = self.origin.place
        self.add(
            1.5,
            "ACCEPT",
            f"【{o}】【{self.o_site}】的揽件员【{self.picker}】已揽收，电话：{self.picker_phone}",
            daytime=True,
        )
        gap = 1.5 if self.local else 3.0
        self.add(gap, "DEPART", f"【{o}】快件离开【{self.o_site}】，已发往【{self.hub(o)}】")

    def trunk(
        self,
        hubs: list[str],
        *,
        then: str,
        first_gap: float = 1.5,
        leg_h: float | None = None,
        dwell_h: float = 2.0,
    ) -> int:
        """Arrive at and leave each hub in turn; return the index of the last arrival.

        ``leg_h`` replaces every leg's duration (a long lane); such legs are broken up by
        运输中 notes at most 20 h apart. ``dwell_h`` is how long each hub holds the parcel.
        """
        last = -1
        for i, place in enumerate(hubs):
            gap = first_gap if i == 0 else leg_h or routes.leg_hours(hubs[i - 1], place)
            if i and leg_h is not None:
                notes = int(gap // 20)
                for _ in range(notes):
                    self.add(
                        gap / (notes + 1),
                        "TRANSIT",
                        f"【{hubs[i - 1]}】快件运输中，正在发往【{self.hub(place)}】",
                    )
                gap /= notes + 1
            last = self.add(gap, "ARRIVE", f"【{place}】快件已到达【{self.hub(place)}】")
            nxt = self.hub(hubs[i + 1]) if i + 1 < len(hubs) else then
            self.add(
                dwell_h, "DEPART", f"【{place}】快件离开【{self.hub(place)}】，已发往【{nxt}】"
            )
        return last

    def to_site(self, *, dwell_h: float | None = None) -> int:
        """Arrival at the destination station."""
        gap = dwell_h if dwell_h is not None else 1.5 if self.local else 4.0
        d = self.dest.place
        return self.add(gap, "ARRIVE_SITE", f"【{d}】快件已到达【{self.d_site}】")

    def out_for_delivery(self, gap_h: float = 1.0) -> int:
        """The courier sets out with the parcel."""
        return self.add(
            gap_h,
            "OUT_DELIVERY",
            f"【{self.dest.place}】【{self.d_site}】的派件员【{self.deliverer}】正在派件，"
            f"电话：{self.phone}，请保持电话畅通",
            daytime=True,
        )

    def signed(self) -> int:
        """Delivered to the buyer."""
        return self.add(
            2.0,
            "SIGNED",
            f"【{self.dest.place}】快件已在【{self.d_site}】签收，签收人：本人，"
            f"如有疑问请联系派件员【{self.deliverer}】，电话：{self.phone}。"
            f"感谢使用{self.brand}，期待再次为您服务",
            daytime=True,
        )

    def journey(self) -> dict[str, int]:
        """The whole healthy journey; indexes of its landmark steps."""
        self.pickup()
        last_hub = self.trunk(self.route, then=self.d_site)
        site = self.to_site()
        out = self.out_for_delivery()
        return {"last_hub": last_hub, "site": site, "out": out, "signed": self.signed()}


# --- scenarios: each writes its steps and says where "now" sits (step index, tail hours) --


def _delivered(t: _Teller) -> tuple[int, float]:
    return t.journey()["signed"], 2.0


def _in_transit(t: _Teller) -> tuple[int, float]:
    # a long but healthy lane: the trunk takes 40 % of the lane's allowance less 12 h (room
    # for a night at the station), with 运输中 notes on the way: in transit for days, on time
    t.pickup()
    legs = max(len(t.route) - 1, 1)
    leg_h = max(0.4 * routes.lane_allowance_hours(t.origin, t.dest) - 12, 6.0) / legs
    last = t.trunk(t.route, then=t.d_site, leg_h=leg_h)
    t.to_site()
    t.out_for_delivery()
    t.signed()
    return last, 2.0


def _out_for_delivery(t: _Teller) -> tuple[int, float]:
    return t.journey()["out"], 1.0


def _stalled(t: _Teller) -> tuple[int, float]:
    t.pickup()
    then = t.hub(t.route[1]) if len(t.route) > 1 else t.d_site
    t.trunk(t.route[:1], then=then)
    return len(t.steps) - 1, 80.0


def _stalled_at_station(t: _Teller) -> tuple[int, float]:
    t.pickup()
    t.trunk(t.route, then=t.d_site)
    t.to_site()
    end = t.dest
    n = stable_int("pickup-code", t.number)
    code = f"{n % 9 + 1}-{n // 9 % 6 + 1}-{n // 54 % 9000 + 1000}"
    station = f"{end.short}{end.district or ''}{routes.street(t.number + 'd')}菜鸟驿站"
    idx = t.add(
        1.5,
        "STATION_IN",
        f"【{end.place}】您的快件已到达【{station}】，请凭取件码【{code}】及时取件，"
        f"驿站电话：{routes.masked_phone(t.number + 'station')}",
        daytime=True,
    )
    return idx, 60.0


def _lost(t: _Teller) -> tuple[int, float]:
    t.pickup()
    place = t.route[1] if len(t.route) > 1 else t.route[0]
    then = t.hub(t.route[2]) if len(t.route) > 2 else t.d_site
    t.trunk(t.route[:2], then=then)
    # the provider reports the loss after 30 h of searching: before a 48 h "stalled"
    idx = t.add(
        30.0,
        "LOST",
        f"【{place}】快件在【{t.hub(place)}】遗失，我司已启动查找及理赔流程，给您带来不便深表歉意",
    )
    return idx, 6.0


def _mis_sorted(t: _Teller) -> tuple[int, float]:
    t.pickup()
    wrong = routes.wrong_province_hub(t.origin, t.dest, t.number)
    t.trunk(t.route, then=t.hub(wrong))
    idx = t.add(
        routes.leg_hours(t.route[-1], wrong),
        "MISSORT",
        f"【{wrong}】快件已到达【{t.hub(wrong)}】，经核实为错分件（分拣错误），"
        f"将重新发往【{t.hub(t.route[-1])}】",
    )
    t.add(  # a day to check the label and rebook the parcel
        24.0, "DEPART", f"【{wrong}】快件离开【{t.hub(wrong)}】，已重新发往【{t.hub(t.route[-1])}】"
    )
    t.trunk(t.route[-1:], then=t.d_site, first_gap=routes.leg_hours(wrong, t.route[-1]))
    t.to_site()
    t.out_for_delivery()
    t.signed()
    return idx, 4.0


def _out_of_area(t: _Teller) -> tuple[int, float]:
    t.pickup()
    t.trunk(t.route, then=t.d_site)
    t.to_site()
    idx = t.add(
        3.0,
        "OUT_OF_AREA",
        f"【{t.dest.place}】【{t.d_site}】反馈：收件地址超出派送范围（超区件），"
        "该地址暂不派送，请联系寄件方处理",
    )
    return idx, 12.0


def _returned(t: _Teller) -> tuple[int, float]:
    t.pickup()
    t.trunk(t.route, then=t.d_site)
    t.to_site()
    t.out_for_delivery()
    d, o = t.dest.place, t.origin.place
    t.add(
        2.5,
        "REFUSED",
        f"【{d}】快件派送不成功，收件人拒收（原因：不想要了），快件将退回寄件人",
        daytime=True,
    )
    back = t.route[::-1]
    t.add(
        8.0, "RETURN_TRANSIT", f"【{d}】退回件：快件离开【{t.d_site}】，已发往【{t.hub(back[0])}】"
    )
    for i, place in enumerate(back):
        gap = 4.0 if i == 0 else routes.leg_hours(back[i - 1], place)
        t.add(gap, "RETURN_TRANSIT", f"【{place}】退回件：快件已到达【{t.hub(place)}】")
        nxt = t.hub(back[i + 1]) if i + 1 < len(back) else t.o_site
        t.add(
            2.0, "RETURN_TRANSIT", f"【{place}】退回件：快件离开【{t.hub(place)}】，已发往【{nxt}】"
        )
    t.add(4.0, "RETURN_TRANSIT", f"【{o}】退回件：快件已到达【{t.o_site}】")
    idx = t.add(
        5.0,
        "RETURN_SIGNED",
        f"【{o}】退回件已签收，签收人：寄件人，如有疑问请联系【{t.o_site}】",
        daytime=True,
    )
    return idx, 2.0


def _unreachable(t: _Teller, second: bool) -> str:
    """The text of a failed attempt because nobody answered the phone."""
    then = (
        f"快件暂存【{t.d_site}】，请尽快联系派件员【{t.deliverer}】"
        if second
        else f"派件员【{t.deliverer}】将再次派送"
    )
    return f"【{t.dest.place}】快件派送不成功，原因：收件人电话无人接听，{then}，电话：{t.phone}"


def _delivery_failed(t: _Teller) -> tuple[int, float]:
    t.pickup()
    t.trunk(t.route, then=t.d_site)
    t.to_site()
    t.out_for_delivery()
    t.add(3.0, "FAIL_UNREACHABLE", _unreachable(t, second=False), daytime=True)
    t.out_for_delivery(gap_h=18.0)
    idx = t.add(3.0, "FAIL_UNREACHABLE", _unreachable(t, second=True), daytime=True)
    return idx, 6.0


def _address_problem(t: _Teller) -> tuple[int, float]:
    t.pickup()
    t.trunk(t.route, then=t.d_site)
    t.to_site()
    t.out_for_delivery()
    idx = t.add(
        2.5,
        "FAIL_ADDRESS",
        f"【{t.dest.place}】快件派送不成功，原因：收件地址不详，"
        f"请联系派件员【{t.deliverer}】确认地址，电话：{t.phone}",
        daytime=True,
    )
    return idx, 8.0


def _damaged(t: _Teller) -> tuple[int, float]:
    t.pickup()
    t.trunk(t.route, then=t.d_site)
    place = t.route[-1]
    idx = t.add(
        2.0,
        "DAMAGED",
        f"【{place}】快件在【{t.hub(place)}】发现外包装破损、内件疑似受损，"
        "已拍照留存，暂扣待寄件方处理",
    )
    return idx, 8.0


def _no_pickup(t: _Teller) -> tuple[int, float]:
    return -1, 72.0


def _slow(t: _Teller) -> tuple[int, float]:
    t.pickup()
    # the trunk alone takes 1.6 times the lane's whole allowance, spread over the legs
    legs = max(len(t.route) - 1, 1)
    leg_h = 1.6 * routes.lane_allowance_hours(t.origin, t.dest) / legs
    hubs = t.route if len(t.route) > 1 else [t.route[0], t.route[0]]
    last = t.trunk(hubs, then=t.d_site, leg_h=leg_h, dwell_h=12.0)
    t.to_site(dwell_h=10.0)
    t.out_for_delivery(gap_h=14.0)
    t.signed()
    return last, 2.0


_SCRIPTS: dict[str, Callable[[_Teller], tuple[int, float]]] = {
    "delivered": _delivered,
    "in_transit": _in_transit,
    "out_for_delivery": _out_for_delivery,
    "stalled": _stalled,
    "stalled_at_station": _stalled_at_station,
    "lost": _lost,
    "mis_sorted": _mis_sorted,
    "out_of_area": _out_of_area,
    "returned": _returned,
    "delivery_failed": _delivery_failed,
    "address_problem": _address_problem,
    "damaged": _damaged,
    "no_pickup": _no_pickup,
    "slow": _slow,
    "weight_short": _delivered,
}


def default_weight(number: str) -> float:
    """A plausible billed weight, 1.5 to 3.5 kg in 0.1 kg steps, stable per number."""
    return round(1.5 + stable_int("weight", number) % 21 / 10, 1)


def tell(scenario: str, number: str, query: TrackingQuery, weight_kg: float | None = None) -> Story:
    """The whole story of ``scenario`` for this parcel (``weight_kg`` overrides the weight)."""
    teller = _Teller(number, query.courier, query)
    now_after, tail_h = _SCRIPTS[scenario](teller)
    if weight_kg is None:
        weight_kg = _SHORT_WEIGHT_KG if scenario == "weight_short" else default_weight(number)
    return Story(tuple(teller.steps), now_after, tail_h, weight_kg)
