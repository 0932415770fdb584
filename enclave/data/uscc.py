"""Unified social credit codes (统一社会信用代码, GB 32100-2015).

An 18-character code: registration authority (1), entity type (1), administrative
division (6), organisation code (9, GB 11714 with its own check character) and a
check character over the first 17, drawn from 31 characters (no I, O, Z, S, V).
"""

from __future__ import annotations

from collections.abc import Iterable

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_WEIGHTS = [pow(3, i, 31) for i in range(17)]

_ORG_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ORG_VALUE = {c: i for i, c in enumerate(_ORG_ALPHABET)}
_ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]

# Registration authority code -> allowed entity-type codes (GB 32100-2015, table 1).
_AUTHORITY_TYPES = {
    "1": "1239",
    "5": "1239",
    "9": "123",
    "Y": "1",
}


class USCCError(ValueError):
    """The reason a string is not a valid USCC."""


def check_char(first17: str) -> str:
    """The 18th character for the given first 17."""
    if len(first17) != 17:
        raise USCCError(f"need 17 characters before the check character, got {len(first17)}")
    total = 0
    for pos, ch in enumerate(first17):
        if ch not in _VALUE:
            raise USCCError(f"character {ch!r} at position {pos + 1} is not allowed")
        total += _VALUE[ch] * _WEIGHTS[pos]
    return ALPHABET[(31 - total % 31) % 31]


def org_check_char(first8: str) -> str:
    """GB 11714 check character of the 9-character organisation code."""
    total = sum(_ORG_VALUE[c] * w for c, w in zip(first8, _ORG_WEIGHTS, strict=True))
    rem = 11 - total % 11
    return "X" if rem == 10 else "0" if rem == 11 else str(rem)


def problem(code: object) -> str | None:
    """Why ``code`` is not a valid USCC, or None if it is."""
    if not isinstance(code, str):
        return f"expected a string, got {type(code).__name__}"
    if len(code) != 18:
        return f"length {len(code)}, expected 18"
    for pos, ch in enumerate(code):
        if ch not in _VALUE:
            return f"character {ch!r} at position {pos + 1} is not allowed"
    authority, kind = code[0], code[1]
    if authority not in _AUTHORITY_TYPES or kind not in _AUTHORITY_TYPES[authority]:
        return f"registration authority/type {code[:2]!r} is not a known combination"
    if not code[2:8].isdigit():
        return "administrative division code (positions 3-8) must be 6 digits"
    expected = check_char(code[:17])
    if code[17] != expected:
        return f"check character {code[17]!r} is wrong (expected {expected!r})"
    return None


def is_valid(code: object) -> bool:
    return problem(code) is None


def validate(code: object) -> str:
    """Return ``code`` if valid, else raise USCCError naming the fault."""
    why = problem(code)
    if why is not None:
        raise USCCError(f"invalid USCC {code!r}: {why}")
    return code  # type: ignore[return-value]


def make(authority_type: str, division: str, org_body: str) -> str:
    """Build a valid USCC from its parts; ``org_body`` is the 8-char organisation body."""
    if len(authority_type) != 2 or len(division) != 6 or len(org_body) != 8:
        raise USCCError("need a 2-char authority/type, 6-digit division and 8-char org body")
    org = org_body + org_check_char(org_body)
    first17 = authority_type + division + org
    return validate(first17 + check_char(first17))


ZHENGZHOU_DIVISIONS = (
    "410102",
    "410103",
    "410104",
    "410105",
    "410106",
    "410108",
    "410122",
    "410181",
    "410182",
    "410183",
    "410184",
    "410185",
)


def from_index(i: int, division: str = "410105", authority_type: str = "91") -> str:
    """A deterministic valid USCC for row number ``i`` (synthetic keys)."""
    if i < 0 or i >= 10**8:
        raise USCCError(f"row number {i} out of range for a synthetic USCC")
    return make(authority_type, division, f"{i:08d}")


def invalid_rows(codes: Iterable[object]) -> list[tuple[int, str]]:
    """(row, reason) for every invalid code, in order."""
    out = []
    for row, code in enumerate(codes):
        why = problem(code)
        if why is not None:
            out.append((row, why))
    return out
