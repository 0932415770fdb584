"""Shared fixtures: temporary homes, small synthetic cities, and a local
cluster of real party processes that is torn down with every process reaped
and every party's log attached when a test fails."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from enclave.home import Home
from parties.client import workflows
from parties.client.local import LocalCluster
from parties.procs import works_in


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home.resolve(tmp_path / "home")


@pytest.fixture(scope="session")
def small_city_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """A 600-loan city written once per session; tests copy, never modify it. Its MLflow database
    is created here, once (about 3 s of schema migrations), so no copy's coordinator creates it again."""
    from mlflow.tracking import MlflowClient

    h = Home.resolve(tmp_path_factory.mktemp("city") / "home")
    workflows.generate_city(h, 600, seed=11)
    MlflowClient(h.tracking_uri).search_experiments()
    return h


def _descendants() -> set[int]:
    me = psutil.Process(os.getpid())
    return {p.pid for p in me.children(recursive=True)}


def party_logs(home: Home) -> str:
    """Every log of every party, coordinator and worker under a home."""
    chunks = []
    for f in sorted(home.root.rglob("*.log")):
        text = f.read_text(errors="replace")
        chunks.append(f"===== {f.relative_to(home.root)} =====\n{text[-6000:]}")
    return "\n".join(chunks)


def belongs(p: psutil.Process, clusters: list[LocalCluster]) -> bool:
    """A process of one of these clusters: it names or works under one of their homes."""
    return any(works_in(p.pid, c.home.root) for c in clusters)


@pytest.fixture
def cluster_factory(request: pytest.FixtureRequest) -> Iterator[object]:
    """Start LocalClusters; on teardown stop them, fail on leftovers, show logs on failure."""
    started: list[LocalCluster] = []
    before = _descendants()

    def start(home: Home, parties: list[str]) -> LocalCluster:
        c = LocalCluster(home, parties).start()
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()
    leftover = [p for p in psutil.process_iter(["pid"]) if p.info["pid"] not in before and belongs(p, started)]
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    if failed:
        for c in started:
            print(f"\n######## logs under {c.home.root}\n{party_logs(c.home)}")
    if leftover:
        for p in leftover:
            p.kill()
        pytest.fail(f"processes left behind: {[p.info['pid'] for p in leftover]}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    outcome: Any = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
