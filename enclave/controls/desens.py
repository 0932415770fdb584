"""Desensitisation (脱敏) of identifiers in anything that leaves a domain.

Masking keeps a value recognisable to its owner but not to others; keyed
hashing (HMAC-SHA256 with a per-job key that stays with the data owner) gives
stable tokens for joining within one job's outputs; generalisation coarsens
dates to months and amounts to bands. Invalid inputs raise ``DesensError``
naming what is wrong, never echoing the whole value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
import re
import secrets
from collections.abc import Sequence

from enclave.data import uscc
from protocols.errors import DataError

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
_PHONE = re.compile(r"^(?:\+?86[- ]?)?(1[3-9]\d{9})$")


class DesensError(DataError):
    """An identifier could not be desensitised because it is not valid."""


def new_job_key() -> bytes:
    return secrets.token_bytes(32)


def id_number_problem(value: object) -> str | None:
    """Why a string is not a valid 18-digit resident ID number (GB 11643-1999)."""
    if not isinstance(value, str):
        return "not a string"
    v = value.upper()
    if len(v) != 18 or not v[:17].isdigit() or v[17] not in "0123456789X":
        return "expected 17 digits and a check character"
    try:
        dt.date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        return "birth date (positions 7-14) is not a real date"
    if ID_CHECK[sum(int(c) * w for c, w in zip(v[:17], ID_WEIGHTS, strict=True)) % 11] != v[17]:
        return "check character is wrong"
    return None


def _need(kind: str, why: str | None) -> None:
    if why is not None:
        raise DesensError(f"invalid {kind}: {why}")


def mask_uscc(code: str) -> str:
    """Keep the authority/type and division (who registered it, where), hide the rest."""
    _need("USCC", uscc.problem(code))
    return code[:8] + "*" * 8 + code[16:]


def mask_id_number(value: str) -> str:
    """Keep the region (first 6) and the check character."""
    _need("ID number", id_number_problem(value))
    return value[:6] + "*" * 11 + value[17].upper()


def mask_name(name: str) -> str:
    """Chinese names keep the surname (张**); Latin names keep initials."""
    n = (name or "").strip()
    if not n:
        raise DesensError("invalid name: empty")
    if re.search(r"[\u4e00-\u9fff]", n):
        return n[0] + "*" * (len(n) - 1) if len(n) > 1 else "*"
    return " ".join(p[0] + "*" * (len(p) - 1) for p in n.split())


def mask_phone(phone: str) -> str:
    m = _PHONE.match((phone or "").replace(" ", ""))
    if m is None:
        raise DesensError("invalid phone: expected an 11-digit mainland mobile number")
    d = m.group(1)
    return d[:3] + "****" + d[7:]


def mask_address(address: str, keep: int = 6) -> str:
    """Keep the leading part (province/city/district), hide the street and number."""
    a = (address or "").strip()
    if len(a) < 2:
        raise DesensError("invalid address: too short")
    head = a[: min(keep, len(a) - 1)]
    return head + "*" * (len(a) - len(head))


def hmac_token(value: str, key: bytes, kind: str = "") -> str:
    """A stable 24-hex token for ``value`` under a per-job key (truncated HMAC-SHA256)."""
    if len(key) < 16:
        raise DesensError("HMAC key must be at least 16 bytes")
    if not isinstance(value, str) or not value:
        raise DesensError(f"invalid {kind or 'value'} for keyed hashing: empty or not a string")
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:24]


def month(date: dt.date | str) -> str:
    """Generalise a date to its month, YYYY-MM."""
    if isinstance(date, str):
        try:
            date = dt.date.fromisoformat(date[:10])
        except ValueError:
            raise DesensError("invalid date: expected YYYY-MM-DD") from None
    return f"{date.year:04d}-{date.month:02d}"


DEFAULT_BANDS = (0, 10, 50, 100, 500, 1000, 5000)


def amount_band(amount: float, edges: Sequence[float] = DEFAULT_BANDS) -> str:
    """Generalise an amount to its band, e.g. 37.5 -> '[10, 50)'."""
    if amount is None or amount != amount or amount < 0:
        raise DesensError("invalid amount: must be a non-negative number")
    if list(edges) != sorted(edges) or len(edges) < 2:
        raise DesensError("band edges must be increasing")
    for lo, hi in itertools.pairwise(edges):
        if lo <= amount < hi:
            return f"[{lo:g}, {hi:g})"
    return f">={edges[-1]:g}" if amount >= edges[-1] else f"<{edges[0]:g}"
