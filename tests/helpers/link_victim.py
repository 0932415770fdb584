"""One party of a two-party SecretFlow link, set up the way a Safehouse worker sets it up.

    python link_victim.py PARTY CONFIG.json

Both parties join over plaintext TCP links (the allow-list, not TLS, is what is
under test), then wait for a value the platform takes 10 s to produce, so the
bank sits in the link's receive path while a test pushes a crafted message into
it. CONFIG: {"ports": {party: [link, spu]}, "harden": bool, "out": dir}.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

from models.jobtype import Devices
from parties.worker import devices, hardening, links
from protocols.messages import Endpoint


def main(me: str, cfg: dict) -> dict:
    out = Path(cfg["out"])
    if cfg["harden"]:
        hardening.install()
    cluster = [Endpoint(p, "127.0.0.1", *cfg["ports"][p]) for p in ("bank", "platform")]
    plan = links.plan(me, cluster, ["bank", "platform"], None, {}, "127.0.0.1", out)
    devices.init(f"victim-{cfg['run']}", me, plan, Devices())
    import secretflow as sf

    (out / f"ready-{me}").write_text("1")

    def slow() -> int:
        time.sleep(10)
        return 42

    value = sf.PYU("platform")(slow)()
    sf.wait([value])
    return {"ok": True}


if __name__ == "__main__":
    party, config = sys.argv[1], json.loads(Path(sys.argv[2]).read_text())
    try:
        result = main(party, config)
    except BaseException as e:  # the outcome is the test's evidence, whatever it is
        traceback.print_exc()
        result = {"ok": False, "error": f"{type(e).__name__}: {e}"[:2000]}
    (Path(config["out"]) / f"result-{party}.json").write_text(json.dumps(result))
    sys.stdout.flush()
    os._exit(0)
