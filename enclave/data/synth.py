"""A seeded synthetic city of small firms, split the way real data is.

The platform (郑好融) holds the public credit tables of ``catalogue``, each
keyed by USCC, plus ``firm_profile``: their join, the platform's modelling
view. The bank holds loans, its own account columns and the label (default
within 12 months).

Each firm carries two latent risks: one the public record reflects, one only
the bank's account data reflects (correlated 0.3). Default depends on both, so
the platform's data carries signal beyond the bank's own. Some firms exist at
one side only. Generation draws from one seeded generator in a fixed order, so
a seed always gives the same city.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from enclave.data import dataset, uscc
from enclave.data.catalogue import (
    BANK,
    BANK_COLUMNS,
    COUNTER_GUARANTEE,
    CUSTOMS,
    ENV,
    GUARANTEE,
    GUARANTEES,
    GUARANTOR_COLUMNS,
    INDUSTRIES,
    KEY,
    KEY_COL,
    LABEL,
    LOANS,
    PLATFORM,
    PLATFORM_TABLES,
    PROFILE,
)
from enclave.data.schema import Column, Schema
from enclave.home import Home
from protocols.messages import Fingerprint

AS_OF = pd.Timestamp("2025-06-30")
Values = dict[str, object]


@dataclass(frozen=True)
class City:
    """Everything generated: per party, per dataset, its schema and rows."""

    tables: dict[str, dict[str, tuple[Schema, pd.DataFrame]]]

    @property
    def platform_firms(self) -> np.ndarray:
        return self.tables[PLATFORM][PROFILE][1][KEY].to_numpy()


@dataclass(frozen=True)
class Firms:
    """Every firm of the city, shared and one-sided, with its latent traits."""

    codes: np.ndarray
    districts: np.ndarray
    u_pub: np.ndarray  # risk the public record reflects
    u_bank: np.ndarray  # risk only the bank's account data reflects
    size: np.ndarray  # firm scale, mildly protective
    age_years: np.ndarray
    n_shared: int
    n_bank_only: int

    @property
    def n(self) -> int:
        return len(self.codes)


def _missing(rng: np.random.Generator, s: np.ndarray, rate: float | np.ndarray) -> np.ndarray:
    out = s.astype("float64").copy()
    out[rng.random(len(out)) < rate] = np.nan
    return out


def _only(present: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` where ``present``, else None (the firm is absent from that source)."""
    out = np.asarray(values, dtype=object).copy()
    out[~np.asarray(present, dtype=bool)] = None
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _firms(rng: np.random.Generator, rows: int) -> Firms:
    n_bank_only = round(rows * 0.12)
    n_shared = rows - n_bank_only
    n = n_shared + n_bank_only + round(rows * 0.3)
    # Firm ids: shared first, then bank-only, then platform-only.
    order = rng.permutation(10**7)[:n]
    districts = rng.choice(uscc.ZHENGZHOU_DIVISIONS, size=n)
    codes = np.array([uscc.make("91", d, f"{o:08d}") for d, o in zip(districts, order, strict=True)])
    u_pub = rng.normal(size=n)
    u_bank = 0.3 * u_pub + np.sqrt(1 - 0.09) * rng.normal(size=n)
    size = rng.normal(size=n)
    age_years = np.clip(rng.gamma(2.2, 3.2, size=n) - 0.25 * u_pub, 0.3, 40)
    return Firms(codes, districts, u_pub, u_bank, size, age_years, n_shared, n_bank_only)


def _registration(rng: np.random.Generator, f: Firms) -> Values:
    n, size, u = f.n, f.size, f.u_pub
    p: Values = {}
    p["founded_on"] = (AS_OF - pd.to_timedelta((f.age_years * 365.25).astype(int), unit="D")).to_numpy()
    p["registered_capital_10k"] = _missing(rng, np.round(np.exp(4.2 + 1.1 * size + rng.normal(0, 0.8, n)), 1), 0.02)
    p["industry"] = rng.choice(INDUSTRIES, size=n, p=[0.04, 0.22, 0.1, 0.24, 0.08, 0.08, 0.08, 0.04, 0.07, 0.05])
    st = np.where(u + rng.normal(0, 0.5, n) > 2.3, "abnormal", "active")
    st[(u > 2.0) & (rng.random(n) < 0.15)] = "revoked"
    p["status"] = st
    p["district"] = f.districts
    p["employees"] = _missing(rng, np.round(np.exp(2.3 + 0.9 * size + rng.normal(0, 0.5, n))), 0.1)
    return p


def _judicial(rng: np.random.Generator, f: Firms) -> Values:
    n, u = f.n, f.u_pub
    lam_court = np.exp(-2.3 + 0.9 * u)
    return {
        "dishonest_debtor": (u + rng.normal(0, 0.6, n)) > 2.4,
        "enforcement_cases_3y": rng.poisson(lam_court),
        "defendant_judgments_3y": rng.poisson(lam_court * 1.4 + 0.05 * np.exp(f.size)),
    }


def _tax(rng: np.random.Generator, f: Firms) -> Values:
    n, size, u = f.n, f.size, f.u_pub
    grade_score = -u + rng.normal(0, 0.7, n)
    grade = np.select(
        [grade_score > 1.0, grade_score > -0.2, grade_score > -1.2, grade_score > -2.0], ["A", "B", "M", "C"], "D"
    )
    grade = np.where(f.age_years < 1.0, "M", grade)  # new firms get grade M
    p: Values = {"tax_credit_grade": _only(rng.random(n) >= 0.08, grade)}
    arrears = (u + rng.normal(0, 0.8, n)) > 1.5
    p["tax_arrears"] = arrears
    p["tax_arrears_10k"] = np.where(arrears, np.round(np.exp(1.5 + 0.5 * size + rng.normal(0, 1, n)), 2), 0.0)
    p["vat_paid_12m_10k"] = _missing(rng, np.round(np.exp(2.0 + 1.1 * size - 0.3 * u + rng.normal(0, 0.6, n)), 2), 0.05)
    p["tax_regular_months"] = np.clip(np.round(f.age_years * 12 * _sigmoid(2.0 - 1.3 * u)), 0, 120).astype(int)
    return p


def _social_and_housing(rng: np.random.Generator, f: Firms) -> Values:
    n, size, u = f.n, f.size, f.u_pub
    has_si = rng.random(n) < 0.85
    p: Values = {}
    p["si_insured"] = _missing(rng, np.round(np.exp(1.8 + 0.9 * size + rng.normal(0, 0.4, n))), ~has_si * 1.0)
    si_arr = (u + rng.normal(0, 0.7, n)) > 1.7
    p["si_arrears"] = _only(has_si, si_arr)
    p["si_arrears_10k"] = _missing(
        rng, np.where(si_arr, np.round(np.exp(0.5 + 0.4 * size + rng.normal(0, 0.8, n)), 2), 0.0), ~has_si * 1.0
    )
    has_hf = rng.random(n) < _sigmoid(0.6 + 0.8 * size - 0.5 * u)
    p["hf_contributors"] = np.where(has_hf, np.round(np.exp(1.2 + 0.9 * size + rng.normal(0, 0.4, n)), 1), np.nan)
    p["hf_consecutive_months"] = _missing(
        rng, np.clip(np.round(12 * _sigmoid(2.5 - 1.4 * u + rng.normal(0, 0.8, n))), 0, 12), ~has_hf * 1.0
    )
    return p


def _utilities(rng: np.random.Generator, f: Firms) -> Values:
    n, size, u = f.n, f.size, f.u_pub
    has_util = rng.random(n) < 0.8
    p: Values = {"water_arrears": _only(has_util, (u + rng.normal(0, 0.9, n)) > 1.6)}
    p["water_monthly_t"] = _missing(rng, np.round(np.exp(3.0 + 0.8 * size + rng.normal(0, 0.5, n)), 1), ~has_util * 1.0)
    p["gas_arrears"] = _only(has_util & (rng.random(n) < 0.6), (u + rng.normal(0, 0.9, n)) > 1.7)
    # Falling electricity use relative to size is an early distress sign.
    p["electricity_monthly_kwh"] = _missing(
        rng, np.round(np.exp(7.0 + 1.0 * size - 0.35 * u + rng.normal(0, 0.4, n))), ~has_util * 1.0
    )
    return p


def _admin_ip_tech(rng: np.random.Generator, f: Firms, industry: np.ndarray) -> Values:
    n, size, u = f.n, f.size, f.u_pub
    p: Values = {"admin_penalties_3y": rng.poisson(np.exp(-1.6 + 0.6 * u))}
    p["admin_penalty_10k"] = np.round(np.asarray(p["admin_penalties_3y"]) * np.exp(rng.normal(0, 1, n)), 2)
    p["admin_licences"] = rng.poisson(np.exp(0.3 + 0.3 * size))
    tech = np.isin(industry, ["C", "I", "M"])
    p["trademarks"] = rng.poisson(np.exp(-0.2 + 0.5 * size))
    p["patents"] = rng.poisson(np.exp(-1.0 + 0.6 * size - 0.3 * u + 1.2 * tech))
    p["software_copyrights"] = rng.poisson(np.exp(-1.5 + 1.5 * (industry == "I")))
    p["high_tech"] = tech & (rng.random(n) < _sigmoid(-1.0 + 0.6 * size - 0.6 * u))
    lvl = np.select(
        [rng.random(n) < 0.01, rng.random(n) < 0.03, rng.random(n) < 0.06],
        ["national", "provincial", "municipal"],
        "none",
    )
    p["specialised_level"] = np.where(tech, lvl, "none")
    return p


def _customs_env_estate(rng: np.random.Generator, f: Firms, industry: np.ndarray) -> Values:
    n, size, u = f.n, f.size, f.u_pub
    importer = rng.random(n) < 0.12
    cscore = -u + rng.normal(0, 0.8, n)
    cg = np.select([cscore > 1.2, cscore > 0.0, cscore > -2.0], list(CUSTOMS[:3]), CUSTOMS[3])
    p: Values = {"customs_grade": _only(importer, cg)}
    polluter = np.isin(industry, ["C", "E"]) & (rng.random(n) < 0.5)
    escore = -0.6 * u + rng.normal(0, 0.8, n)
    eg = np.select([escore > 0.8, escore > -0.3, escore > -1.2, escore > -2.0], list(ENV[:4]), ENV[4])
    p["env_grade"] = _only(polluter, eg)
    p["property_mortgages"] = _missing(rng, rng.poisson(np.exp(-1.0 + 0.5 * size + 0.3 * u)), 0.3)
    p["property_seized"] = _only(rng.random(n) < 0.7, (u + rng.normal(0, 0.5, n)) > 2.2)
    return p


def _platform_values(rng: np.random.Generator, f: Firms) -> Values:
    p = _registration(rng, f)
    p.update(_judicial(rng, f))
    p.update(_tax(rng, f))
    p.update(_social_and_housing(rng, f))
    p.update(_utilities(rng, f))
    industry = np.asarray(p["industry"])
    p.update(_admin_ip_tech(rng, f, industry))
    p.update(_customs_env_estate(rng, f, industry))
    return p


def _platform_tables(
    rng: np.random.Generator, f: Firms, p: Values, seed: int
) -> dict[str, tuple[Schema, pd.DataFrame]]:
    platform_idx = np.r_[np.arange(f.n_shared), np.arange(f.n_shared + f.n_bank_only, f.n)]
    tables: dict[str, tuple[Schema, pd.DataFrame]] = {}
    profile_cols: list[Column] = [KEY_COL]
    profile = pd.DataFrame({KEY: f.codes[platform_idx]})
    for name, item, cols in PLATFORM_TABLES:
        # Firms absent from a source table: a realistic share per table.
        coverage = 1.0 if name == "registration" else 0.97
        present = rng.random(len(platform_idx)) < coverage
        idx = platform_idx[present]
        frame = pd.DataFrame({KEY: f.codes[idx]})
        for c in cols:
            frame[c.name] = _as_column(c, np.asarray(p[c.name])[idx])
        tables[name] = (Schema(name=name, owner=PLATFORM, key=KEY, columns=(KEY_COL, *cols), description=item), frame)
        profile = profile.merge(frame, on=KEY, how="left")
        profile_cols.extend(cols)
    profile = profile.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    description = "企业公共信用画像: the platform's modelling view, one row per firm"
    tables[PROFILE] = (Schema(PROFILE, PLATFORM, KEY, tuple(profile_cols), description), profile)
    return tables


def _bank_values(rng: np.random.Generator, f: Firms, seed: int) -> Values:
    bidx = np.arange(f.n_shared + f.n_bank_only)
    m = len(bidx)
    ub, up, sz = f.u_bank[bidx], f.u_pub[bidx], f.size[bidx]
    b: Values = {KEY: f.codes[bidx]}
    b["loan_id"] = [f"LN{seed % 1000:03d}{i:07d}" for i in range(m)]
    b["issued_on"] = (AS_OF - pd.to_timedelta(rng.integers(365, 730, m), unit="D")).to_numpy()
    b["loan_amount_10k"] = np.round(np.exp(4.0 + 0.8 * sz + rng.normal(0, 0.5, m)), 1)
    b["loan_term_months"] = rng.choice([6, 12, 24, 36], size=m, p=[0.15, 0.5, 0.25, 0.1])
    b["guarantee"] = rng.choice(GUARANTEE, size=m, p=[0.4, 0.3, 0.2, 0.1])
    b["acct_inflow_10k"] = _missing(rng, np.round(np.exp(3.0 + 1.0 * sz - 0.35 * ub + rng.normal(0, 0.5, m)), 2), 0.04)
    b["acct_inflow_cv"] = _missing(rng, np.round(np.exp(-0.8 + 0.35 * ub + rng.normal(0, 0.3, m)), 3), 0.04)
    b["acct_months"] = np.clip(np.round(rng.gamma(2.0, 18, m)), 1, 240).astype(int)
    b["acct_balance_10k"] = _missing(rng, np.round(np.exp(2.0 + 0.9 * sz - 0.3 * ub + rng.normal(0, 0.6, m)), 2), 0.04)
    overdue = rng.poisson(np.exp(-1.5 + 0.8 * ub))
    b["overdue_count_24m"] = overdue
    b["max_overdue_days_24m"] = np.where(
        overdue > 0, np.round(np.exp(2.2 + 0.5 * ub + rng.normal(0, 0.6, m))), 0
    ).astype(int)
    b["credit_utilisation"] = _missing(
        rng, np.round(np.clip(_sigmoid(0.3 + 0.7 * ub + rng.normal(0, 0.6, m)), 0, 1), 3), 0.05
    )
    # Default: both latent risks matter, plus nonlinear hits from hard events.
    credit = np.asarray(b["guarantee"]) == "credit"
    logit = -2.35 + 0.95 * up + 0.8 * ub - 0.15 * sz + 0.6 * (up > 1.5) + 0.4 * (ub > 1.5) + 0.05 * credit
    b[LABEL] = (rng.random(m) < _sigmoid(logit)).astype(int)
    return b


def _bank_table(b: Values, seed: int, owner: str = BANK) -> tuple[Schema, pd.DataFrame]:
    loans = pd.DataFrame(b)
    for c in BANK_COLUMNS:
        loans[c.name] = _as_column(c, loans[c.name].to_numpy())
    loans = loans.sample(frac=1.0, random_state=seed + 1).reset_index(drop=True)
    description = "小微企业贷款: loans, the bank's own account columns and the label"
    return Schema(LOANS, owner, KEY, (KEY_COL, *BANK_COLUMNS), description), loans


def _other_bank(firms: Firms, rows: int, seed: int) -> Values:
    """Another bank's loan book: its own draw of the city's firms, with the same risks behind defaults."""
    rng = np.random.default_rng([seed, 101])
    pick = np.sort(rng.choice(firms.n, size=min(rows, firms.n), replace=False))
    sub = Firms(firms.codes[pick], firms.districts[pick], firms.u_pub[pick], firms.u_bank[pick], firms.size[pick],
                firms.age_years[pick], len(pick), 0)  # fmt: skip
    return _bank_values(rng, sub, seed)


def _guarantor_table(firms: Firms, seed: int) -> tuple[Schema, pd.DataFrame]:
    """A guarantee company's view of the firms it has guaranteed: signal on the bank-side risk."""
    rng = np.random.default_rng([seed, 202])
    pick = np.sort(rng.choice(firms.n, size=int(0.55 * firms.n), replace=False))
    ub, up, sz = firms.u_bank[pick], firms.u_pub[pick], firms.size[pick]
    n = len(pick)
    g: Values = {KEY: firms.codes[pick]}
    g["guarantees_3y"] = rng.poisson(np.exp(0.2 + 0.4 * sz))
    active = rng.random(n) < 0.6
    g["guaranteed_10k"] = np.where(active, np.round(np.exp(3.5 + 0.7 * sz + rng.normal(0, 0.5, n)), 1), np.nan)
    g["compensations_3y"] = rng.poisson(np.exp(-2.2 + 0.9 * ub + 0.3 * up))
    g["counter_guarantee"] = rng.choice(COUNTER_GUARANTEE, size=n, p=[0.3, 0.3, 0.15, 0.25])
    frame = pd.DataFrame(g)
    for c in GUARANTOR_COLUMNS:
        frame[c.name] = _as_column(c, frame[c.name].to_numpy())
    description = "担保业务: a guarantee company's own record of the firms it guaranteed"
    return Schema(GUARANTEES, "guarantor", KEY, (KEY_COL, *GUARANTOR_COLUMNS), description), frame


def generate(rows: int, seed: int = 20241, banks: tuple[str, ...] = (BANK,), guarantor: str | None = None) -> City:
    """A city whose first bank holds ``rows`` loans (about 88% of its borrowers are on the
    platform); further ``banks`` hold their own draws of the same firms, and a ``guarantor``
    its guarantees. The first bank's and the platform's tables depend on ``seed`` alone."""
    if rows < 50:
        raise ValueError(f"rows must be at least 50, got {rows}")
    rng = np.random.default_rng(seed)
    firms = _firms(rng, rows)
    values = _platform_values(rng, firms)
    tables = {PLATFORM: _platform_tables(rng, firms, values, seed)}
    tables[banks[0]] = {LOANS: _bank_table(_bank_values(rng, firms, seed), seed, banks[0])}
    for i, name in enumerate(banks[1:], start=1):
        tables[name] = {LOANS: _bank_table(_other_bank(firms, rows, seed + i), seed + i, name)}
    if guarantor is not None:
        schema, frame = _guarantor_table(firms, seed)
        tables[guarantor] = {GUARANTEES: (Schema(schema.name, guarantor, KEY, schema.columns, schema.description),
                                          frame)}  # fmt: skip
    return City(tables)


def _absent(x: object) -> bool:
    return x is None or (isinstance(x, float) and np.isnan(x))


_CASTS: dict[str, Callable[[np.ndarray], pd.Series]] = {
    "float": lambda v: pd.Series(v, dtype="float64"),
    "int": lambda v: pd.Series(pd.array(pd.Series(v, dtype="float64").round(), dtype="Int64")),
    "bool": lambda v: pd.Series(pd.array([None if _absent(x) else bool(x) for x in v], dtype="boolean")),
    "date": lambda v: pd.Series(pd.to_datetime(v)),
    "category": lambda v: pd.Series([None if _absent(x) else str(x) for x in v], dtype=object),
    "string": lambda v: pd.Series([str(x) for x in v], dtype=object),
    "uscc": lambda v: pd.Series([str(x) for x in v], dtype=object),
}


def _as_column(col: Column, values: np.ndarray) -> pd.Series:
    return _CASTS[col.type](np.asarray(values, dtype=object) if col.type in ("bool", "category") else values)


def write_city(home: Home, city: City) -> dict[str, dict[str, Fingerprint]]:
    """Write every dataset of a city into its owner's domain; return the fingerprints."""
    out: dict[str, dict[str, Fingerprint]] = {}
    for party, datasets in city.tables.items():
        ph = home.party(party)
        out[party] = {
            name: dataset.write(ph.dataset_dir(name), schema, frame) for name, (schema, frame) in datasets.items()
        }
    return out
