"""The sandbox's own scan codes and what each means in the common model.

The sandbox behaves like a courier whose scans carry a mnemonic state code; this table
maps every code to a common :class:`~carriers.model.Status` and, where the scan reports
a problem, a :class:`~carriers.model.Problem`. The code is kept on every event as its
``raw_code``.
"""

from __future__ import annotations

from carriers.model import Problem, Status

__all__ = ["CODES", "describe"]

#: raw code -> (common status, problem or None)
CODES: dict[str, tuple[Status, Problem | None]] = {
    "ACCEPT": (Status.PICKED_UP, None),  # 揽收
    "DEPART": (Status.IN_TRANSIT, None),  # 离开 / 发往
    "ARRIVE": (Status.IN_TRANSIT, None),  # 到达转运中心
    "TRANSIT": (Status.IN_TRANSIT, None),  # 运输中 (a trunk-line progress note)
    "ARRIVE_SITE": (Status.IN_TRANSIT, None),  # 到达派件网点
    "OUT_DELIVERY": (Status.OUT_FOR_DELIVERY, None),  # 派件中
    "STATION_IN": (Status.READY_FOR_PICKUP, None),  # 已存放驿站 / 快递柜
    "SIGNED": (Status.DELIVERED, None),  # 签收
    "MISSORT": (Status.IN_TRANSIT, Problem.MIS_SORTED),  # 错分 / 错发
    "OUT_OF_AREA": (Status.EXCEPTION, Problem.OUT_OF_AREA),  # 超区, 不派送
    "LOST": (Status.EXCEPTION, Problem.LOST),  # 遗失
    "DAMAGED": (Status.EXCEPTION, Problem.DAMAGED),  # 破损
    "FAIL_UNREACHABLE": (Status.DELIVERY_FAILED, Problem.UNREACHABLE),  # 电话无人接听
    "FAIL_ADDRESS": (Status.DELIVERY_FAILED, Problem.ADDRESS_PROBLEM),  # 地址不详
    "REFUSED": (Status.RETURNING, Problem.REFUSED),  # 拒收, 退回
    "RETURN_TRANSIT": (Status.RETURNING, None),  # 退回件在途
    "RETURN_SIGNED": (Status.RETURNED, None),  # 退回件寄件人签收
}


def describe(raw_code: str) -> tuple[Status, Problem | None]:
    """The common status and problem of a raw code; an unknown code is ``UNKNOWN``."""
    return CODES.get(raw_code, (Status.UNKNOWN, None))
