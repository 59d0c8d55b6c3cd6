"""Masking of personal contacts (phones, e-mails, push tokens) before anything is logged or shown."""

from __future__ import annotations

import re

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-])[A-Za-z0-9.-]*\.([A-Za-z]{2,})")
# International (+380...) or national (0XX...) numbers; dates and amounts are left alone.
_PHONE = re.compile(r"(?:\+|\b0)\d(?:[\s()-]?\d){8,13}\b")
_TOKEN = re.compile(r"\b[0-9a-f]{24,}\b")


def mask_contacts(text: str) -> str:
    """Replace e-mails, phone numbers and push tokens in `text` with masked forms."""
    text = _EMAIL.sub(lambda m: f"{m[1]}***@{m[2]}***.{m[3]}", text)
    text = _PHONE.sub(lambda m: m[0][:3] + "*" * max(len(m[0]) - 5, 3) + m[0][-2:], text)
    return _TOKEN.sub(lambda m: m[0][:4] + "…", text)
