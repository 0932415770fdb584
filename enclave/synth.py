"""A seeded synthetic city of small firms, split the way real data is.

The platform (郑好融) holds public credit tables that follow the catalogue in the
seed documents (registration, court, tax, social insurance, housing fund,
utilities, administrative penalties, IP, tech credentials, customs,
environment, real estate), each keyed by USCC, plus ``firm_profile``: their
join, the platform's modelling view. The bank holds loans, its own account
columns and the label (default within 12 months).

Each firm carries two latent risks: one the public record reflects, one only the
bank's account data reflects (correlated 0.3). Default depends on both, so the
platform's data carries signal beyond the bank's own. Some firms exist at one
side only.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from enclave import consent, policy, uscc
from enclave import schema as sch
from enclave.config import Home
from enclave.schema import Column, Fingerprint, Schema

PLATFORM = "platform"
BANK = "bank"
PROFILE = "firm_profile"
LOANS = "loans"
KEY = "uscc"
LABEL = "default_12m"

INDUSTRIES = ("A", "C", "E", "F", "G", "H", "I", "K", "L", "M")  # GB/T 4754 sections
STATUSES = ("active", "abnormal", "revoked")
TAX_GRADES = ("A", "B", "M", "C", "D")
SPECIALISED = ("none", "municipal", "provincial", "national")  # 专精特新 level
CUSTOMS = ("advanced", "general", "regular", "dishonest")
ENV = ("green", "blue", "yellow", "red", "black")
GUARANTEE = ("credit", "guarantee", "mortgage", "pledge")
AS_OF = pd.Timestamp("2025-06-30")


def _c(name: str, type_: str, desc: str, access: str = "collected", **kw: object) -> Column:
    return Column(name=name, type=type_, description=desc, access=access, **kw)  # type: ignore[arg-type]


KEY_COL = Column(name=KEY, type="uscc", role="key", nullable=False, description="统一社会信用代码")

# Platform tables: (dataset, catalogue item, columns). access="interface" marks
# columns the catalogue says are pulled by interface call (接口调用) under the
# firm's authorisation.
PLATFORM_TABLES: tuple[tuple[str, str, tuple[Column, ...]], ...] = (
    (
        "registration",
        "市场主体登记信息",
        (
            _c("founded_on", "date", "成立日期", nullable=False),
            _c("registered_capital_10k", "float", "注册资本(万元)"),
            _c("industry", "category", "所属行业(国民经济行业分类门类)", values=INDUSTRIES),
            _c("status", "category", "登记状态/经营异常", values=STATUSES),
            _c("district", "category", "住所所在区县", values=uscc.ZHENGZHOU_DIVISIONS),
            _c("employees", "int", "从业人数(企业年报)"),
        ),
    ),
    (
        "judicial",
        "司法信息",
        (
            _c("dishonest_debtor", "bool", "失信被执行人"),
            _c("enforcement_cases_3y", "int", "近三年强制执行案件数"),
            _c("defendant_judgments_3y", "int", "近三年作为被告的判决数"),
        ),
    ),
    (
        "tax",
        "纳税信息",
        (
            _c("tax_credit_grade", "category", "纳税信用等级", values=TAX_GRADES),
            _c("tax_arrears", "bool", "当前是否欠税", access="interface"),
            _c("tax_arrears_10k", "float", "欠税金额(万元)", access="interface"),
            _c("vat_paid_12m_10k", "float", "近一年增值税实际缴税金额(万元)", access="interface"),
            _c("tax_regular_months", "int", "连续正常缴税周期(月)", access="interface"),
        ),
    ),
    (
        "social_insurance",
        "社会保险信息",
        (
            _c("si_insured", "int", "参保人数", access="interface"),
            _c("si_arrears", "bool", "当前是否欠缴", access="interface"),
            _c("si_arrears_10k", "float", "欠缴金额合计(万元)", access="interface"),
        ),
    ),
    (
        "housing_fund",
        "住房公积金信息",
        (
            _c("hf_contributors", "float", "近一年月均缴存人数"),
            _c("hf_consecutive_months", "int", "近一年连续正常缴纳周期(月)"),
        ),
    ),
    (
        "utilities",
        "水电气缴费信息",
        (
            _c("water_arrears", "bool", "水费欠费"),
            _c("water_monthly_t", "float", "月均用水量(吨)"),
            _c("gas_arrears", "bool", "燃气费欠费"),
            _c("electricity_monthly_kwh", "float", "月均用电量(千瓦时)", access="interface"),
        ),
    ),
    (
        "administrative",
        "行政管理信息",
        (
            _c("admin_penalties_3y", "int", "近三年行政处罚次数"),
            _c("admin_penalty_10k", "float", "近三年罚款金额(万元)"),
            _c("admin_licences", "int", "有效行政许可数"),
        ),
    ),
    (
        "ip",
        "商标/专利/软件著作权信息",
        (
            _c("trademarks", "int", "商标数"),
            _c("patents", "int", "专利数", access="interface"),
            _c("software_copyrights", "int", "软件著作权数"),
        ),
    ),
    (
        "tech",
        "科技研发信息",
        (
            _c("high_tech", "bool", "国家级高新技术企业"),
            _c("specialised_level", "category", "专精特新认定级别", values=SPECIALISED),
        ),
    ),
    (
        "customs_env",
        "进出口/环境领域信息",
        (
            _c("customs_grade", "category", "海关信用等级", values=CUSTOMS),
            _c("env_grade", "category", "环保信用评级", values=ENV),
        ),
    ),
    (
        "real_estate",
        "不动产信息",
        (
            _c("property_mortgages", "int", "不动产抵押登记数", access="interface"),
            _c("property_seized", "bool", "不动产被查封", access="interface"),
        ),
    ),
)

BANK_COLUMNS: tuple[Column, ...] = (
    _c("loan_id", "string", "借据号", role="meta", nullable=False),
    _c("issued_on", "date", "放款日期", role="meta", nullable=False),
    _c("loan_amount_10k", "float", "贷款金额(万元)", nullable=False),
    _c("loan_term_months", "int", "贷款期限(月)", nullable=False),
    _c("guarantee", "category", "担保方式", values=GUARANTEE, nullable=False),
    _c("acct_inflow_10k", "float", "月均账户流入(万元)"),
    _c("acct_inflow_cv", "float", "账户流入波动系数"),
    _c("acct_months", "int", "开户月数", nullable=False),
    _c("acct_balance_10k", "float", "日均存款余额(万元)"),
    _c("overdue_count_24m", "int", "近24个月逾期次数", nullable=False),
    _c("max_overdue_days_24m", "int", "近24个月最长逾期天数", nullable=False),
    _c("credit_utilisation", "float", "授信使用率"),
    Column(name=LABEL, type="int", role="label", nullable=False, description="12个月内违约(1=违约)"),
)


@dataclass(frozen=True)
class City:
    """Everything generated: per party, per dataset, its schema and rows."""

    tables: dict[str, dict[str, tuple[Schema, pd.DataFrame]]]


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


def generate(rows: int, seed: int = 20241) -> City:
    """A city whose bank holds ``rows`` loans; about 88% of its borrowers are on the platform."""
    if rows < 50:
        raise ValueError(f"rows must be at least 50, got {rows}")
    rng = np.random.default_rng(seed)
    n_bank_only = round(rows * 0.12)
    n_shared = rows - n_bank_only
    n_platform_only = round(rows * 0.3)
    n = n_shared + n_bank_only + n_platform_only
    # Firm ids: shared first, then bank-only, then platform-only.
    order = rng.permutation(10**7)[:n]
    districts = rng.choice(uscc.ZHENGZHOU_DIVISIONS, size=n)
    codes = np.array([uscc.make("91", d, f"{o:08d}") for d, o in zip(districts, order, strict=True)])

    u_pub = rng.normal(size=n)
    u_bank = 0.3 * u_pub + np.sqrt(1 - 0.09) * rng.normal(size=n)
    size = rng.normal(size=n)  # firm scale, mildly protective
    age_years = np.clip(rng.gamma(2.2, 3.2, size=n) - 0.25 * u_pub, 0.3, 40)

    # ---- platform side -----------------------------------------------------
    p = {}
    p["founded_on"] = (AS_OF - pd.to_timedelta((age_years * 365.25).astype(int), unit="D")).to_numpy()
    p["registered_capital_10k"] = _missing(rng, np.round(np.exp(4.2 + 1.1 * size + rng.normal(0, 0.8, n)), 1), 0.02)
    p["industry"] = rng.choice(INDUSTRIES, size=n, p=[0.04, 0.22, 0.1, 0.24, 0.08, 0.08, 0.08, 0.04, 0.07, 0.05])
    st = np.where(u_pub + rng.normal(0, 0.5, n) > 2.3, "abnormal", "active")
    st[(u_pub > 2.0) & (rng.random(n) < 0.15)] = "revoked"
    p["status"] = st
    p["district"] = districts
    p["employees"] = _missing(rng, np.round(np.exp(2.3 + 0.9 * size + rng.normal(0, 0.5, n))), 0.1)

    lam_court = np.exp(-2.3 + 0.9 * u_pub)
    p["dishonest_debtor"] = (u_pub + rng.normal(0, 0.6, n)) > 2.4
    p["enforcement_cases_3y"] = rng.poisson(lam_court)
    p["defendant_judgments_3y"] = rng.poisson(lam_court * 1.4 + 0.05 * np.exp(size))

    grade_score = -u_pub + rng.normal(0, 0.7, n)
    grade = np.select(
        [grade_score > 1.0, grade_score > -0.2, grade_score > -1.2, grade_score > -2.0], ["A", "B", "M", "C"], "D"
    )
    grade = np.where(age_years < 1.0, "M", grade)  # new firms get grade M
    p["tax_credit_grade"] = _only(rng.random(n) >= 0.08, grade)
    arrears = (u_pub + rng.normal(0, 0.8, n)) > 1.5
    p["tax_arrears"] = arrears
    p["tax_arrears_10k"] = np.where(arrears, np.round(np.exp(1.5 + 0.5 * size + rng.normal(0, 1, n)), 2), 0.0)
    p["vat_paid_12m_10k"] = _missing(
        rng, np.round(np.exp(2.0 + 1.1 * size - 0.3 * u_pub + rng.normal(0, 0.6, n)), 2), 0.05
    )
    p["tax_regular_months"] = np.clip(np.round(age_years * 12 * _sigmoid(2.0 - 1.3 * u_pub)), 0, 120).astype(int)

    has_si = rng.random(n) < 0.85
    p["si_insured"] = _missing(rng, np.round(np.exp(1.8 + 0.9 * size + rng.normal(0, 0.4, n))), ~has_si * 1.0)
    si_arr = (u_pub + rng.normal(0, 0.7, n)) > 1.7
    p["si_arrears"] = _only(has_si, si_arr)
    p["si_arrears_10k"] = _missing(
        rng, np.where(si_arr, np.round(np.exp(0.5 + 0.4 * size + rng.normal(0, 0.8, n)), 2), 0.0), ~has_si * 1.0
    )

    has_hf = rng.random(n) < _sigmoid(0.6 + 0.8 * size - 0.5 * u_pub)
    p["hf_contributors"] = np.where(has_hf, np.round(np.exp(1.2 + 0.9 * size + rng.normal(0, 0.4, n)), 1), np.nan)
    p["hf_consecutive_months"] = _missing(
        rng, np.clip(np.round(12 * _sigmoid(2.5 - 1.4 * u_pub + rng.normal(0, 0.8, n))), 0, 12), ~has_hf * 1.0
    )

    has_util = rng.random(n) < 0.8
    p["water_arrears"] = _only(has_util, (u_pub + rng.normal(0, 0.9, n)) > 1.6)
    p["water_monthly_t"] = _missing(rng, np.round(np.exp(3.0 + 0.8 * size + rng.normal(0, 0.5, n)), 1), ~has_util * 1.0)
    p["gas_arrears"] = _only(has_util & (rng.random(n) < 0.6), (u_pub + rng.normal(0, 0.9, n)) > 1.7)
    # Falling electricity use relative to size is an early distress sign.
    p["electricity_monthly_kwh"] = _missing(
        rng, np.round(np.exp(7.0 + 1.0 * size - 0.35 * u_pub + rng.normal(0, 0.4, n))), ~has_util * 1.0
    )

    p["admin_penalties_3y"] = rng.poisson(np.exp(-1.6 + 0.6 * u_pub))
    p["admin_penalty_10k"] = np.round(p["admin_penalties_3y"] * np.exp(rng.normal(0, 1, n)), 2)
    p["admin_licences"] = rng.poisson(np.exp(0.3 + 0.3 * size))

    tech = np.isin(p["industry"], ["C", "I", "M"])
    p["trademarks"] = rng.poisson(np.exp(-0.2 + 0.5 * size))
    p["patents"] = rng.poisson(np.exp(-1.0 + 0.6 * size - 0.3 * u_pub + 1.2 * tech))
    p["software_copyrights"] = rng.poisson(np.exp(-1.5 + 1.5 * (p["industry"] == "I")))
    p["high_tech"] = tech & (rng.random(n) < _sigmoid(-1.0 + 0.6 * size - 0.6 * u_pub))
    lvl = np.select(
        [rng.random(n) < 0.01, rng.random(n) < 0.03, rng.random(n) < 0.06],
        ["national", "provincial", "municipal"],
        "none",
    )
    p["specialised_level"] = np.where(tech, lvl, "none")

    importer = rng.random(n) < 0.12
    cscore = -u_pub + rng.normal(0, 0.8, n)
    cg = np.select([cscore > 1.2, cscore > 0.0, cscore > -2.0], ["advanced", "general", "regular"], "dishonest")
    p["customs_grade"] = _only(importer, cg)
    polluter = np.isin(p["industry"], ["C", "E"]) & (rng.random(n) < 0.5)
    escore = -0.6 * u_pub + rng.normal(0, 0.8, n)
    eg = np.select(
        [escore > 0.8, escore > -0.3, escore > -1.2, escore > -2.0], ["green", "blue", "yellow", "red"], "black"
    )
    p["env_grade"] = _only(polluter, eg)

    p["property_mortgages"] = _missing(rng, rng.poisson(np.exp(-1.0 + 0.5 * size + 0.3 * u_pub)), 0.3)
    p["property_seized"] = _only(rng.random(n) < 0.7, (u_pub + rng.normal(0, 0.5, n)) > 2.2)

    platform_idx = np.r_[np.arange(n_shared), np.arange(n_shared + n_bank_only, n)]
    tables: dict[str, dict[str, tuple[Schema, pd.DataFrame]]] = {PLATFORM: {}, BANK: {}}
    profile_cols: list[Column] = [KEY_COL]
    profile = pd.DataFrame({KEY: codes[platform_idx]})
    for name, item, cols in PLATFORM_TABLES:
        # Firms absent from a source table: a realistic share per table.
        coverage = 1.0 if name == "registration" else 0.97
        present = rng.random(len(platform_idx)) < coverage
        idx = platform_idx[present]
        frame = pd.DataFrame({KEY: codes[idx]})
        for c in cols:
            frame[c.name] = _as_column(c, p[c.name][idx])
        schema = Schema(name=name, owner=PLATFORM, key=KEY, columns=(KEY_COL, *cols), description=item)
        tables[PLATFORM][name] = (schema, frame)
        profile = profile.merge(frame, on=KEY, how="left")
        profile_cols.extend(cols)
    profile = profile.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    tables[PLATFORM][PROFILE] = (
        Schema(
            name=PROFILE,
            owner=PLATFORM,
            key=KEY,
            columns=tuple(profile_cols),
            description="企业公共信用画像: the platform's modelling view, one row per firm",
        ),
        profile,
    )

    # ---- bank side ---------------------------------------------------------
    bidx = np.arange(n_shared + n_bank_only)
    m = len(bidx)
    ub, up, sz = u_bank[bidx], u_pub[bidx], size[bidx]
    b: dict[str, object] = {KEY: codes[bidx]}
    b["loan_id"] = [f"LN{seed % 1000:03d}{i:07d}" for i in range(m)]
    b["issued_on"] = (AS_OF - pd.to_timedelta(rng.integers(365, 730, m), unit="D")).to_numpy()
    b["loan_amount_10k"] = np.round(np.exp(4.0 + 0.8 * sz + rng.normal(0, 0.5, m)), 1)
    b["loan_term_months"] = rng.choice([6, 12, 24, 36], size=m, p=[0.15, 0.5, 0.25, 0.1])
    b["guarantee"] = rng.choice(GUARANTEE, size=m, p=[0.4, 0.3, 0.2, 0.1])
    b["acct_inflow_10k"] = _missing(rng, np.round(np.exp(3.0 + 1.0 * sz - 0.35 * ub + rng.normal(0, 0.5, m)), 2), 0.04)
    b["acct_inflow_cv"] = _missing(rng, np.round(np.exp(-0.8 + 0.35 * ub + rng.normal(0, 0.3, m)), 3), 0.04)
    b["acct_months"] = np.clip(np.round(rng.gamma(2.0, 18, m)), 1, 240).astype(int)
    b["acct_balance_10k"] = _missing(rng, np.round(np.exp(2.0 + 0.9 * sz - 0.3 * ub + rng.normal(0, 0.6, m)), 2), 0.04)
    b["overdue_count_24m"] = rng.poisson(np.exp(-1.5 + 0.8 * ub))
    overdue = np.asarray(b["overdue_count_24m"])
    b["max_overdue_days_24m"] = np.where(
        overdue > 0, np.round(np.exp(2.2 + 0.5 * ub + rng.normal(0, 0.6, m))), 0
    ).astype(int)
    b["credit_utilisation"] = _missing(
        rng, np.round(np.clip(_sigmoid(0.3 + 0.7 * ub + rng.normal(0, 0.6, m)), 0, 1), 3), 0.05
    )
    # Default: both latent risks matter, plus nonlinear hits from hard events.
    logit = (
        -2.35
        + 0.95 * up
        + 0.8 * ub
        - 0.15 * sz
        + 0.6 * (up > 1.5)
        + 0.4 * (ub > 1.5)
        + 0.05 * (b["guarantee"] == "credit")
    )
    b[LABEL] = (rng.random(m) < _sigmoid(logit)).astype(int)
    loans = pd.DataFrame(b)
    for c in BANK_COLUMNS:
        loans[c.name] = _as_column(c, loans[c.name].to_numpy())
    loans = loans.sample(frac=1.0, random_state=seed + 1).reset_index(drop=True)
    tables[BANK][LOANS] = (
        Schema(
            name=LOANS,
            owner=BANK,
            key=KEY,
            columns=(KEY_COL, *BANK_COLUMNS),
            description="小微企业贷款: loans, the bank's own account columns and the label",
        ),
        loans,
    )
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


def write_city(
    home: Home, rows: int, seed: int = 20241, authorised_share: float = 0.8
) -> dict[str, dict[str, Fingerprint]]:
    """Generate the city, write every dataset into its owner's domain, and set
    the city's default controls: each party's policy and firm authorisations."""
    city = generate(rows, seed)
    out: dict[str, dict[str, Fingerprint]] = {}
    for party, datasets in city.tables.items():
        ph = home.party(party)
        out[party] = {}
        for name, (schema, frame) in datasets.items():
            out[party][name] = sch.write(ph.dataset_dir(name), schema, frame)
    write_default_controls(home, city, seed, authorised_share)
    return out


def write_default_controls(home: Home, city: City, seed: int, authorised_share: float) -> None:
    """Policies granting the joint credit model both ways, and authorisations
    (signed by the platform's consent service) for a share of the firms."""
    expires = (dt.date.today() + dt.timedelta(days=365)).isoformat()
    policy.write(
        home.party(PLATFORM).root,
        {
            "min_cell_size": 10,
            "grants": [{"partners": [BANK], "job_types": ["joint_train"], "purposes": ["credit_risk_model"],
                        "datasets": {PROFILE: "*"}, "outputs": ["metrics", "plots", "model_manifest", "score_bands"],
                        "expires": expires}],
        },
    )  # fmt: skip
    policy.write(
        home.party(BANK).root,
        {
            "min_cell_size": 10,
            "grants": [{"partners": [PLATFORM], "job_types": ["joint_train"], "purposes": ["credit_risk_model"],
                        "datasets": {LOANS: "*"}, "outputs": "*", "expires": expires}],
        },
    )  # fmt: skip
    root = home.party(PLATFORM).root
    book = root / consent.CONSENT_DIR
    if book.exists():
        shutil.rmtree(book)
    firms = city.tables[PLATFORM][PROFILE][1][KEY].to_numpy()
    rng = np.random.default_rng(seed + 7)
    chosen = firms[rng.random(len(firms)) < authorised_share]
    signer = consent.consent_signer(root, home.root / "trust")
    consent.grant(root, signer, list(chosen), BANK, "credit_risk_model", days=365)
