"""The package layering of the design notes: imports point down, never up."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ORDER = ["models", "accelerators", "mappings", "codesign"]  # each may import only those before it


def _imports(path: Path) -> set[str]:
    """Absolute module names imported by ``path`` (relative imports resolved)."""
    pkg = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
    return out


def _files(pkg: str):
    return sorted((ROOT / pkg).rglob("*.py"))


def test_top_level_packages_import_down_only():
    for i, pkg in enumerate(ORDER):
        above = ORDER[i + 1:]
        for f in _files(pkg):
            bad = [m for m in _imports(f) if m.split(".")[0] in above]
            assert not bad, f"{f.relative_to(ROOT)} imports {bad} from a package above it"


def test_search_and_validation_do_not_import_cli_or_report():
    for pkg in ("codesign/search", "codesign/validation"):
        for f in _files(pkg):
            bad = [m for m in _imports(f) if m.startswith(("codesign.cli", "codesign.report"))]
            assert not bad, f"{f.relative_to(ROOT)} imports {bad}"


def test_search_and_validation_are_independent():
    for pkg, other in (("codesign/search", "codesign.validation"), ("codesign/validation", "codesign.search")):
        for f in _files(pkg):
            bad = [m for m in _imports(f) if m.startswith(other)]
            assert not bad, f"{f.relative_to(ROOT)} imports {bad}"


def test_remote_client_and_agent_share_only_the_wire_module():
    client = _imports(ROOT / "codesign/validation/latency/remote.py")
    assert "codesign.validation.wire" in client
    assert not any(m.startswith("codesign.validation.agent") for m in client)
    wire = _imports(ROOT / "codesign/validation/wire.py")
    assert not any(m.startswith(("codesign.validation.agent", "codesign.validation.latency")) for m in wire)
    assert "codesign.validation.wire" in _imports(ROOT / "codesign/validation/agent.py")
