"""AfterShip raw code tables: delivery tags and subtags, meta codes, courier slugs, countries.

Sources:

* tags: https://www.aftership.com/docs/tracking/enum/delivery-statuses
* subtags: https://www.aftership.com/docs/tracking/enum/delivery-sub-statuses and
  https://help.aftership.com/hc/en-us/articles/360007823253-Subtag-Mapping (Exception_001
  to Exception_012 read there; Exception_016-018 from
  https://support.aftership.com/en/article/learn-about-delivery-sub-statuses-1b0hdlx/).
  Exception_013 ("lost") and the AttemptFail_00x details were not visible in the excerpts
  read; they follow the long-standing table and are marked UNVERIFIED below.
* meta codes: 401, 429, 500 and 4003 appear in the fixtures; the other 40xx codes follow
  the v4 "Errors" page from memory and are marked UNVERIFIED.
* slugs: ``GET /v4/couriers/all`` (fixtures show ``fedex``, ``china-post``, ``4px``).
"""

from __future__ import annotations

from carriers.model import ErrorKind, Problem, Status

__all__ = [
    "ALREADY_EXISTS",
    "COUNTRY_ZONES",
    "COURIER_SLUGS",
    "courier_for_slug",
    "is_finished",
    "iso2",
    "iso3",
    "meta_error",
    "status_for",
    "weight_kg",
]

#: Fallback per tag (an unknown subtag of a known tag maps here).
_TAGS: dict[str, tuple[Status, Problem | None]] = {
    "Pending": (Status.PENDING, None),
    "InfoReceived": (Status.PENDING, None),
    "InTransit": (Status.IN_TRANSIT, None),
    "OutForDelivery": (Status.OUT_FOR_DELIVERY, None),
    "AttemptFail": (Status.DELIVERY_FAILED, None),
    "Delivered": (Status.DELIVERED, None),
    "AvailableForPickup": (Status.READY_FOR_PICKUP, None),
    "Exception": (Status.EXCEPTION, Problem.OTHER),
    # "no tracking information for 30 days since added": AfterShip gave up
    "Expired": (Status.EXCEPTION, Problem.NO_PROGRESS),
}

#: Subtags that mean more than their tag.
_SUBTAGS: dict[str, tuple[Status, Problem | None]] = {
    "InTransit_002": (Status.PICKED_UP, None),  # Acceptance scan
    "AttemptFail_002": (Status.DELIVERY_FAILED, Problem.UNREACHABLE),  # UNVERIFIED: not home
    "AttemptFail_003": (Status.DELIVERY_FAILED, Problem.UNREACHABLE),  # UNVERIFIED: closed
    "Exception_002": (Status.DELIVERY_FAILED, Problem.ADDRESS_PROBLEM),  # Customer moved
    "Exception_003": (Status.EXCEPTION, Problem.REFUSED),  # Customer refused delivery
    "Exception_004": (Status.ON_HOLD, Problem.CUSTOMS),  # Delayed (Customs clearance)
    "Exception_005": (Status.IN_TRANSIT, Problem.DELAYED),  # Delayed (External factors)
    "Exception_006": (Status.ON_HOLD, Problem.HELD),  # Held for payment
    "Exception_007": (Status.DELIVERY_FAILED, Problem.ADDRESS_PROBLEM),  # Incorrect address
    "Exception_008": (Status.READY_FOR_PICKUP, Problem.LOCKER_OVERDUE),  # Pick up missed
    "Exception_009": (Status.EXCEPTION, Problem.OTHER),  # Rejected by carrier
    "Exception_010": (Status.RETURNING, None),  # Returning to sender
    "Exception_011": (Status.RETURNED, None),  # Returned to sender
    "Exception_012": (Status.EXCEPTION, Problem.DAMAGED),  # Shipment damaged
    "Exception_013": (Status.EXCEPTION, Problem.LOST),  # UNVERIFIED: Shipment lost
    "Exception_016": (Status.IN_TRANSIT, Problem.DELAYED),  # Delayed (Processing issue)
    "Exception_017": (Status.IN_TRANSIT, Problem.DELAYED),  # Delayed (Extreme weather)
    "Exception_018": (Status.ON_HOLD, Problem.CUSTOMS),  # Incorrect / missing documents
}

#: Tags and subtags after which AfterShip reports nothing new.
_FINISHED = frozenset({"Delivered", "Expired", "Exception_011"})


def status_for(tag: str | None, subtag: str | None) -> tuple[Status, Problem | None]:
    """The common status and problem for an AfterShip (tag, subtag) pair."""
    if subtag and subtag in _SUBTAGS:
        return _SUBTAGS[subtag]
    for key in (tag, subtag.split("_", 1)[0] if subtag else None):
        if key and key in _TAGS:
            return _TAGS[key]
    return Status.UNKNOWN, None


def is_finished(tag: str | None, subtag: str | None) -> bool:
    """True for delivered, expired and returned-to-sender trackings."""
    return bool({tag, subtag} & _FINISHED)


# --- meta codes --------------------------------------------------------------------------

#: meta.code -> (kind, retryable)
_META: dict[int, tuple[ErrorKind, bool]] = {
    400: (ErrorKind.PROVIDER, False),
    401: (ErrorKind.AUTH, False),
    403: (ErrorKind.AUTH, False),
    404: (ErrorKind.NOT_FOUND, False),
    429: (ErrorKind.RATE_LIMITED, True),
    4001: (ErrorKind.PROVIDER, False),  # UNVERIFIED: invalid JSON data
    4003: (ErrorKind.PROVIDER, False),  # Tracking number already exists (fixture)
    4004: (ErrorKind.NOT_FOUND, False),  # UNVERIFIED: tracking does not exist
    4005: (ErrorKind.INVALID_NUMBER, False),  # UNVERIFIED: tracking_number is invalid
    4010: (ErrorKind.UNSUPPORTED_COURIER, False),  # UNVERIFIED: slug is invalid
    4011: (ErrorKind.PROVIDER, False),  # UNVERIFIED: courier's required fields missing
    4012: (ErrorKind.UNSUPPORTED_COURIER, False),  # UNVERIFIED: cannot detect courier
}

#: meta.code of "Tracking number already exists." (the adapter then GETs the tracking).
ALREADY_EXISTS = 4003


def meta_error(code: int | None) -> tuple[ErrorKind, bool]:
    """(kind, retryable) for a meta.code or HTTP status that is not a success."""
    if code is None:
        return ErrorKind.BAD_RESPONSE, True
    if code in _META:
        return _META[code]
    if code >= 500:
        return ErrorKind.PROVIDER, True
    return ErrorKind.PROVIDER, False


# --- couriers ----------------------------------------------------------------------------

#: canonical courier code -> AfterShip slug. ``jt`` (J&T China) is left out: its slug was
#: not found (only ``jtexpress-vn`` etc. for other countries).
COURIER_SLUGS: dict[str, str] = {
    "ups": "ups",
    "fedex": "fedex",
    "dhl": "dhl",
    "usps": "usps",
    "sf": "sf-express",
    "ems": "china-ems",
    "chinapost": "china-post",
    "yto": "yto",
    "zto": "zto",
    "sto": "sto",
    "yunda": "yunda",
    "jd": "jd",
    "deppon": "deppon",
}

_SLUG_COURIERS: dict[str, str] = {v: k for k, v in COURIER_SLUGS.items()}


def courier_for_slug(slug: str | None) -> str | None:
    """The canonical courier code for an AfterShip slug, or ``None`` when it has none."""
    return _SLUG_COURIERS.get(slug) if slug else None


# --- weights -----------------------------------------------------------------------------

_KG_PER_UNIT = {
    "kg": 1.0,
    "kgs": 1.0,
    "g": 0.001,
    "lb": 0.45359237,
    "lbs": 0.45359237,
    "oz": 0.028349523125,
}


def weight_kg(value: object, unit: object) -> float | None:
    """``shipment_weight`` in kg; ``None`` when the value or its unit is missing or unknown."""
    factor = _KG_PER_UNIT.get(str(unit).strip().lower()) if unit is not None else None
    if factor is None or value is None or isinstance(value, bool):
        return None
    try:
        amount = float(str(value).strip())
    except ValueError:
        return None
    return amount * factor if amount > 0 else None


# --- countries ---------------------------------------------------------------------------

#: ISO 3166-1 alpha-3 -> alpha-2 (AfterShip gives ``country_iso3``; the model keeps alpha-2).
_ISO = (
    "ABW:AW AFG:AF AGO:AO AIA:AI ALA:AX ALB:AL AND:AD ARE:AE ARG:AR ARM:AM ASM:AS ATA:AQ "
    "ATF:TF ATG:AG AUS:AU AUT:AT AZE:AZ BDI:BI BEL:BE BEN:BJ BES:BQ BFA:BF BGD:BD BGR:BG "
    "BHR:BH BHS:BS BIH:BA BLM:BL BLR:BY BLZ:BZ BMU:BM BOL:BO BRA:BR BRB:BB BRN:BN BTN:BT "
    "BVT:BV BWA:BW CAF:CF CAN:CA CCK:CC CHE:CH CHL:CL CHN:CN CIV:CI CMR:CM COD:CD COG:CG "
    "COK:CK COL:CO COM:KM CPV:CV CRI:CR CUB:CU CUW:CW CXR:CX CYM:KY CYP:CY CZE:CZ DEU:DE "
    "DJI:DJ DMA:DM DNK:DK DOM:DO DZA:DZ ECU:EC EGY:EG ERI:ER ESH:EH ESP:ES EST:EE ETH:ET "
    "FIN:FI FJI:FJ FLK:FK FRA:FR FRO:FO FSM:FM GAB:GA GBR:GB GEO:GE GGY:GG GHA:GH GIB:GI "
    "GIN:GN GLP:GP GMB:GM GNB:GW GNQ:GQ GRC:GR GRD:GD GRL:GL GTM:GT GUF:GF GUM:GU GUY:GY "
    "HKG:HK HMD:HM HND:HN HRV:HR HTI:HT HUN:HU IDN:ID IMN:IM IND:IN IOT:IO IRL:IE IRN:IR "
    "IRQ:IQ ISL:IS ISR:IL ITA:IT JAM:JM JEY:JE JOR:JO JPN:JP KAZ:KZ KEN:KE KGZ:KG KHM:KH "
    "KIR:KI KNA:KN KOR:KR KWT:KW LAO:LA LBN:LB LBR:LR LBY:LY LCA:LC LIE:LI LKA:LK LSO:LS "
    "LTU:LT LUX:LU LVA:LV MAC:MO MAF:MF MAR:MA MCO:MC MDA:MD MDG:MG MDV:MV MEX:MX MHL:MH "
    "MKD:MK MLI:ML MLT:MT MMR:MM MNE:ME MNG:MN MNP:MP MOZ:MZ MRT:MR MSR:MS MTQ:MQ MUS:MU "
    "MWI:MW MYS:MY MYT:YT NAM:NA NCL:NC NER:NE NFK:NF NGA:NG NIC:NI NIU:NU NLD:NL NOR:NO "
    "NPL:NP NRU:NR NZL:NZ OMN:OM PAK:PK PAN:PA PCN:PN PER:PE PHL:PH PLW:PW PNG:PG POL:PL "
    "PRI:PR PRK:KP PRT:PT PRY:PY PSE:PS PYF:PF QAT:QA REU:RE ROU:RO RUS:RU RWA:RW SAU:SA "
    "SDN:SD SEN:SN SGP:SG SGS:GS SHN:SH SJM:SJ SLB:SB SLE:SL SLV:SV SMR:SM SOM:SO SPM:PM "
    "SRB:RS SSD:SS STP:ST SUR:SR SVK:SK SVN:SI SWE:SE SWZ:SZ SXM:SX SYC:SC SYR:SY TCA:TC "
    "TCD:TD TGO:TG THA:TH TJK:TJ TKL:TK TKM:TM TLS:TL TON:TO TTO:TT TUN:TN TUR:TR TUV:TV "
    "TWN:TW TZA:TZ UGA:UG UKR:UA UMI:UM URY:UY USA:US UZB:UZ VAT:VA VCT:VC VEN:VE VGB:VG "
    "VIR:VI VNM:VN VUT:VU WLF:WF WSM:WS XKX:XK YEM:YE ZAF:ZA ZMB:ZM ZWE:ZW"
)
_ISO2: dict[str, str] = {a3: a2 for a3, a2 in (pair.split(":") for pair in _ISO.split())}
_ISO3: dict[str, str] = {v: k for k, v in _ISO2.items()}


def iso2(code: str | None) -> str | None:
    """ISO alpha-2 for an alpha-3 code (``"CHN"`` -> ``"CN"``); ``None`` when unknown."""
    return _ISO2.get(code.strip().upper()) if code else None


def iso3(code: str | None) -> str | None:
    """ISO alpha-3 for an alpha-2 code (``"US"`` -> ``"USA"``); ``None`` when unknown."""
    return _ISO3.get(code.strip().upper()) if code else None


#: alpha-3 -> IANA zone for countries with one civil time, used for checkpoint times that
#: come without an offset (AfterShip: "uses the timezone of the checkpoint").
COUNTRY_ZONES: dict[str, str] = {
    "CHN": "Asia/Shanghai",
    "HKG": "Asia/Hong_Kong",
    "MAC": "Asia/Macau",
    "TWN": "Asia/Taipei",
    "JPN": "Asia/Tokyo",
    "KOR": "Asia/Seoul",
    "SGP": "Asia/Singapore",
    "MYS": "Asia/Kuala_Lumpur",
    "THA": "Asia/Bangkok",
    "VNM": "Asia/Ho_Chi_Minh",
    "PHL": "Asia/Manila",
    "IND": "Asia/Kolkata",
    "ARE": "Asia/Dubai",
    "ISR": "Asia/Jerusalem",
    "GBR": "Europe/London",
    "IRL": "Europe/Dublin",
    "DEU": "Europe/Berlin",
    "FRA": "Europe/Paris",
    "NLD": "Europe/Amsterdam",
    "BEL": "Europe/Brussels",
    "ITA": "Europe/Rome",
    "CHE": "Europe/Zurich",
    "AUT": "Europe/Vienna",
    "POL": "Europe/Warsaw",
    "CZE": "Europe/Prague",
    "HUN": "Europe/Budapest",
    "SWE": "Europe/Stockholm",
    "NOR": "Europe/Oslo",
    "DNK": "Europe/Copenhagen",
    "FIN": "Europe/Helsinki",
    "GRC": "Europe/Athens",
}
