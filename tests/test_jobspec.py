"""Job specs: bad specs get errors naming the field; good ones round-trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from enclave import jobspec
from enclave.errors import SpecError

GOOD = """
name: credit-2025
parties:
  platform: {dataset: firm_profile, features: [a, b]}
  bank: {dataset: loans, features: [x]}
label: {party: bank, column: y}
models:
  sgb: {num_boost_round: 5, max_depth: 3}
  sslr: {epochs: 2}
"""


def test_good_spec_round_trips() -> None:
    spec = jobspec.loads(GOOD)
    assert spec.party_names == ["platform", "bank"] and spec.models == ["sgb", "sslr"]
    assert spec.sgb is not None and spec.sgb.num_boost_round == 5 and spec.sgb.he == "ou"
    assert jobspec.loads(spec.to_yaml()) == spec
    assert jobspec.loads(spec.to_yaml()).sha256 == spec.sha256


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("name: credit-2025", "name: Credit 2025"), r"job.yaml: name: name 'Credit 2025' is invalid"),
        (
            ("sgb: {num_boost_round: 5, max_depth: 3}", "sgb: {num_boost_round: 5, max_depth: deep}"),
            r"models.sgb.max_depth: expected an integer from 1 to 8, got 'deep'",
        ),
        (
            ("sgb: {num_boost_round: 5, max_depth: 3}", "sgb: {num_boost_round: 5, depth: 3}"),
            r"models.sgb: unknown field\(s\) \['depth'\]",
        ),
        (("features: [x]", "features: [a]"), r"column 'a' is also a feature of 'platform'"),
        (
            ("label: {party: bank, column: y}", "label: {party: insurer, column: y}"),
            r"label.party: 'insurer' is not one of the parties",
        ),
        (
            ("label: {party: bank, column: y}", "label: {party: bank, column: x}"),
            r"label.column: the label 'x' is also listed as a feature",
        ),
        (("  bank: {dataset: loans, features: [x]}", ""), r"needs at least two parties"),
        (("  sgb", "  xgb"), r"models.xgb: unknown model"),
        (("dataset: loans", "dataset: ../loans"), r"parties.bank.dataset: .*invalid"),
        (("features: [x]", "features: uscc"), r"parties.bank.features: expected a list"),
        (("features: [x]", "features: [x, uscc]"), r"the key column 'uscc' cannot be a feature"),
    ],
)
def test_bad_specs_name_the_field(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    text = GOOD.replace(*edit)
    assert text != GOOD
    path = tmp_path / "job.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=message):
        jobspec.load(path)


def test_not_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not valid YAML"):
        jobspec.loads("parties: [unclosed", "x.yaml")
    with pytest.raises(SpecError, match="job spec file not found"):
        jobspec.load(tmp_path / "nope.yaml")
    with pytest.raises(SpecError, match="top level: expected a mapping"):
        jobspec.loads("- a\n- b")


def test_remote_deployment_needs_endpoints() -> None:
    with pytest.raises(SpecError, match=r"parties \['platform', 'bank'\] have no endpoint"):
        jobspec.loads(GOOD + "deployment: remote\n")
