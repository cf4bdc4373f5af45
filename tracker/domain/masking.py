"""Masking personal data before it is shown anywhere (logs, reports, alerts, CLI)."""

from __future__ import annotations

import re

__all__ = ["mask_phone", "mask_phones_in_text"]

_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")


def mask_phone(phone: str | None) -> str | None:
    """``13800138000`` → ``138****8000``; short or odd values keep only their last 2 digits."""
    if phone is None:
        return None
    digits = phone.strip()
    if len(digits) >= 11:
        return f"{digits[:3]}****{digits[-4:]}"
    if len(digits) > 2:
        return "*" * (len(digits) - 2) + digits[-2:]
    return "*" * len(digits)


def mask_phones_in_text(text: str) -> str:
    """Mask every mainland mobile number found in free text (e.g. a courier's scan text)."""
    return _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
