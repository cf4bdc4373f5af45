"""EasyPost raw code tables: tracker statuses, status details, carriers, error codes.

Source: the Tracker object reference, https://docs.easypost.com/docs/trackers ("status"
and "status_detail" possible values). The status_detail list there was only partly
visible in the excerpts read (``address_correction``, ``arrived_at_destination``,
``arrived_at_facility``, ``arrive...``); the other details below follow EasyPost's
published list from memory and are marked UNVERIFIED. Unknown details fall back to the
status alone, so a wrong guess here only loses a ``problem``, never a status.
"""

from __future__ import annotations

from carriers.model import ErrorKind, Problem, Status

__all__ = [
    "CARRIER_NAMES",
    "OUNCE_KG",
    "courier_for_carrier",
    "error_kind",
    "is_finished",
    "status_for",
]

#: EasyPost's ``weight`` is in ounces.
OUNCE_KG = 0.028349523125

#: Decisions: ``return_to_sender`` is ``returning`` (EasyPost uses it for the whole way
#: back); ``failure`` ("the carrier could not deliver", e.g. item seized) is a carrier
#: ``exception``; ``cancelled`` is an ``exception`` and finished; ``error`` (EasyPost
#: could not track) and ``unknown`` are ``unknown``.
_STATUS: dict[str, Status] = {
    "unknown": Status.UNKNOWN,
    "pre_transit": Status.PENDING,
    "in_transit": Status.IN_TRANSIT,
    "out_for_delivery": Status.OUT_FOR_DELIVERY,
    "delivered": Status.DELIVERED,
    "available_for_pickup": Status.READY_FOR_PICKUP,
    "return_to_sender": Status.RETURNING,
    "failure": Status.EXCEPTION,
    "cancelled": Status.EXCEPTION,
    "error": Status.UNKNOWN,
}

#: status_detail -> (status override or None to keep the status, problem)
_DETAIL: dict[str, tuple[Status | None, Problem | None]] = {
    "address_correction": (None, Problem.ADDRESS_PROBLEM),
    "arrived_at_destination": (None, None),
    "arrived_at_facility": (None, None),
    "arrived_at_pickup_location": (Status.READY_FOR_PICKUP, None),  # UNVERIFIED
    "awaiting_information": (Status.ON_HOLD, Problem.HELD),  # UNVERIFIED
    "damaged": (Status.EXCEPTION, Problem.DAMAGED),  # UNVERIFIED
    "delayed": (None, Problem.DELAYED),  # UNVERIFIED
    "delivery_exception": (Status.DELIVERY_FAILED, None),  # UNVERIFIED
    "destroyed": (Status.EXCEPTION, Problem.LOST),  # UNVERIFIED
    "held": (Status.ON_HOLD, Problem.HELD),  # UNVERIFIED
    "lost": (Status.EXCEPTION, Problem.LOST),  # UNVERIFIED
    "missorted": (None, Problem.MIS_SORTED),  # UNVERIFIED
    "refused": (None, Problem.REFUSED),  # UNVERIFIED
    "return": (Status.RETURNING, None),  # UNVERIFIED
    "transit_exception": (Status.EXCEPTION, Problem.OTHER),  # UNVERIFIED
    "weather_delay": (None, Problem.DELAYED),  # UNVERIFIED
}

_FINISHED = frozenset({"delivered", "cancelled"})


def status_for(status: str | None, detail: str | None) -> tuple[Status, Problem | None]:
    """The common status and problem for an EasyPost (status, status_detail) pair.

    Details not in the table (``unknown``, ``status_update``, ``label_created`` ...) keep
    the status as it is; a detail never overrides ``delivered``.
    """
    base = _STATUS.get(status or "", Status.UNKNOWN)
    override, problem = _DETAIL.get(detail or "", (None, None))
    if status == "failure" and problem is None:
        problem = Problem.OTHER
    if base is Status.DELIVERED or override is None:
        return base, problem
    return override, problem


def is_finished(status: str | None) -> bool:
    """True once EasyPost will report nothing new (delivered or cancelled)."""
    return status in _FINISHED


# --- carriers ----------------------------------------------------------------------------

#: canonical courier code -> EasyPost ``carrier`` string (as in the fixtures: ``USPS``,
#: ``UPS``, ``FedEx``; DHL Express is ``DHLExpress``). Chinese couriers are not offered.
CARRIER_NAMES: dict[str, str] = {
    "usps": "USPS",
    "ups": "UPS",
    "fedex": "FedEx",
    "dhl": "DHLExpress",
}

_COURIERS: dict[str, str] = {v.lower(): k for k, v in CARRIER_NAMES.items()}


def courier_for_carrier(carrier: str | None) -> str | None:
    """The canonical courier code for an EasyPost carrier string (case-insensitive)."""
    return _COURIERS.get(carrier.strip().lower()) if carrier else None


# --- errors ------------------------------------------------------------------------------


def error_kind(http_status: int | None, code: str | None) -> tuple[ErrorKind, bool]:
    """(kind, retryable) for an EasyPost error (``{"error": {"code", "message"}}``).

    Codes seen in the fixtures: ``NOT_FOUND`` (404), ``PARAMETER.REQUIRED`` (422). A code
    that names the tracking code or the carrier is read as an invalid number or an
    unsupported carrier (UNVERIFIED heuristic: EasyPost's code list was not read).
    """
    upper = (code or "").upper()
    if http_status in (401, 403) or upper.startswith(("APIKEY", "UNAUTHORIZED", "FORBIDDEN")):
        return ErrorKind.AUTH, False
    if http_status == 429 or "RATE_LIMIT" in upper:
        return ErrorKind.RATE_LIMITED, True
    if http_status == 404 or upper == "NOT_FOUND":
        return ErrorKind.NOT_FOUND, False
    if "TRACKING_CODE" in upper:
        return ErrorKind.INVALID_NUMBER, False
    if "CARRIER" in upper:
        return ErrorKind.UNSUPPORTED_COURIER, False
    if http_status is not None and http_status >= 500:
        return ErrorKind.PROVIDER, True
    return ErrorKind.PROVIDER, False
