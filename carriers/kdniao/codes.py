"""Kdniao (快递鸟) raw code tables: State, StateEx / Action, failure reasons, shipper codes.

Sources (read 2026-11-26, see ``tests/fixtures/SOURCES.md``): 即时查询 API
https://apifox.com/apidoc/docs-site/2538027/api-72933643 (mirror of
https://www.kdniao.com/api-track), the 技术文档 posted by 快递鸟 at
https://blog.csdn.net/KuaiDNiao/article/details/122703337, and the published 增值物流状态
table (StateEx / Action, incl. 204-206, 413-423, 5, 6xx, 10).

``State`` is the basic state (0 暂无轨迹信息, 1 已揽收, 2 在途中, 3 签收, 4 问题件);
``StateEx`` (query/push) and each trace's ``Action`` use the finer 增值物流状态 codes.
"""

from __future__ import annotations

from dataclasses import dataclass

from carriers.model import ErrorKind, Problem, Status

__all__ = [
    "COURIER_TO_SHIPPER",
    "NO_TRACE_REASONS",
    "STATES",
    "STATES_EX",
    "Code",
    "canonical_courier",
    "classify_reason",
    "classify_text",
    "family",
    "shipper_code",
]


@dataclass(frozen=True, slots=True)
class Code:
    """One Kdniao state: documented name, common status and problem detail.

    ``status`` is ``None`` for an assessment (超时未签收, 超时未更新, 配送延迟, 发货无信息):
    the parcel keeps the status of its latest scan and only gains the problem.
    """

    name: str
    status: Status | None
    problem: Problem | None = None


_S = Status
_P = Problem

#: ``State``: the basic state
STATES: dict[str, Code] = {
    "0": Code("暂无轨迹信息", _S.PENDING),
    "1": Code("已揽收", _S.PICKED_UP),
    "2": Code("在途中", _S.IN_TRANSIT),
    "3": Code("签收", _S.DELIVERED),
    "4": Code("问题件", _S.EXCEPTION, _P.OTHER),
}

#: ``StateEx`` / ``Action``: 增值物流状态. Names exactly as documented.
STATES_EX: dict[str, Code] = {
    "0": Code("暂无轨迹信息", _S.PENDING),
    "1": Code("已揽收", _S.PICKED_UP),
    "10": Code("待揽件", _S.PENDING),
    "2": Code("在途中", _S.IN_TRANSIT),
    "201": Code("到达派件城市", _S.IN_TRANSIT),
    "202": Code("派件中", _S.OUT_FOR_DELIVERY),
    "204": Code("到达转运中心", _S.IN_TRANSIT),
    "205": Code("到达派件网点", _S.IN_TRANSIT),
    "206": Code("寄件网点发件", _S.IN_TRANSIT),
    "211": Code("已放入快递柜或驿站", _S.READY_FOR_PICKUP),
    "3": Code("已签收", _S.DELIVERED),
    "301": Code("正常签收", _S.DELIVERED),
    "302": Code("派件异常后最终签收", _S.DELIVERED),
    "304": Code("代收签收", _S.DELIVERED),
    "311": Code("快递柜或驿站签收", _S.DELIVERED),
    "4": Code("问题件", _S.EXCEPTION, _P.OTHER),
    "401": Code("发货无信息", None, _P.NO_PROGRESS),
    "402": Code("超时未签收", None, _P.DELAYED),  # 派件后超 36 小时未签收
    "403": Code("超时未更新", None, _P.NO_PROGRESS),  # 最后一条轨迹距今超过 5 天
    "404": Code("拒收(退件)", _S.RETURNING, _P.REFUSED),
    "405": Code("派件异常", _S.DELIVERY_FAILED),
    "406": Code("退货签收", _S.RETURNED),
    "407": Code("退货未签收", _S.RETURNING),
    "412": Code("快递柜或驿站超时未取", _S.READY_FOR_PICKUP, _P.LOCKER_OVERDUE),
    "413": Code("单号已拦截", _S.ON_HOLD, _P.INTERCEPTED),
    "414": Code("破损", _S.EXCEPTION, _P.DAMAGED),
    "415": Code("客户取消发货", _S.EXCEPTION, _P.OTHER),
    "416": Code("无法联系", _S.DELIVERY_FAILED, _P.UNREACHABLE),
    "417": Code("配送延迟", None, _P.DELAYED),
    "418": Code("快件取出", _S.EXCEPTION, _P.OTHER),  # 快递员把快件从快递柜取出
    "419": Code("重新派送", _S.OUT_FOR_DELIVERY),
    "420": Code("收货地址不详细", _S.DELIVERY_FAILED, _P.ADDRESS_PROBLEM),
    "421": Code("收件人电话错误", _S.DELIVERY_FAILED, _P.UNREACHABLE),
    "422": Code("错分件", _S.EXCEPTION, _P.MIS_SORTED),
    "423": Code("超区件", _S.EXCEPTION, _P.OUT_OF_AREA),
    "5": Code("转寄", _S.IN_TRANSIT),
    "6": Code("清关", _S.IN_TRANSIT),
    "601": Code("待清关", _S.IN_TRANSIT),
    "602": Code("清关中", _S.IN_TRANSIT),
    "603": Code("已清关", _S.IN_TRANSIT),
    "604": Code("清关异常", _S.ON_HOLD, _P.CUSTOMS),
}


def family(code: str) -> str:
    """The basic state of a StateEx code: ``"202"`` -> ``"2"``, ``"10"`` -> ``"1"``."""
    code = code.strip()
    if len(code) == 3 or code == "10":
        return code[0]
    return code


# Keyword rules for a trace without ``Action`` (RequestType 1002 sends none): first match
# wins. Only the scan's status is guessed; its raw code stays empty.
_TEXT_RULES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("拒收", "拒签"), "404"),
    (("已签收", "签收人", "代签收", "已代收", "妥投"), "3"),
    (("快递柜", "驿站", "丰巢", "自提点", "代收点"), "211"),
    (("派件员", "派送员", "正在派件", "正在派送", "派件中", "派送中", "安排投递"), "202"),
    (("揽收", "揽件", "已收件", "已收取"), "1"),
)


def classify_text(text: str) -> Code:
    """A best guess at a scan's state from its Chinese text (in transit when nothing fits)."""
    for words, code in _TEXT_RULES:
        if any(word in text for word in words):
            return STATES_EX[code]
    return STATES_EX["2"]


#: failure ``Reason`` texts that mean "no scan (yet)" rather than a failed lookup
NO_TRACE_REASONS: tuple[str, ...] = ("暂无轨迹", "三天无轨迹", "七天内无轨迹变化", "无轨迹")

_REASON_RULES: tuple[tuple[tuple[str, ...], ErrorKind, bool], ...] = (
    (("频繁", "频率", "并发", "太快", "过快"), ErrorKind.RATE_LIMITED, True),
    (
        ("套餐", "余量", "余额", "额度", "次数", "上限", "已到期", "欠费"),
        ErrorKind.QUOTA_EXCEEDED,
        False,
    ),
    (
        ("ID和key", "ID和Key", "签名", "DataSign", "APIKey", "认证", "EBusinessID"),
        ErrorKind.AUTH,
        False,
    ),
    (("ShipperCode", "快递公司编码", "不支持"), ErrorKind.UNSUPPORTED_COURIER, False),
    (("LogisticCode", "单号"), ErrorKind.INVALID_NUMBER, False),
    (("非法参数",), ErrorKind.AUTH, False),
    (("系统", "繁忙", "超时", "异常"), ErrorKind.PROVIDER, True),
)


def classify_reason(reason: str) -> tuple[ErrorKind, bool]:
    """(error kind, retryable) for the ``Reason`` of a ``Success=false`` answer."""
    for words, kind, retryable in _REASON_RULES:
        if any(word in reason for word in words):
            return kind, retryable
    return ErrorKind.PROVIDER, False


#: canonical courier code -> Kdniao ``ShipperCode`` (快递公司编码表)
COURIER_TO_SHIPPER: dict[str, str] = {
    "sf": "SF",
    "yto": "YTO",
    "zto": "ZTO",
    "sto": "STO",
    "yunda": "YD",
    "jd": "JD",
    "ems": "EMS",
    "chinapost": "YZPY",
    "jt": "JTSD",
    "deppon": "DBL",
    "ups": "UPS",
    "fedex": "FEDEX",
    "dhl": "DHL",
    "usps": "USPS",
}

_SHIPPER_TO_COURIER: dict[str, str] = {
    **{shipper: courier for courier, shipper in COURIER_TO_SHIPPER.items()},
    "FEDEX_GJ": "fedex",  # FEDEX联邦(国际件)
    "YZBK": "chinapost",  # 邮政标准快递
}


def shipper_code(courier: str) -> str | None:
    """The Kdniao ``ShipperCode`` for a canonical courier code, else ``None``."""
    return COURIER_TO_SHIPPER.get(courier)


def canonical_courier(shipper: str) -> str | None:
    """The canonical courier code for a Kdniao ``ShipperCode``, else ``None``."""
    return _SHIPPER_TO_COURIER.get(shipper.strip().upper())
