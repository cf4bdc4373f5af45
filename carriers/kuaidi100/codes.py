"""Kuaidi100 (快递100) raw code tables: states, sub-states, return codes and courier codes.

Sources (read 2026-11-26, see ``tests/fixtures/SOURCES.md``):

* 实时快递查询接口 https://api.kuaidi100.com/document/5f0ffb5ebc8da837cbd8aefc
  (its "运单快递状态(state)说明" table is mirrored at
  https://apifox.com/apidoc/project-514987/api-8562559).
* 推送接口 https://apifox.com/apidoc/project-514987/api-55500331.

``state`` is the parcel's main state (0 在途, 1 揽收, 2 疑难, 3 签收, 4 退签, 5 派件,
6 退回, 7 转投, 8 清关, 10-13 清关 sub-states, 14 拒签). With ``resultv2=4`` each scan
carries ``statusCode``, a 高级物流状态 (e.g. ``1002`` 干线 under main state 0), and the
top-level ``state`` may itself be such a sub-state code. Both live in :data:`STATES`.
"""

from __future__ import annotations

from dataclasses import dataclass

from carriers.model import ErrorKind, Problem, Status

__all__ = [
    "CALLBACK_ABORT_LOST",
    "CALLBACK_ABORT_NO_RECORD",
    "COURIER_TO_COM",
    "RETURN_CODES",
    "STATES",
    "Code",
    "ReturnCode",
    "canonical_courier",
    "com_code",
    "family",
    "lookup",
    "lookup_name",
]


@dataclass(frozen=True, slots=True)
class Code:
    """One Kuaidi100 state: its documented name, the common status and a problem detail.

    ``status`` is ``None`` for an *assessment* code (超时未签收, 超时未更新): it says
    something about the parcel without moving it, so the parcel keeps the status of its
    latest scan and only gains the problem.
    """

    name: str
    status: Status | None
    problem: Problem | None = None


_S = Status
_P = Problem

#: state / statusCode -> meaning. Names are exactly as documented.
STATES: dict[str, Code] = {
    # 0 在途
    "0": Code("在途", _S.IN_TRANSIT),
    "1001": Code("到达派件城市", _S.IN_TRANSIT),
    "1002": Code("干线", _S.IN_TRANSIT),
    "1003": Code("转递", _S.IN_TRANSIT),  # 快件发往到新的收件地址
    # 1 揽收
    "1": Code("揽收", _S.PICKED_UP),
    "101": Code("已下单", _S.PENDING),
    "102": Code("待揽收", _S.PENDING),
    "103": Code("已揽收", _S.PICKED_UP),
    # 2 疑难
    "2": Code("疑难", _S.EXCEPTION, _P.OTHER),
    "201": Code("超时未签收", None, _P.DELAYED),  # 快件长时间派件后未签收
    "202": Code("超时未更新", None, _P.NO_PROGRESS),  # 快件长时间没有派件或签收
    "203": Code("拒收", _S.DELIVERY_FAILED, _P.REFUSED),  # 收件人发起拒收, 待发货方确认
    "204": Code("派件异常", _S.DELIVERY_FAILED),
    "205": Code("柜或驿站超时未取", _S.READY_FOR_PICKUP, _P.LOCKER_OVERDUE),
    "206": Code("无法联系", _S.DELIVERY_FAILED, _P.UNREACHABLE),
    "207": Code("超区", _S.EXCEPTION, _P.OUT_OF_AREA),
    "208": Code("滞留", _S.ON_HOLD, _P.HELD),
    "209": Code("破损", _S.EXCEPTION, _P.DAMAGED),
    "210": Code("销单", _S.EXCEPTION, _P.OTHER),  # 寄件人申请撤销寄件
    # 3 签收
    "3": Code("签收", _S.DELIVERED),
    "301": Code("本人签收", _S.DELIVERED),
    "302": Code("派件异常后签收", _S.DELIVERED),
    "303": Code("代签", _S.DELIVERED),
    "304": Code("投柜或站签收", _S.DELIVERED),
    # 4 退签
    "4": Code("退签", _S.RETURNED),
    "401": Code("已销单", _S.EXCEPTION, _P.OTHER),  # 此快件单已撤销
    # 5 派件
    "5": Code("派件", _S.OUT_FOR_DELIVERY),
    "501": Code("投柜或驿站", _S.READY_FOR_PICKUP),
    # 6 退回
    "6": Code("退回", _S.RETURNING),
    # 7 转投: handed to another courier
    "7": Code("转投", _S.IN_TRANSIT),
    # 8 清关: normal clearance is transit; only 清关异常 is a problem
    "8": Code("清关", _S.IN_TRANSIT),
    "10": Code("待清关", _S.IN_TRANSIT),
    "11": Code("清关中", _S.IN_TRANSIT),
    "12": Code("已清关", _S.IN_TRANSIT),
    "13": Code("清关异常", _S.ON_HOLD, _P.CUSTOMS),
    # 14 拒签: the recipient refused; the parcel goes back (not yet returned)
    "14": Code("拒签", _S.RETURNING, _P.REFUSED),
}

# Other spellings seen in the docs and SDK comments (resultv2=1 gives names, not codes).
_NAME_ALIASES: dict[str, str] = {
    "在途中": "0",
    "已揽收": "103",
    "转单": "7",
    "投柜或驿站签收": "304",
    "收件人拒签": "14",
}
_BY_NAME: dict[str, str] = {**{c.name: k for k, c in STATES.items()}, **_NAME_ALIASES}


def lookup(code: str) -> Code | None:
    """The meaning of a ``state`` / ``statusCode`` value, else ``None``."""
    return STATES.get(code.strip())


def lookup_name(name: str) -> str | None:
    """The code for a documented state name (``"干线"`` -> ``"1002"``), else ``None``."""
    return _BY_NAME.get(name.strip())


def family(code: str) -> str:
    """The main state of a code: ``"1002"`` -> ``"0"``, ``"11"`` -> ``"8"``."""
    code = code.strip()
    if len(code) == 4 and code.startswith("100"):
        return "0"
    if code in {"10", "11", "12", "13"}:
        return "8"
    if len(code) == 3 and code[0] in "123456":
        return code[0]
    return code


@dataclass(frozen=True, slots=True)
class ReturnCode:
    """How a failed query's ``returnCode`` is reported."""

    kind: ErrorKind
    retryable: bool
    meaning: str


#: ``returnCode`` of a failed ``poll/query.do`` (``{"result": false, "returnCode": ..}``).
#: 500 (查询无结果) is *not* here: it means "no scan yet" and parses as a pending result.
RETURN_CODES: dict[str, ReturnCode] = {
    "400": ReturnCode(ErrorKind.PROVIDER, False, "找不到对应公司/提交数据不完整或账号未充值"),
    "408": ReturnCode(ErrorKind.INVALID_NUMBER, False, "快递公司参数异常: 验证码(手机号)错误"),
    "501": ReturnCode(ErrorKind.PROVIDER, True, "服务器错误"),
    "502": ReturnCode(ErrorKind.RATE_LIMITED, True, "服务器繁忙"),
    "503": ReturnCode(ErrorKind.AUTH, False, "验证签名失败"),
    "601": ReturnCode(ErrorKind.AUTH, False, "key已过期"),
}

#: callback ``message`` of a ``status=abort`` push: no record 3 days after subscribing
CALLBACK_ABORT_NO_RECORD = "3天查询无记录"
#: callback ``message`` of a ``status=abort`` push: no change for 60 days
CALLBACK_ABORT_LOST = "60天无变化"

#: canonical courier code -> Kuaidi100 ``com`` (下载编码表格 / SDK ``CompanyConstant``)
COURIER_TO_COM: dict[str, str] = {
    "sf": "shunfeng",
    "yto": "yuantong",
    "zto": "zhongtong",
    "sto": "shentong",
    "yunda": "yunda",
    "jd": "jd",
    "ems": "ems",
    "chinapost": "youzhengguonei",
    "jt": "jtexpress",
    "deppon": "debangkuaidi",
    "ups": "ups",
    "fedex": "fedex",
    "dhl": "dhl",
    "usps": "usps",
}

_COM_TO_COURIER: dict[str, str] = {
    **{com: courier for courier, com in COURIER_TO_COM.items()},
    "debangwuliu": "deppon",  # 德邦物流 (freight) shares the 德邦 canonical code
    "youzhengbk": "chinapost",  # 邮政标准快递
    "dhlen": "dhl",  # DHL 国际件 (English results)
}


def com_code(courier: str) -> str | None:
    """The Kuaidi100 ``com`` for a canonical courier code, else ``None``."""
    return COURIER_TO_COM.get(courier)


def canonical_courier(com: str) -> str | None:
    """The canonical courier code for a Kuaidi100 ``com``, else ``None``."""
    return _COM_TO_COURIER.get(com.strip().lower())
