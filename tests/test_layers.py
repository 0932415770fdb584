"""The layering holds: protocols < enclave < models < parties, each importing only from below.

Every module of the four packages is read with ``ast`` (imports inside
functions count too). A module may import its own layer and the layers below,
never above; some layers also keep certain libraries out.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("protocols", "enclave", "models", "parties")
# Libraries a layer must not reach for: the wire contract knows no transport,
# the shared domain knows no role, no transport and no experiment tracking.
FORBIDDEN = {
    "protocols": {"grpc", "mlflow", "secretflow", "spu", "heu", "pandas"},
    "enclave": {"grpc", "mlflow", "secretflow", "spu", "heu"},
    "models": {"grpc", "mlflow"},
    "parties": set(),
}
GENERATED = {"parties/transport/control_pb2_grpc.py"}


def modules() -> list[Path]:
    return sorted(p for layer in LAYERS for p in (ROOT / layer).rglob("*.py"))


def imported(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


def violations(path: Path) -> list[str]:
    rel = path.relative_to(ROOT).as_posix()
    layer = rel.split("/")[0]
    rank = LAYERS.index(layer)
    found = []
    for line, name in imported(path):
        top = name.split(".")[0]
        if top in LAYERS and LAYERS.index(top) > rank:
            found.append(f"{rel}:{line} imports {name} from the higher layer {top!r}")
        if top in FORBIDDEN[layer] and rel not in GENERATED:
            found.append(f"{rel}:{line} imports {name}, which the {layer!r} layer keeps out")
    return found


def test_every_module_imports_only_from_below() -> None:
    assert len(modules()) > 50
    problems = [v for p in modules() for v in violations(p)]
    assert problems == [], "\n".join(problems)


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    fake = ROOT / "enclave" / "_layer_probe.py"
    try:
        fake.write_text("def f() -> None:\n    from parties.cli import main\n")
        assert violations(fake) == ["enclave/_layer_probe.py:2 imports parties.cli from the higher layer 'parties'"]
    finally:
        fake.unlink()


def test_transport_knows_no_role() -> None:
    roles = ("parties.node", "parties.coordinator", "parties.worker", "parties.client")
    bad = [
        f"{p.relative_to(ROOT)}:{line} imports {name}"
        for p in (ROOT / "parties" / "transport").rglob("*.py")
        for line, name in imported(p)
        if name.startswith(roles)
    ]
    assert bad == []


@pytest.mark.parametrize("module", ["parties.node.server", "parties.coordinator.server", "parties.cli"])
def test_roles_start_without_the_modelling_libraries(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "heavy = sorted(m for m in ('secretflow', 'spu', 'heu', 'lightgbm', 'jax') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "", f"{module} loads {r.stdout.strip()} at start"


def test_readme_layout_table_matches_the_tree() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("`")[1] for line in section.splitlines() if line.startswith("| `")]
    missing = [r for r in rows if not (ROOT / r).exists()]
    assert rows and missing == [], f"README layout names paths that do not exist: {missing}"
    packages = sorted(
        p.parent.relative_to(ROOT).as_posix() + "/"
        for layer in LAYERS
        for p in (ROOT / layer).rglob("__init__.py")
        if p.parent != ROOT / layer and p.parent.parent == ROOT / layer
    )
    unnamed = [p for p in packages if p not in rows and f"`{p.split('/')[1]}/`" not in section]
    assert unnamed == [], f"packages the README layout does not name: {unnamed}"
