"""What to do and what to tell the buyer, per exception kind (DESIGN §5 playbook).

The wording follows the seeds' after-sales handbooks: contact the buyer first, explain
the cause, apologise sincerely, offer a remedy (a small gift, a coupon, reship or
refund), say what happens next and by when, and only then settle with the courier.
``suggested_action`` is for agents; ``reason`` and ``next_step`` are short phrases the
buyer notice templates put into a sentence; resolution phrases say why a ticket closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from tracker.domain.model import ExceptionKind

__all__ = [
    "ACTION_AWAITING_COLLECTION",
    "ACTION_DAMAGED",
    "ACTION_NOT_COVERED",
    "ACTION_NOT_PICKED_UP",
    "KIND_LABELS",
    "NEXT_AWAITING_COLLECTION",
    "NEXT_CARRIER_EXCEPTION",
    "NEXT_DELIVERY_FAILED",
    "NEXT_LOST",
    "NEXT_NOT_COVERED",
    "NEXT_NOT_SHIPPED",
    "NEXT_OVERDUE",
    "NEXT_RETURNED",
    "NEXT_STALLED",
    "NEXT_WEIGHT_MISMATCH",
    "NEXT_WRONG_REGION",
    "NOTIFY_BUYER",
    "REASON_ADDRESS_PROBLEM",
    "REASON_CARRIER_EXCEPTION",
    "REASON_DAMAGED",
    "REASON_DELIVERY_FAILED",
    "REASON_LOST_REPORTED",
    "REASON_NOT_COVERED",
    "REASON_NOT_PICKED_UP",
    "REASON_NOT_SHIPPED",
    "REASON_OVERDUE",
    "REASON_REFUSED",
    "REASON_RETURNED",
    "REASON_RETURNING",
    "REASON_UNREACHABLE",
    "REASON_WEIGHT_MISMATCH",
    "REASON_WRONG_REGION",
    "SUGGESTED_ACTIONS",
    "Resolution",
    "hours_text",
    "reason_awaiting_collection",
    "reason_lost_silent",
    "reason_stalled_in_transit",
    "reason_stalled_out_for_delivery",
    "superseded_by",
]

K = ExceptionKind

#: Short Chinese names of the kinds, for reports and resolution phrases.
KIND_LABELS: Mapping[ExceptionKind, str] = MappingProxyType(
    {
        K.NOT_SHIPPED: "未按时发货",
        K.STALLED: "物流停滞",
        K.OVERDUE: "超时未送达",
        K.LOST: "疑似丢件",
        K.WRONG_REGION: "错分或超区",
        K.WEIGHT_MISMATCH: "重量不符（疑似少发）",
        K.DELIVERY_FAILED: "派送失败",
        K.RETURNED: "拒收或退回",
        K.CARRIER_EXCEPTION: "快递问题件",
    }
)

#: Whether a kind queues a proactive buyer notice (DESIGN §5 "buyer notice" column).
NOTIFY_BUYER: Mapping[ExceptionKind, bool] = MappingProxyType(
    {
        K.NOT_SHIPPED: True,
        K.STALLED: True,
        K.OVERDUE: True,
        K.LOST: True,
        K.WRONG_REGION: False,
        K.WEIGHT_MISMATCH: False,
        K.DELIVERY_FAILED: True,
        K.RETURNED: True,
        K.CARRIER_EXCEPTION: False,
    }
)

#: The agent's playbook per kind; the variants below refine it for a specific trigger.
SUGGESTED_ACTIONS: Mapping[ExceptionKind, str] = MappingProxyType(
    {
        K.NOT_SHIPPED: (
            "联系买家说明情况并致歉，约定发货时间，可赠送小礼品或下次购物优惠；"
            "买家不愿等待则及时退款，避免投诉；缺货则协商换货或退款，并及时更新库存"
        ),
        K.STALLED: (
            "联系快递核实包裹停滞的原因（天气、爆仓、管控或中转积压等），"
            "先安抚买家并如实告知原因和预计时间；快递确认丢件则按丢件处理"
        ),
        K.OVERDUE: (
            "向买家诚恳道歉并说明延误原因，请买家耐心等待，可提供补偿（优惠券、小礼品或部分退款）；"
            "买家不愿等待则退款并召回快递"
        ),
        K.LOST: "立即为买家补发或退款，不让买家继续等待；随后凭面单和物流记录向快递公司申请理赔",
        K.WRONG_REGION: (
            "联系快递核实分拣或派送错误，要求转回正确的目的地并跟进；"
            "若该快递不送达收货地区，与买家协商改用其他快递中转或重新发货"
        ),
        K.WEIGHT_MISMATCH: (
            "快递记录的重量明显低于订单商品重量，疑似少发货：核对打包记录和出库清单，"
            "确认少发后主动联系买家致歉并及时补发缺少的商品"
        ),
        K.DELIVERY_FAILED: (
            "联系买家核对收货地址和联系电话，确认后通知快递重新派送；地址有误的协助买家修改地址"
        ),
        K.RETURNED: "联系买家了解拒收或退回的原因，协商重新发货或退款；包裹退回后及时验货入库",
        K.CARRIER_EXCEPTION: "联系快递核实问题件的原因并跟进处理进度，必要时向买家说明情况",
    }
)

ACTION_NOT_PICKED_UP = (
    "已打单但快递未揽收：立即催促快递上门揽收，必要时改用其他快递；"
    "同时联系买家说明情况并约定发货时间，买家不愿等待则退款"
)
ACTION_AWAITING_COLLECTION = (
    "包裹已到驿站或快递柜但未被取走：提醒买家及时取件，核实买家是否收到取件码；"
    "未收到的联系快递或驿站重新发送"
)
ACTION_NOT_COVERED = (
    "所选快递不送达收货地区：与买家协商改用其他快递；"
    "已发出的包裹联系快递转寄其他快递或召回后重新发货"
)
ACTION_DAMAGED = (
    "包裹破损：向买家诚恳道歉并提供补偿（返现、店铺优惠券、小礼品或重新寄送一件），"
    "再凭物流记录向快递公司索赔"
)


def hours_text(hours: float) -> str:
    """``48.0`` -> ``"48"``, ``1.5`` -> ``"1.5"``: numbers as a buyer reads them."""
    return f"{hours:g}"


# Buyer-facing phrases. A reason is a predicate read after "您的订单X（快递 单号）"; a next
# step is a full sentence (what we do, by when).
REASON_NOT_SHIPPED = "未能在承诺的时间内发出"
REASON_NOT_PICKED_UP = "已打包，但快递尚未揽收"
NEXT_NOT_SHIPPED = (
    "我们正在加急安排发货，客服将尽快与您联系确认发货时间；如不愿等待，可随时申请退款。"
)


def reason_stalled_in_transit(hours: float) -> str:
    """Stalled between pickup and the last mile."""
    return f"在运输途中已超过{hours_text(hours)}小时没有更新"


def reason_stalled_out_for_delivery(hours: float) -> str:
    """Stalled while out for delivery."""
    return f"派送中已超过{hours_text(hours)}小时没有更新"


def reason_awaiting_collection(hours: float) -> str:
    """Waiting at a station or locker."""
    return f"已到驿站或快递柜超过{hours_text(hours)}小时，尚未取件"


NEXT_STALLED = "我们已联系快递核实，将在24小时内告知您最新进展。"
NEXT_AWAITING_COLLECTION = "请您及时取件；如未收到取件码，请联系我们为您核实。"

REASON_OVERDUE = "未能在预计时间内送达"
NEXT_OVERDUE = "我们已联系快递加急派送，客服将在24小时内与您联系；如不愿继续等待，可申请退款。"

REASON_LOST_REPORTED = "经快递反馈可能已遗失"


def reason_lost_silent(days: float) -> str:
    """No scan for ``days`` days."""
    return f"已超过{hours_text(days)}天没有物流更新，可能已遗失"


NEXT_LOST = "我们将立即为您补发或退款，客服会尽快与您联系确认。"

REASON_WRONG_REGION = "被分拣或派送到了错误的地区"
NEXT_WRONG_REGION = "我们已联系快递转回正确的地址，并会跟进到您收货为止。"
REASON_NOT_COVERED = "所用快递暂不送达您的收货地区"
NEXT_NOT_COVERED = "客服将与您联系，改用其他快递为您发货。"

REASON_WEIGHT_MISMATCH = "重量与订单商品不符，可能少发了商品"
NEXT_WEIGHT_MISMATCH = "我们正在核实，如有少发将立即为您补发。"

REASON_ADDRESS_PROBLEM = "因收货地址有误或不详，暂时无法派送"
REASON_UNREACHABLE = "因快递员未能联系上您，暂未送达"
REASON_DELIVERY_FAILED = "派送未成功"
NEXT_DELIVERY_FAILED = "请您核对收货地址和联系电话，客服将与您确认后安排重新派送。"

REASON_REFUSED = "已被拒收"
REASON_RETURNING = "正在退回"
REASON_RETURNED = "已退回"
NEXT_RETURNED = "客服将在24小时内与您联系，协商重新发货或退款。"

REASON_CARRIER_EXCEPTION = "在运输中出现异常"
REASON_DAMAGED = "经快递反馈出现破损"
NEXT_CARRIER_EXCEPTION = "我们已联系快递核实处理，并会尽快告知您结果。"


class Resolution:
    """Why a ticket closed on its own (stored with the ticket when it auto-resolves)."""

    DELIVERED = "已签收"
    DELIVERED_IN_DESTINATION = "已在收货城市签收"
    SHIPPED_AND_PICKED_UP = "已发货并揽收"
    SHIPPED = "已发货，等待快递揽收"
    MOVING_AGAIN = "物流已恢复更新"
    BACK_ON_ROUTE = "包裹已回到正确的派送路线"
    WEIGHT_MATCHES = "快递重量与订单商品重量已相符"
    DELIVERY_RESUMED = "派送已恢复正常"
    EXCEPTION_CLEARED = "问题件已解除，物流恢复正常"
    DEADLINE_MOVED = "期限已调整，尚未超时"
    NO_LONGER_APPLIES = "异常条件已不再满足"
    STILL_APPLIES = "异常仍然存在"


def superseded_by(kind: ExceptionKind) -> str:
    """The resolution phrase when a more specific kind has taken over the ticket's parcel."""
    return f"已转为{KIND_LABELS[kind]}处理"
