"""The public credit catalogue of the synthetic city: table and column definitions.

The platform (郑好融) tables follow the catalogue in the seed documents
(registration, court, tax, social insurance, housing fund, utilities,
administrative penalties, IP, tech credentials, customs/environment, real
estate), each keyed by USCC; each column carries its catalogue category, which
reason codes and uplift reports sum over. ``access="interface"`` marks columns
the catalogue says are pulled by interface call (接口调用) under the firm's
authorisation. The bank's ``loans`` table holds its own account columns and the
label.
"""

from __future__ import annotations

from dataclasses import replace

from enclave.data import uscc
from enclave.data.schema import Column

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


def _c(name: str, type_: str, desc: str, access: str = "collected", **kw: object) -> Column:
    return Column(name=name, type=type_, description=desc, access=access, **kw)  # type: ignore[arg-type]


def _table(name: str, item: str, *cols: Column) -> tuple[str, str, tuple[Column, ...]]:
    """A platform table; each column remembers the catalogue category it comes from."""
    return name, item, tuple(replace(c, category=name) for c in cols)


KEY_COL = Column(name=KEY, type="uscc", role="key", nullable=False, description="统一社会信用代码")

# Platform tables: (dataset, catalogue item, columns). access="interface" marks
# columns the catalogue says are pulled by interface call (接口调用) under the
# firm's authorisation; adverse=True marks adverse records monitoring watches.
PLATFORM_TABLES: tuple[tuple[str, str, tuple[Column, ...]], ...] = (
    _table(
        "registration",
        "市场主体登记信息",
        _c("founded_on", "date", "成立日期", nullable=False),
        _c("registered_capital_10k", "float", "注册资本(万元)"),
        _c("industry", "category", "所属行业(国民经济行业分类门类)", values=INDUSTRIES),
        _c("status", "category", "登记状态/经营异常", values=STATUSES),
        _c("district", "category", "住所所在区县", values=uscc.ZHENGZHOU_DIVISIONS),
        _c("employees", "int", "从业人数(企业年报)"),
    ),
    _table(
        "judicial",
        "司法信息",
        _c("dishonest_debtor", "bool", "失信被执行人", adverse=True),
        _c("enforcement_cases_3y", "int", "近三年强制执行案件数", adverse=True),
        _c("defendant_judgments_3y", "int", "近三年作为被告的判决数", adverse=True),
    ),
    _table(
        "tax",
        "纳税信息",
        _c("tax_credit_grade", "category", "纳税信用等级", values=TAX_GRADES),
        _c("tax_arrears", "bool", "当前是否欠税", adverse=True, access="interface"),
        _c("tax_arrears_10k", "float", "欠税金额(万元)", adverse=True, access="interface"),
        _c("vat_paid_12m_10k", "float", "近一年增值税实际缴税金额(万元)", access="interface"),
        _c("tax_regular_months", "int", "连续正常缴税周期(月)", access="interface"),
    ),
    _table(
        "social_insurance",
        "社会保险信息",
        _c("si_insured", "int", "参保人数", access="interface"),
        _c("si_arrears", "bool", "当前是否欠缴", adverse=True, access="interface"),
        _c("si_arrears_10k", "float", "欠缴金额合计(万元)", adverse=True, access="interface"),
    ),
    _table(
        "housing_fund",
        "住房公积金信息",
        _c("hf_contributors", "float", "近一年月均缴存人数"),
        _c("hf_consecutive_months", "int", "近一年连续正常缴纳周期(月)"),
    ),
    _table(
        "utilities",
        "水电气缴费信息",
        _c("water_arrears", "bool", "水费欠费", adverse=True),
        _c("water_monthly_t", "float", "月均用水量(吨)"),
        _c("gas_arrears", "bool", "燃气费欠费", adverse=True),
        _c("electricity_monthly_kwh", "float", "月均用电量(千瓦时)", access="interface"),
    ),
    _table(
        "administrative",
        "行政管理信息",
        _c("admin_penalties_3y", "int", "近三年行政处罚次数", adverse=True),
        _c("admin_penalty_10k", "float", "近三年罚款金额(万元)", adverse=True),
        _c("admin_licences", "int", "有效行政许可数"),
    ),
    _table(
        "ip",
        "商标/专利/软件著作权信息",
        _c("trademarks", "int", "商标数"),
        _c("patents", "int", "专利数", access="interface"),
        _c("software_copyrights", "int", "软件著作权数"),
    ),
    _table(
        "tech",
        "科技研发信息",
        _c("high_tech", "bool", "国家级高新技术企业"),
        _c("specialised_level", "category", "专精特新认定级别", values=SPECIALISED),
    ),
    _table(
        "customs_env",
        "进出口/环境领域信息",
        _c("customs_grade", "category", "海关信用等级", values=CUSTOMS),
        _c("env_grade", "category", "环保信用评级", values=ENV),
    ),
    _table(
        "real_estate",
        "不动产信息",
        _c("property_mortgages", "int", "不动产抵押登记数", access="interface"),
        _c("property_seized", "bool", "不动产被查封", adverse=True, access="interface"),
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

CATEGORIES: tuple[str, ...] = tuple(name for name, _, _ in PLATFORM_TABLES)

# A financing guarantee company (融资担保机构) joins some jobs with its own features only.
GUARANTEES = "guarantees"
COUNTER_GUARANTEE = ("none", "third_party", "equity", "property")
GUARANTOR_COLUMNS: tuple[Column, ...] = (
    _c("guaranteed_10k", "float", "在保余额(万元)"),
    _c("guarantees_3y", "int", "近三年担保笔数", nullable=False),
    _c("compensations_3y", "int", "近三年代偿次数", nullable=False),
    _c("counter_guarantee", "category", "反担保方式", values=COUNTER_GUARANTEE),
)
