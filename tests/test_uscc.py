"""USCC check characters (GB 32100-2015), valid and invalid codes."""

from __future__ import annotations

import pytest

from enclave.data import uscc

# Published codes of real enterprises (from public business registrations).
REAL = ["91350100M000100Y43", "91110000802100433B", "91440300708461136T"]


@pytest.mark.parametrize("code", REAL)
def test_real_codes_validate(code: str) -> None:
    assert uscc.problem(code) is None


def test_generated_codes_are_valid_and_distinct() -> None:
    codes = [uscc.from_index(i, division=d) for i in range(300) for d in ("410102", "410181")]
    assert len(set(codes)) == len(codes)
    assert all(uscc.is_valid(c) for c in codes)


def test_every_single_character_change_is_caught() -> None:
    code = uscc.from_index(4242)
    for pos in range(18):
        for ch in uscc.ALPHABET:
            if ch == code[pos]:
                continue
            mutated = code[:pos] + ch + code[pos + 1 :]
            assert not uscc.is_valid(mutated), (pos, ch)


def test_adjacent_transposition_is_caught() -> None:
    code = uscc.from_index(123457)
    for pos in range(8, 16):
        if code[pos] != code[pos + 1]:
            swapped = code[:pos] + code[pos + 1] + code[pos] + code[pos + 2 :]
            assert not uscc.is_valid(swapped)


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("91350100M000100Y4", "length 17"),
        ("91350100M000100Y433", "length 19"),
        ("91350100M000100Y44", "check character '4' is wrong (expected '3')"),
        ("91350100M0001O0Y43", "character 'O' at position 14"),
        ("91350100M0001I0Y43", "character 'I' at position 14"),
        ("X1350100M000100Y43", "registration authority/type 'X1'"),  # X is in the alphabet, not an authority
        ("97350100M000100Y43", "registration authority/type '97'"),
        ("913501A0M000100Y43", "administrative division"),
        ("91350100m000100y43", "character 'm' at position 9"),
    ],
)
def test_invalid_codes_name_the_fault(code: str, reason: str) -> None:
    why = uscc.problem(code)
    assert why is not None and reason in why
    with pytest.raises(uscc.USCCError, match="invalid USCC"):
        uscc.validate(code)


def test_non_string_is_rejected() -> None:
    assert uscc.problem(913501) == "expected a string, got int"


def test_invalid_rows_reports_positions() -> None:
    good = uscc.from_index(1)
    wrong_check = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert [r for r, _ in uscc.invalid_rows([good, "bad", good, wrong_check])] == [1, 3]
