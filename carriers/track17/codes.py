"""17TRACK raw code tables: package statuses, error codes and carrier keys.

Sources (read 2026 via the docs search; 17TRACK's own API page is not in the corpus):

* status / sub-status table: https://help.17track.net/hc/en-us/articles/37471096573337
  ("Understanding Tracking Status: Main Status & Substatus"), the same 9 main statuses and
  30 sub-statuses as the v2.2/v2.4 API docs at https://api.17track.net/en/doc?version=v2.2
* error codes: the v2 API docs' error-code table, as mirrored in godely/aio17track
  ``aio17track/enums.py`` (Apache-2.0, captured from the v2.4 docs 2026-07-03)
* carrier keys: 17TRACK's carrier list (``carrier.all.json``, linked from the API docs),
  read from a copy in KingAshu22/next-express-hub ``app/constants/carriers.js``; not
  checked against 17TRACK itself
"""

from __future__ import annotations

from carriers.model import ErrorKind, Problem, Status

__all__ = [
    "ALREADY_REGISTERED",
    "CARRIER_KEYS",
    "CN_SUBDIVISIONS",
    "FINISHED_MAIN_STATUSES",
    "NOT_REGISTERED",
    "NO_TRACKING_INFO_YET",
    "PHONE_PARAM_COURIERS",
    "courier_for_key",
    "error_kind",
    "stage_status",
    "status_for",
]

#: (Status, Problem) per sub-status. Decisions where the mapping is a judgement call:
#: * ``NotFound_*`` and ``InfoReceived`` are ``pending``: the label exists, no scan yet.
#: * ``Expired_Other`` (17TRACK saw no update for its expiry window and stopped) is an
#:   ``exception`` with ``no_progress``; the result is marked finished.
#: * ``Exception_Delayed`` stays ``in_transit`` with ``delayed`` (the parcel still moves).
#: * ``Exception_Security`` / ``DeliveryFailure_Security`` ("security, customs clearance or
#:   fees") carry the ``customs`` problem.
#: * ``Exception_Destroyed`` is treated like ``lost``: the buyer will not get the parcel.
_SUB_STATUS: dict[str, tuple[Status, Problem | None]] = {
    "NotFound_Other": (Status.PENDING, None),
    "NotFound_InvalidCode": (Status.UNKNOWN, None),
    "InfoReceived": (Status.PENDING, None),
    "InfoReceived_Other": (Status.PENDING, None),
    "InTransit_PickedUp": (Status.PICKED_UP, None),
    "InTransit_Other": (Status.IN_TRANSIT, None),
    "InTransit_Departure": (Status.IN_TRANSIT, None),
    "InTransit_Arrival": (Status.IN_TRANSIT, None),
    "InTransit_CustomsProcessing": (Status.IN_TRANSIT, None),
    "InTransit_CustomsReleased": (Status.IN_TRANSIT, None),
    "InTransit_CustomsRequiringInformation": (Status.ON_HOLD, Problem.CUSTOMS),
    "Expired_Other": (Status.EXCEPTION, Problem.NO_PROGRESS),
    "AvailableForPickup_Other": (Status.READY_FOR_PICKUP, None),
    "OutForDelivery_Other": (Status.OUT_FOR_DELIVERY, None),
    "DeliveryFailure_Other": (Status.DELIVERY_FAILED, None),
    "DeliveryFailure_NoBody": (Status.DELIVERY_FAILED, Problem.UNREACHABLE),
    "DeliveryFailure_Security": (Status.DELIVERY_FAILED, Problem.CUSTOMS),
    "DeliveryFailure_Rejected": (Status.DELIVERY_FAILED, Problem.REFUSED),
    "DeliveryFailure_InvalidAddress": (Status.DELIVERY_FAILED, Problem.ADDRESS_PROBLEM),
    "Delivered_Other": (Status.DELIVERED, None),
    "Exception_Other": (Status.EXCEPTION, Problem.OTHER),
    "Exception_Returning": (Status.RETURNING, None),
    "Exception_Returned": (Status.RETURNED, None),
    "Exception_NoBody": (Status.EXCEPTION, Problem.UNREACHABLE),
    "Exception_Security": (Status.ON_HOLD, Problem.CUSTOMS),
    "Exception_Damage": (Status.EXCEPTION, Problem.DAMAGED),
    "Exception_Rejected": (Status.EXCEPTION, Problem.REFUSED),
    "Exception_Delayed": (Status.IN_TRANSIT, Problem.DELAYED),
    "Exception_Lost": (Status.EXCEPTION, Problem.LOST),
    "Exception_Destroyed": (Status.EXCEPTION, Problem.LOST),
    "Exception_Cancel": (Status.EXCEPTION, Problem.OTHER),
}

#: Fallback per main status, for a sub-status this table does not know yet.
_MAIN_STATUS: dict[str, tuple[Status, Problem | None]] = {
    "NotFound": (Status.PENDING, None),
    "InfoReceived": (Status.PENDING, None),
    "InTransit": (Status.IN_TRANSIT, None),
    "Expired": (Status.EXCEPTION, Problem.NO_PROGRESS),
    "AvailableForPickup": (Status.READY_FOR_PICKUP, None),
    "OutForDelivery": (Status.OUT_FOR_DELIVERY, None),
    "DeliveryFailure": (Status.DELIVERY_FAILED, None),
    "Delivered": (Status.DELIVERED, None),
    "Exception": (Status.EXCEPTION, Problem.OTHER),
}

#: Main statuses after which 17TRACK reports nothing new (``Expired``: it stopped tracking).
FINISHED_MAIN_STATUSES = frozenset({"Delivered", "Expired"})


def status_for(main: str | None, sub: str | None) -> tuple[Status, Problem | None]:
    """The common status and problem for a 17TRACK (status, sub_status) pair.

    An unknown sub-status falls back on its prefix (``InTransit_Foo`` -> ``InTransit``),
    then on the main status; anything else is ``unknown``.
    """
    if sub and sub in _SUB_STATUS:
        return _SUB_STATUS[sub]
    for key in (sub.split("_", 1)[0] if sub else None, main):
        if key and key in _MAIN_STATUS:
            return _MAIN_STATUS[key]
    return Status.UNKNOWN, None


#: Event ``stage`` values (used only when an event has no ``sub_status``).
_STAGES: dict[str, tuple[Status, Problem | None]] = {
    "InfoReceived": (Status.PENDING, None),
    "PickedUp": (Status.PICKED_UP, None),
    "Departure": (Status.IN_TRANSIT, None),
    "Arrival": (Status.IN_TRANSIT, None),
    "AvailableForPickup": (Status.READY_FOR_PICKUP, None),
    "OutForDelivery": (Status.OUT_FOR_DELIVERY, None),
    "Delivered": (Status.DELIVERED, None),
    "Returning": (Status.RETURNING, None),
    "Returned": (Status.RETURNED, None),
}


def stage_status(stage: str | None) -> tuple[Status, Problem | None]:
    """The common status for an event ``stage`` (``PickedUp``, ``Arrival`` ...)."""
    if stage and stage in _STAGES:
        return _STAGES[stage]
    return status_for(stage, None)


# --- error codes -------------------------------------------------------------------------

ALREADY_REGISTERED = -18019901
NOT_REGISTERED = -18019902
NO_TRACKING_INFO_YET = -18019909

#: error code -> (kind, retryable)
_ERRORS: dict[int, tuple[ErrorKind, bool]] = {
    -18010001: (ErrorKind.AUTH, False),  # IP not whitelisted
    -18010002: (ErrorKind.AUTH, False),  # invalid security key
    -18010003: (ErrorKind.PROVIDER, True),  # internal service error
    -18010004: (ErrorKind.AUTH, False),  # account disabled
    -18010005: (ErrorKind.AUTH, False),  # unauthorized access
    -18010010: (ErrorKind.PROVIDER, False),  # missing required data
    -18010011: (ErrorKind.PROVIDER, False),  # invalid data value
    -18010012: (ErrorKind.INVALID_NUMBER, False),  # invalid data format (e.g. number "1234")
    -18010013: (ErrorKind.PROVIDER, False),  # invalid submitted data
    -18010014: (ErrorKind.PROVIDER, False),  # more numbers than allowed in one call
    -18010015: (ErrorKind.PROVIDER, False),  # invalid field value
    -18010016: (ErrorKind.UNSUPPORTED_COURIER, False),  # last-mile only for postal carriers
    -18010018: (ErrorKind.PROVIDER, False),  # country/postal code required
    -18010019: (ErrorKind.PROVIDER, False),  # postal code required
    -18010020: (ErrorKind.PROVIDER, False),  # phone number required
    -18010022: (ErrorKind.PROVIDER, False),  # additional info required
    ALREADY_REGISTERED: (ErrorKind.PROVIDER, False),
    NOT_REGISTERED: (ErrorKind.NOT_FOUND, True),  # register first, then ask again
    -18019903: (ErrorKind.UNSUPPORTED_COURIER, False),  # carrier cannot be detected
    -18019907: (ErrorKind.QUOTA_EXCEEDED, True),  # daily limit exceeded: retry tomorrow
    -18019908: (ErrorKind.QUOTA_EXCEEDED, False),  # quota exhausted
    NO_TRACKING_INFO_YET: (ErrorKind.NOT_FOUND, True),  # "no tracking information at this time"
    -18019910: (ErrorKind.UNSUPPORTED_COURIER, False),  # incorrect carrier code
    -18019911: (ErrorKind.UNSUPPORTED_COURIER, False),  # carrier cannot be registered
    -18019815: (ErrorKind.PROVIDER, True),  # real-time: carrier timeout
    -18019816: (ErrorKind.PROVIDER, True),  # real-time: carrier error
}


def error_kind(code: int | None) -> tuple[ErrorKind, bool]:
    """(kind, retryable) for a 17TRACK error code; unknown codes: non-retryable provider."""
    if code is None:
        return ErrorKind.PROVIDER, False
    return _ERRORS.get(code, (ErrorKind.PROVIDER, False))


# --- carriers ----------------------------------------------------------------------------

#: canonical courier code -> 17TRACK carrier key. Couriers not listed here are registered
#: without a carrier key, so 17TRACK auto-detects the carrier from the number.
#: Verified in carrier.all.json (copy above): dhl 100001 "DHL Express", ups 100002,
#: fedex 100003, usps 21051, chinapost 3011 "China Post", ems 3013 "China EMS",
#: sf 190766 "SF Express(CN)" (100012 is "SF Express" international), jd 191121
#: "JD Logistics", yunda 191197 "Yunda Express".
#: Not found in the pages read (auto-detect for now): yto, zto, sto, jt, deppon.
CARRIER_KEYS: dict[str, int] = {
    "dhl": 100001,
    "ups": 100002,
    "fedex": 100003,
    "usps": 21051,
    "chinapost": 3011,
    "ems": 3013,
    "sf": 190766,
    "jd": 191121,
    "yunda": 191197,
}

#: Extra keys that also mean a canonical courier when 17TRACK reports them back.
_EXTRA_KEYS: dict[int, str] = {100012: "sf"}

_COURIER_BY_KEY: dict[int, str] = {v: k for k, v in CARRIER_KEYS.items()} | _EXTRA_KEYS

#: Couriers whose lookups need the buyer's phone; 17TRACK takes its last 4 digits in
#: ``param``. UNVERIFIED for the v2.2 register call (SF is the usual case in China).
PHONE_PARAM_COURIERS = frozenset({"sf"})


def courier_for_key(key: int | None) -> str | None:
    """The canonical courier code for a 17TRACK carrier key, or ``None`` when unknown."""
    return _COURIER_BY_KEY.get(key) if key is not None else None


#: ISO 3166-2:CN subdivision codes (as in 17TRACK ``address.state``) -> province name.
CN_SUBDIVISIONS: dict[str, str] = {
    "BJ": "北京市",
    "TJ": "天津市",
    "HE": "河北省",
    "SX": "山西省",
    "NM": "内蒙古自治区",
    "LN": "辽宁省",
    "JL": "吉林省",
    "HL": "黑龙江省",
    "SH": "上海市",
    "JS": "江苏省",
    "ZJ": "浙江省",
    "AH": "安徽省",
    "FJ": "福建省",
    "JX": "江西省",
    "SD": "山东省",
    "HA": "河南省",
    "HB": "湖北省",
    "HN": "湖南省",
    "GD": "广东省",
    "GX": "广西壮族自治区",
    "HI": "海南省",
    "CQ": "重庆市",
    "SC": "四川省",
    "GZ": "贵州省",
    "YN": "云南省",
    "XZ": "西藏自治区",
    "SN": "陕西省",
    "GS": "甘肃省",
    "QH": "青海省",
    "NX": "宁夏回族自治区",
    "XJ": "新疆维吾尔自治区",
    "TW": "台湾省",
    "HK": "香港特别行政区",
    "MO": "澳门特别行政区",
}
