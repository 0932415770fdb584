"""数据安全屋 controls without processes: audit trails, policy, authorisations,
desensitisation and the output gate."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from enclave.controls import audit, consent, desens, gate, keys, policy
from enclave.data import uscc
from enclave.home import Home
from models import registry
from parties.client.local import safehouse_command
from protocols.errors import DataError, SpecError

# ---- audit trail -------------------------------------------------------------


def make_trails(home: Home) -> tuple[audit.AuditLog, audit.AuditLog, list[str]]:
    node = audit.party_log(home, "platform")
    coord = audit.coordinator_log(home)
    hs = [node.append("job_request", "j1", {"columns": ["a", "b"]}) for _ in range(3)]
    coord.append("parties_prepared", "j1", {"node_entries": {"platform": hs}})
    coord.append("job_end", "j1", {"state": "succeeded"})
    return node, coord, hs


def verify_cli(home: Home) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*safehouse_command(), "--home", str(home.root), "audit", "verify"], capture_output=True, text=True, timeout=60
    )


def test_untouched_trail_verifies(home: Home) -> None:
    make_trails(home)
    assert audit.verify_home(home) == []
    r = verify_cli(home)
    assert r.returncode == 0 and "5 entries in 2 trails verified" in r.stdout


def test_reopened_log_continues_the_chain(home: Home) -> None:
    node, _, _ = make_trails(home)
    again = audit.party_log(home, "platform")
    again.append("job_end", "j1", {"state": "succeeded"})
    assert audit.verify_home(home) == []
    assert len(audit.read_entries(node.path)) == 4


@pytest.mark.parametrize("trail", ["platform", "coordinator"])
def test_every_changed_byte_is_caught_and_named(home: Home, trail: str) -> None:
    node, coord, _ = make_trails(home)
    path = node.path if trail == "platform" else coord.path
    original = path.read_bytes()
    starts = [0, *(i + 1 for i, b in enumerate(original) if b == ord("\n"))]
    for pos in range(len(original)):
        data = bytearray(original)
        data[pos] ^= 0x01  # flip one bit of one byte
        path.write_bytes(bytes(data))
        problems = audit.verify_home(home)
        assert problems, f"byte {pos} changed unnoticed"
        line = max(i for i, s in enumerate(starts, start=1) if s <= pos)
        assert any(p.line in (line, line + 1) or p.file != path for p in problems), [str(p) for p in problems]
    path.write_bytes(original)
    assert audit.verify_home(home) == []


def test_whitespace_only_change_is_caught(home: Home) -> None:
    node, _, _ = make_trails(home)
    text = node.path.read_text()
    node.path.write_text(text.replace(", ", ",  ", 1))
    assert [p.seq for p in audit.verify_home(home) if p.file == node.path] == [1]


def test_altered_body_names_the_entry_and_cli_fails(home: Home) -> None:
    node, _, _ = make_trails(home)
    lines = node.path.read_text().splitlines()
    lines[1] = lines[1].replace('"a"', '"secret_column"')
    node.path.write_text("\n".join(lines) + "\n")
    problems = audit.verify_home(home)
    assert any(p.seq == 2 and "altered" in p.what for p in problems)
    r = verify_cli(home)
    assert r.returncode == 1 and "line 2 (entry 2)" in r.stdout


def test_removed_entry_is_caught(home: Home) -> None:
    node, _, _ = make_trails(home)
    lines = node.path.read_text().splitlines()
    node.path.write_text("\n".join([lines[0], lines[2]]) + "\n")
    problems = audit.verify_home(home)
    assert any("entries removed" in p.what and p.seq == 3 for p in problems)
    # The coordinator still names the removed entry.
    assert any(p.file.parent.name == "coordinator" and "no longer holds" in p.what for p in problems)


def test_truncated_tail_is_caught_by_cross_reference(home: Home) -> None:
    node, _, _ = make_trails(home)
    lines = node.path.read_text().splitlines()
    node.path.write_text("\n".join(lines[:2]) + "\n")
    problems = audit.verify_home(home)
    assert [p.file.parent.name for p in problems] == ["coordinator"]


def test_entry_signed_by_unknown_key_is_rejected(home: Home, tmp_path: Path) -> None:
    node, _, _ = make_trails(home)
    # A forger with their own key, claiming to be the platform, extends the chain.
    forger = keys.Signer("platform", keys.load_or_create(tmp_path / "elsewhere", "platform", None).private)
    forged = audit.AuditLog(node.path, forger)
    forged.append("output_release", "j1", {"released": {"rows.csv": "0" * 64}})
    problems = audit.verify_home(home)
    assert any(p.seq == 4 and "unknown key" in p.what for p in problems)
    assert verify_cli(home).returncode == 1


def test_story_of_a_job(home: Home) -> None:
    make_trails(home)
    story = audit.story(home, "j1")
    assert [e["kind"] for e in story][:3] == ["job_request"] * 3 and story[-1]["kind"] == "job_end"
    assert "platform" in audit.describe(story[0])


# ---- policy ------------------------------------------------------------------

SPEC = registry.parse_spec(
    {
        "name": "t",
        "parties": {"platform": {"dataset": "firm_profile", "features": ["a", "b"]},
                    "bank": {"dataset": "loans", "features": ["x"]}},
        "label": {"party": "bank", "column": "y"},
    }
)  # fmt: skip


def pol(**grant: object) -> policy.Policy:
    g = {"partners": ["bank"], "job_types": ["joint_train"], "purposes": ["credit_risk_model"],
         "datasets": {"firm_profile": ["a", "b"]}, "expires": "2099-01-01"} | grant  # fmt: skip
    return policy.parse({"min_cell_size": 5, "grants": [g]}, "platform", "policy.yaml")


def test_policy_allows_exactly_what_is_granted() -> None:
    d = pol().decide(SPEC)
    assert d.allowed and d.outputs == ("metrics", "model_manifest", "plots")


@pytest.mark.parametrize(
    ("grant", "reason"),
    [
        ({"datasets": {"firm_profile": ["a"]}}, "column(s) ['b'] of 'firm_profile' not granted"),
        ({"partners": ["bank2"]}, "no grant names partner 'bank'"),
        ({"purposes": ["marketing"]}, "purpose 'credit_risk_model' not granted"),
        ({"expires": "2020-01-01"}, "grant expired on 2020-01-01"),
        ({"datasets": {"other": "*"}}, "dataset 'firm_profile' not granted"),
    ],
)
def test_policy_refuses_with_reason(grant: dict[str, object], reason: str) -> None:
    d = pol(**grant).decide(SPEC)
    assert not d.allowed and reason in d.reason and "refuses 'bank'" in d.reason


def test_no_policy_file_grants_nothing(tmp_path: Path) -> None:
    d = policy.load(tmp_path, "platform").decide(SPEC)
    assert not d.allowed and "no grants at all" in d.reason


def test_bad_policy_file_names_the_field() -> None:
    with pytest.raises(SpecError, match=r"grants\[0\].outputs: unknown output kind\(s\) \['rows'\]"):
        pol(outputs=["rows"])
    with pytest.raises(SpecError, match=r"grants\[0\].expires: expected a date"):
        pol(expires="soon")


# ---- firm authorisation ------------------------------------------------------


def test_authorisations_grant_expire_and_revoke(home: Home) -> None:
    root, trust = home.party("platform").root, home.root / "trust"
    signer = consent.consent_signer(home.key_dir("consent"), trust)
    firms = [uscc.from_index(i) for i in range(4)]
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    auths = consent.grant(root, signer, firms[:3], "bank", "credit_risk_model", days=30, now=t0)
    book = consent.ConsentBook.load(root, trust)
    assert book.authorised("bank", "credit_risk_model", t0 + dt.timedelta(days=1)) == set(firms[:3])
    assert book.authorised("bank2", "credit_risk_model", t0) == set()
    assert book.authorised("bank", "marketing", t0) == set()
    assert book.authorised("bank", "credit_risk_model", t0 + dt.timedelta(days=31)) == set()
    consent.revoke(root, signer, auths[0].id, now=t0 + dt.timedelta(days=2))
    later = consent.ConsentBook.load(root, trust)
    assert later.sha256 != book.sha256
    assert later.authorised("bank", "credit_risk_model", t0 + dt.timedelta(days=1)) == set(firms[:3])
    assert later.authorised("bank", "credit_risk_model", t0 + dt.timedelta(days=3)) == set(firms[1:3])
    with pytest.raises(DataError, match="cannot authorise"):
        consent.grant(root, signer, ["not-a-code"], "bank", "credit_risk_model", days=1)


def test_a_reread_verifies_only_appended_lines_and_any_change_to_the_rest_is_caught(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, trust = home.party("platform").root, home.root / "trust"
    signer = consent.consent_signer(home.key_dir("consent"), trust)
    calls = {"n": 0}
    verify = keys.verify

    def counted(*args: Any) -> bool:
        calls["n"] += 1
        return verify(*args)

    monkeypatch.setattr(keys, "verify", counted)
    consent.grant(root, signer, [uscc.from_index(i) for i in range(5)], "bank", "credit_risk_model", days=30)
    assert len(consent.ConsentBook.load(root, trust).authorisations) == 5 and calls["n"] == 5
    consent.grant(root, signer, [uscc.from_index(i) for i in range(5, 8)], "bank", "credit_risk_model", days=30)
    calls["n"] = 0
    book = consent.ConsentBook.load(root, trust)
    assert len(book.authorisations) == 8 and calls["n"] == 3  # the five verified before are not checked again
    path = root / consent.CONSENT_DIR / consent.GRANTS
    lines = path.read_text().splitlines(keepends=True)
    # An altered line that was verified before is caught by a full check, with its line number.
    path.write_text(lines[0].replace('"grantee": "bank"', '"grantee": "bank2"') + "".join(lines[1:]))
    with pytest.raises(DataError, match="line 1: signature does not verify"):
        consent.ConsentBook.load(root, trust)
    # A line dropped from the verified part is a change too: all remaining lines are checked again.
    path.write_text("".join(lines[1:]))
    calls["n"] = 0
    assert len(consent.ConsentBook.load(root, trust).authorisations) == 7 and calls["n"] == 7


def test_forged_or_altered_authorisation_is_rejected(home: Home, tmp_path: Path) -> None:
    root, trust = home.party("platform").root, home.root / "trust"
    signer = consent.consent_signer(home.key_dir("consent"), trust)
    consent.grant(root, signer, [uscc.from_index(1)], "bank", "credit_risk_model", days=30)
    path = root / consent.CONSENT_DIR / consent.GRANTS
    good = path.read_text()
    path.write_text(good.replace('"grantee": "bank"', '"grantee": "bank2"'))
    with pytest.raises(DataError, match="line 1: signature does not verify"):
        consent.ConsentBook.load(root, trust)
    rogue = keys.load_or_create(tmp_path / "rogue", "consent", None)
    path.write_text("")
    consent.grant(root, rogue, [uscc.from_index(1)], "bank", "credit_risk_model", days=30)
    with pytest.raises(DataError, match="not the consent service's"):
        consent.ConsentBook.load(root, trust)


def test_withhold_blanks_only_unauthorised_firms() -> None:
    firms = [uscc.from_index(i) for i in range(3)]
    df = pd.DataFrame(
        {"uscc": firms, "tax": [1.0, 2.0, 3.0], "paid": pd.array([1, 2, 3], dtype="Int64"), "g": [7, 8, 9]}
    )
    out, n = consent.withhold(df, "uscc", ["tax", "paid"], {firms[1]})
    assert n == 2
    assert out["tax"].isna().tolist() == [True, False, True] and out["paid"].isna().tolist() == [True, False, True]
    assert out["g"].tolist() == [7, 8, 9] and df["tax"].notna().all()


# ---- desensitisation -----------------------------------------------------------


def test_desensitisation_transforms() -> None:
    code = uscc.from_index(77)
    assert desens.mask_uscc(code) == code[:8] + "********" + code[16:]
    assert desens.mask_id_number("11010519491231002X") == "110105***********X"
    assert desens.mask_name("张三丰") == "张**" and desens.mask_name("Li Wei") == "L* W**"
    assert desens.mask_phone("+86 138 0013 8000") == "138****8000"
    assert desens.mask_address("河南省郑州市金水区花园路100号") == "河南省郑州市" + "*" * 10
    k1, k2 = desens.new_job_key(), desens.new_job_key()
    assert desens.hmac_token(code, k1) == desens.hmac_token(code, k1) != desens.hmac_token(code, k2)
    assert desens.month("2025-06-30") == "2025-06" and desens.month(dt.date(2024, 1, 2)) == "2024-01"
    assert desens.amount_band(37.5) == "[10, 50)" and desens.amount_band(9000) == ">=5000"


@pytest.mark.parametrize(
    ("fn", "arg", "message"),
    [
        (desens.mask_uscc, "91350100M000100Y44", "invalid USCC: check character"),
        (desens.mask_id_number, "110105194912310021", "invalid ID number: check character is wrong"),
        (desens.mask_id_number, "110105194902300021", "birth date"),
        (desens.mask_phone, "12345", "invalid phone"),
        (desens.mask_name, "  ", "invalid name: empty"),
        (desens.month, "June 2025", "invalid date"),
        (desens.amount_band, -1.0, "invalid amount"),
    ],
)
def test_desensitisation_rejects_invalid_input(fn: object, arg: object, message: str) -> None:
    with pytest.raises(desens.DesensError, match=message) as e:
        fn(arg)  # type: ignore[operator]
    assert str(arg) not in str(e.value) or len(str(arg)) < 6


# ---- output gate -------------------------------------------------------------


def outputs_dir(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    d = tmp_path / "outputs"
    d.mkdir()
    (d / "roc.png").write_bytes(b"\x89PNG fake")
    bands = [{"band": 1, "firms": 30, "defaults": 9}, {"band": 2, "firms": 4, "defaults": 1}]
    (d / "score_bands.json").write_text(json.dumps(bands))
    (d / "scored_list.csv").write_text(f"token,uscc_masked,score\nabc,{desens.mask_uscc(uscc.from_index(5))},0.9\n")
    (d / "dump.csv").write_text("rows")
    result = {"metrics": {"sgb_auc": 0.8, "psi_intersection": 10.0}, "model_parts": {"sgb": "f" * 64},
              "artifacts": ("roc.png", "score_bands.json", "scored_list.csv", "dump.csv")}  # fmt: skip
    return d, result


def release(allowed: tuple[str, ...], result: dict[str, Any], d: Path) -> gate.GateResult:
    declared = registry.get("joint_train").outputs
    return gate.release(declared, allowed, 10, result["metrics"], result["artifacts"], result["model_parts"], d)


def test_gate_releases_declared_and_granted_only(tmp_path: Path) -> None:
    d, result = outputs_dir(tmp_path)
    g = release(("metrics", "plots", "score_bands"), result, d)
    assert {a.name for a in g.artifacts} == {"roc.png", "score_bands.json"}
    assert set(g.withheld) == {"scored_list.csv", "dump.csv", "model_manifest"}
    assert g.metrics == {"sgb_auc": 0.8, "psi_intersection": 10.0} and g.model_parts == {}
    bands = json.loads(next(a for a in g.artifacts if a.name == "score_bands.json").data)
    assert bands[0]["firms"] == 30 and bands[1] == {"band": 2, "firms": None, "defaults": None, "suppressed": True}
    assert g.suppressed_cells == 1


def test_gate_keeps_per_firm_outputs_home_and_withholds_raw_identifiers(tmp_path: Path) -> None:
    d, result = outputs_dir(tmp_path)
    g = release(policy.OUTPUT_KINDS, result, d)  # even a policy that grants every kind
    assert "scored_list.csv" in g.withheld and any("per-firm output" in n for n in g.notes)
    (d / "score_bands.json").write_text(json.dumps([{"band": 1, "firms": 30, "who": uscc.from_index(5)}]))
    g = release(policy.OUTPUT_KINDS, result, d)
    assert "score_bands.json" in g.withheld and any("raw USCC" in n for n in g.notes)


def test_controls_survive_a_copied_home(home: Home, tmp_path: Path) -> None:
    make_trails(home)
    copy = Home.resolve(tmp_path / "copy")
    shutil.copytree(home.root, copy.root)
    assert audit.verify_home(copy) == []
