"""The validation report page from released outputs alone: every section, escaping, suppressed bands."""

from __future__ import annotations

import json
from pathlib import Path

from enclave.jobspec import JobSpec
from models import registry
from parties.report import validation
from protocols.messages import Artifact, Fingerprint, Outputs
from tests import browser


def _spec() -> JobSpec:
    return registry.parse_spec({
        "name": "r", "label": {"party": "bank", "column": "y"},
        "parties": {"platform": {"dataset": "p", "features": ["tax_arrears"]},
                    "bank": {"dataset": "b", "features": ["od"]}},
        "models": {"scorecard": {}},
    })  # fmt: skip


def _inputs() -> validation.ReportInput:
    bands = [{"band": 1, "firms": 40, "defaults": 20}, {"band": 2, "firms": None, "defaults": None, "suppressed": True},
             {"band": 3, "firms": 60, "defaults": 5}]  # fmt: skip
    iv = (
        "party,feature,category,iv,bins,selected\n"
        "platform,tax_arrears,tax,0.31,6,True\nbank,od,<b>loans</b>,0.2,4,True\n"
    )
    files = {"bands_scorecard.json": json.dumps(bands).encode(), "iv.csv": iv.encode()}
    label = Outputs("bank", {"psi_intersection": 100.0, "test_rows": 30.0, "test_default_rate": 0.2},
                    tuple(Artifact(n, "x", d, "") for n, d in files.items()), audit_hash="h-bank",
                    security={"policy": "outputs granted: metrics; min_cell_size 10", "tls": "mutual TLS"})  # fmt: skip
    fps = {p: Fingerprint(p, "f" * 64, "s" * 64, 100, 3) for p in ("platform", "bank")}
    return validation.ReportInput(_spec(), "job-1", "scorecard", "scorecard", "r-scorecard:1",
                                  {"bank": label, "platform": Outputs("platform", audit_hash="h-p")}, fps,
                                  {"scorecard": {"auc": 0.8, "ks": 0.5}}, {"coordinator": ["h-c"]})  # fmt: skip


def test_gains_accumulate_over_known_bands_and_keep_suppressed_ones_suppressed() -> None:
    rows = validation.gains([{"band": 1, "firms": 40, "defaults": 20}, {"band": 2, "firms": None, "defaults": None},
                             {"band": 3, "firms": 60, "defaults": 5}])  # fmt: skip
    assert rows[1] == {"band": 2, "suppressed": True}
    assert rows[0]["lift"] == 0.5 / 0.25 and rows[2]["gains"] == 1.0 and rows[2]["cum_firms"] == 1.0


def test_every_section_renders_and_values_are_escaped(tmp_path: Path) -> None:
    html = validation.render(_inputs())
    assert "&lt;b&gt;loans&lt;/b&gt;" in html and "<b>loans</b>" not in html
    page = tmp_path / "r.html"
    page.write_text(html)
    o = browser.outline(browser.render(page))
    assert list(o.sections) == list(validation.SECTIONS)
    assert o.sections["performance"]["tr"] >= 5  # models and three bands (one suppressed)
    assert "min_cell_size 10" in html and "h-bank" in html and "h-c" in html
