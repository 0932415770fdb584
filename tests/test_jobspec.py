"""Job specs: bad specs get errors naming the field; good ones round-trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from models import registry
from models.joint_train.params import JointTrainParams
from parties.cli import common
from protocols.errors import SafehouseError, SpecError

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
    spec = registry.loads_spec(GOOD)
    p = JointTrainParams.of(spec)
    assert spec.party_names == ["platform", "bank"] and p.models == ["sgb", "sslr"]
    assert p.sgb is not None and p.sgb.num_boost_round == 5 and p.sgb.he == "ou"
    assert registry.loads_spec(spec.to_yaml()) == spec
    assert registry.loads_spec(spec.to_yaml()).sha256 == spec.sha256
    assert spec.columns("bank") == ["x", "y"] and spec.columns("platform") == ["a", "b"]


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
        (("features: [x]", "features: [x, x]"), r"parties.bank.features: names listed twice: \['x'\]"),
        (("name: credit-2025", "name: credit-2025\njob: score_all"), r"job: expected one of .*'joint_score'"),
        (("name: credit-2025", "name: credit-2025\nsplit: {seed: -1}"), r"split.seed: expected an integer"),
        (("name: credit-2025", "name: credit-2025\ncolour: red"), r"top level: unknown field\(s\) \['colour'\]"),
        (("features: [x]", "features: [x, uscc]"), r"the key column 'uscc' cannot be a feature"),
    ],
)
def test_bad_specs_name_the_field(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    text = GOOD.replace(*edit)
    assert text != GOOD
    path = tmp_path / "job.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=message):
        registry.load_spec(path)


def test_not_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not valid YAML"):
        registry.loads_spec("parties: [unclosed", "x.yaml")
    with pytest.raises(SpecError, match="job spec file not found"):
        registry.load_spec(tmp_path / "nope.yaml")
    with pytest.raises(SpecError, match="top level: expected a mapping"):
        registry.loads_spec("- a\n- b")


def test_a_spec_never_carries_an_address() -> None:
    assert not registry.loads_spec(GOOD + "deployment: remote\n").local
    with pytest.raises(SpecError, match=r"parties\.bank\.endpoint: addresses come from the federation file"):
        registry.loads_spec(GOOD.replace("features: [x]}", "features: [x], endpoint: 'evil:1'}"))


@pytest.mark.parametrize(("text", "seconds"), [("1d", 86400.0), ("6h", 21600.0), ("30m", 1800.0), ("2.5s", 2.5)])
def test_monitor_periods_parse(text: str, seconds: float) -> None:
    assert common.duration(text) == seconds


@pytest.mark.parametrize("text", ["", "d", "0h", "-1d", "1w", "1.2.3m", "one day"])
def test_bad_monitor_periods_say_what_is_expected(text: str) -> None:
    with pytest.raises(SafehouseError, match="expected a period like 1d, 6h, 30m or 45s"):
        common.duration(text)
