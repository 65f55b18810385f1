"""``codesign assets list|fetch`` against a local HTTP server (no internet needed)."""
import functools
import hashlib
import http.server
import json
import threading

import pytest

from codesign.cli import main
from codesign.cli.assets import load_manifest
from models.assets import ENV_VAR, asset_roots, have_asset

SERVER_LIFETIME_S = 60  # the server shuts itself down even if a test forgets to


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """Start a server on 127.0.0.1 for a directory; returns its base URL."""
    servers = []

    def start(directory):
        handler = functools.partial(_QuietHandler, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        timer = threading.Timer(SERVER_LIFETIME_S, server.shutdown)
        timer.daemon = True
        timer.start()
        servers.append((server, timer))
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server, timer in servers:
        timer.cancel()
        server.shutdown()
        server.server_close()


@pytest.fixture
def mirror(tmp_path):
    """A served directory with two files and a manifest describing them (one with a wrong sha256)."""
    root = tmp_path / "srv"
    (root / "ofa").mkdir(parents=True)
    good, bad = b"predictor weights\n" * 100, b"tampered table\n"
    (root / "ofa" / "good.pth").write_bytes(good)
    (root / "ofa" / "bad.yaml").write_bytes(bad)
    entries = [
        {"name": "good", "path": "ofa/good.pth", "sha256": hashlib.sha256(good).hexdigest(), "bytes": len(good)},
        {"name": "bad", "path": "ofa/bad.yaml", "sha256": hashlib.sha256(b"the real table\n").hexdigest()},
        {"name": "manual", "path": "nb/table.csv", "sha256": "0" * 64, "url": None, "origin": "a paper's site"},
    ]
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"assets": entries}))
    return root, manifest


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_fetch_verifies_and_installs(capsys, tmp_path, serve, mirror):
    root, manifest = mirror
    base, dest = serve(root), tmp_path / "cache"
    entries = json.loads(manifest.read_text())["assets"]
    for e in entries:
        e["url"] = f"{base}/{e['path']}" if e["name"] != "manual" else None
    manifest.write_text(json.dumps({"assets": entries}))
    rc, out, err = run(capsys, "assets", "fetch", "--manifest", str(manifest), "--dest", str(dest), "--only", "good")
    assert rc == 0 and err == "" and out.startswith("fetched")
    assert (dest / "ofa" / "good.pth").read_bytes() == (root / "ofa" / "good.pth").read_bytes()
    rc, out, _ = run(capsys, "assets", "fetch", "--manifest", str(manifest), "--dest", str(dest), "--only", "good",
                     "--json")
    assert rc == 0 and json.loads(out)["assets"][0]["status"] == "present"


def test_sha256_mismatch_is_an_error_and_nothing_is_kept(capsys, tmp_path, serve, mirror):
    root, manifest = mirror
    dest = tmp_path / "cache"
    rc, out, err = run(capsys, "assets", "fetch", "--manifest", str(manifest), "--dest", str(dest),
                       "--base-url", serve(root), "--only", "bad")
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "sha256 mismatch" in lines[0] and "not kept" in lines[0]
    assert not (dest / "ofa" / "bad.yaml").exists()
    assert not any(p.is_file() for p in dest.rglob("*"))  # no partial download left behind


def test_fetch_all_reports_each_asset(capsys, tmp_path, serve, mirror):
    root, manifest = mirror
    dest = tmp_path / "cache"
    rc, out, err = run(capsys, "assets", "fetch", "--manifest", str(manifest), "--dest", str(dest), "--json")
    status = {a["name"]: a["status"] for a in json.loads(out)["assets"]}
    assert rc == 0 and status == {"good": "skipped", "bad": "skipped", "manual": "skipped"}  # no urls, no mirror
    rc, out, err = run(capsys, "assets", "fetch", "--manifest", str(manifest), "--dest", str(dest),
                       "--base-url", serve(root), "--json")
    status = {a["name"]: a["status"] for a in json.loads(out)["assets"]}
    assert rc == 2 and status == {"good": "fetched", "bad": "failed", "manual": "failed"}
    assert len(err.strip().splitlines()) == 1
    assert "bad: sha256 mismatch" in err and "manual: cannot download" in err and "HTTP 404" in err


def test_missing_file_and_unknown_names(capsys, tmp_path, serve, mirror):
    root, manifest = mirror
    rc, _, err = run(capsys, "assets", "fetch", "--manifest", str(manifest), "--dest", str(tmp_path),
                     "--only", "nope")
    assert rc == 2 and "unknown asset 'nope'" in err
    rc, _, err = run(capsys, "assets", "list", "--manifest", str(tmp_path / "missing.json"))
    assert rc == 2 and "manifest not found" in err


def test_list_shows_where_assets_are(capsys, tmp_path, monkeypatch, mirror):
    root, manifest = mirror
    monkeypatch.setenv(ENV_VAR, str(root))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    rc, out, _ = run(capsys, "assets", "list", "--manifest", str(manifest), "--json")
    assert rc == 0
    rows = {a["name"]: a for a in json.loads(out)["assets"]}
    assert rows["good"]["where"] == f"${ENV_VAR}" and rows["good"]["sha256_ok"] is True
    assert rows["bad"]["sha256_ok"] is False
    assert rows["manual"]["where"] == "missing" and rows["manual"]["file"] is None
    rc, out, _ = run(capsys, "assets", "list", "--manifest", str(manifest))
    assert rc == 0 and "MISMATCH" in out


def test_default_fetch_goes_to_the_cache_dir(capsys, tmp_path, monkeypatch, serve, mirror):
    root, manifest = mirror
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    rc, _, _ = run(capsys, "assets", "fetch", "--manifest", str(manifest), "--base-url", serve(root),
                   "--only", "ofa/good.pth")
    assert rc == 0
    assert (tmp_path / "xdg" / "codesign" / "assets" / "ofa" / "good.pth").is_file()


def test_packaged_manifest_is_well_formed():
    entries = load_manifest()
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names))
    paths = {e["path"] for e in entries}
    assert {"ofa/acc_predictor.pth", "ofa/ofa_resnet50_acc_predictor.pth"} <= paths
    for e in entries:
        assert len(e["sha256"]) == 64 and int(e["sha256"], 16) >= 0
        assert e["url"] is None or e["url"].startswith("https://")
    pred = next(e for e in entries if e["path"] == "ofa/acc_predictor.pth")
    assert pred["sha256"].startswith("48685122") and pred["sha256"].endswith("eeba0")  # as the data README states


@pytest.mark.skipif(not have_asset("ofa/acc_predictor.pth"), reason="set CODESIGN_ASSETS to the shared data directory")
def test_manifest_hashes_match_the_shared_files(capsys, tmp_path, serve):
    """Serve the shared directory as a mirror: every listed file present there fetches and verifies."""
    root = next(r for r in asset_roots() if (r / "ofa/acc_predictor.pth").is_file())
    present = [e["name"] for e in load_manifest() if (root / e["path"]).is_file()]
    assert "ofa-mbv3-predictor" in present
    argv = ["assets", "fetch", "--dest", str(tmp_path / "cache"), "--base-url", serve(root), "--json"]
    for name in present:
        argv += ["--only", name]
    rc, out, err = run(capsys, *argv)
    assert rc == 0, err
    assert {a["status"] for a in json.loads(out)["assets"]} == {"fetched"}
