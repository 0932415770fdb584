"""docker/compose.yaml runs exactly the commands the tests start as processes."""

from __future__ import annotations

from pathlib import Path

import yaml

from enclave import federation
from parties.client.local import coordinator_args, node_args

ROOT = Path(__file__).resolve().parent.parent


def test_compose_commands_match_local_processes() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    services = compose["services"]
    home = "/var/lib/safehouse"
    for party in ("platform", "bank"):
        expected = node_args(party, home, "0.0.0.0", 7101, f"{home}/run/node-{party}.port", party)
        assert services[party]["command"] == expected
    expected = coordinator_args(home, "0.0.0.0", 7100, f"{home}/run/coordinator.port")
    assert services["coordinator"]["command"] == expected
    # Every member reads the same federation file, which names each service where compose runs it.
    fed = federation.load(ROOT / "docker" / "federation.yaml")
    assert fed.coordinator.address == "coordinator:7100"
    for party in ("platform", "bank"):
        assert fed.party(party).address == f"{party}:7101" and fed.party(party).host == party
    for svc in services.values():
        assert "./federation.yaml:/var/lib/safehouse/federation.yaml:ro" in svc["volumes"]
    for name, svc in services.items():
        dockerfile = ROOT / "docker" / Path(svc["build"]["dockerfile"]).name
        text = dockerfile.read_text()
        assert 'ENTRYPOINT ["safehouse"]' in text and "uv sync --frozen" in text, name
