"""Masking of personal contacts (phones, e-mails, push tokens) before anything is logged or shown."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-])[A-Za-z0-9.-]*\.([A-Za-z]{2,})")
# International (+380...) or national (0XX...) numbers; dates and amounts are left alone.
_PHONE = re.compile(r"(?:\+|\b0)\d(?:[\s()-]?\d){8,13}\b")
_TOKEN = re.compile(r"\b[0-9a-f]{24,}\b")


def mask_contacts(text: str) -> str:
    """Replace e-mails, phone numbers and push tokens in `text` with masked forms."""
    text = _EMAIL.sub(lambda m: f"{m[1]}***@{m[2]}***.{m[3]}", text)
    text = _PHONE.sub(lambda m: m[0][:3] + "*" * max(len(m[0]) - 5, 3) + m[0][-2:], text)
    return _TOKEN.sub(lambda m: m[0][:4] + "…", text)


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$")
# A calendar date (with an optional time) inside free text. `mask_contacts` would read its digits
# as a phone number; it is set aside first, unless digits or dashes continue it (a phone could).
_EMBEDDED_DATE = re.compile(
    r"(?<![\d+])(?:19|20)\d{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?![\d-])"
)


def mask_value(value: Any) -> str:
    """A value as text safe to show: contacts masked in free text; numbers and dates kept legible."""
    if value is None:
        return "null"
    if isinstance(value, (bool, int, float, date, datetime)):
        return str(value)
    text = str(value)
    if _ISO_DATE.match(text):
        return text
    dates = [m.group(0) for m in _EMBEDDED_DATE.finditer(text)]
    if not dates:
        return mask_contacts(text)
    parts = _EMBEDDED_DATE.split(text)
    return "".join(mask_contacts(part) + (dates[i] if i < len(dates) else "") for i, part in enumerate(parts))
