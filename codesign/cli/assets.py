"""``codesign assets list|fetch``: the public data files the project reads, and where they are.

The list of files (relative path, public address, sha256, origin) is the manifest
``models/assets_manifest.json``. ``fetch`` downloads into the cache directory (or
``--dest``), verifies each file's sha256 before moving it into place, and never leaves a
partial or unverified file behind.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import models
from models.assets import ENV_VAR, asset_roots, cache_dir
from models.errors import CodesignError

from ._common import emit_json, writable_dir

MANIFEST = Path(models.__file__).with_name("assets_manifest.json")
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60
MAX_ASSETS = 10_000                # entries of a manifest
MAX_ASSET_BYTES = 16 * 2 ** 30     # one downloaded file (the largest asset is a few MB)


def _manifest_models():
    from pydantic import BaseModel, ConfigDict, Field, field_validator

    class Asset(BaseModel):
        model_config = ConfigDict(extra="forbid")
        name: str = Field(min_length=1, max_length=200)
        path: str = Field(min_length=1, max_length=1000)
        sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
        url: str | None = Field(default=None, max_length=4000, pattern=r"^(https?|file)://")
        bytes: int | None = Field(default=None, ge=0, le=MAX_ASSET_BYTES)
        origin: str | None = Field(default=None, max_length=4000)

        @field_validator("path")
        @classmethod
        def _inside(cls, v: str) -> str:
            if Path(v).is_absolute() or ".." in Path(v).parts:
                raise ValueError("must be relative, inside the asset directory")
            return v

    class Manifest(BaseModel):
        model_config = ConfigDict(extra="allow")  # "about" and other notes
        assets: list[Asset] = Field(max_length=MAX_ASSETS)

        @field_validator("assets")
        @classmethod
        def _unique(cls, v: list) -> list:
            names = [a.name for a in v]
            twice = [n for i, n in enumerate(names) if n in names[:i]]
            if twice:
                raise ValueError(f"asset name {twice[0]!r} appears twice")
            return v

    return Manifest


def load_manifest(path=None) -> list[dict]:
    """Entries of the asset manifest (``name``, ``path``, ``sha256``, and optionally ``url``,
    ``bytes``, ``origin``), checked against its schema."""
    from models.inputs import load_json_file, validate

    p = Path(path) if path else MANIFEST
    what = f"asset manifest {p}"
    if not p.exists():
        raise CodesignError(f"asset manifest not found: {p}")
    data = load_json_file(p, what)
    manifest = validate(_manifest_models(), data, what)
    return [a.model_dump(exclude_unset=True) for a in manifest.assets]


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            h.update(chunk)
    return h.hexdigest()


def select(entries: list[dict], only: list[str] | None) -> list[dict]:
    if not only:
        return entries
    twice = [k for i, k in enumerate(only) if k in only[:i]]
    if twice:
        raise CodesignError(f"--only {twice[0]} given twice")
    chosen = []
    for key in only:
        match = [e for e in entries if key in (e["name"], e["path"])]
        if not match:
            raise CodesignError(f"unknown asset {key!r} (known: {', '.join(e['name'] for e in entries)})")
        chosen += [m for m in match if m not in chosen]
    return chosen


def _download(url: str, target: Path, expected_sha: str, max_bytes: int | None) -> None:
    """Stream ``url`` into a temporary file beside ``target``; move it into place if the sha256 matches."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        h, n = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
            for chunk in iter(lambda: resp.read(CHUNK_BYTES), b""):
                n += len(chunk)
                if max_bytes is not None and n > max_bytes:
                    raise CodesignError(f"{url}: more than {max_bytes} bytes, not the expected file")
                h.update(chunk)
                out.write(chunk)
        got = h.hexdigest()
        if got != expected_sha:
            raise CodesignError(f"sha256 mismatch for {url}: expected {expected_sha[:16]}..., got {got[:16]}...; "
                                "file not kept")
        os.replace(tmp, target)
    except urllib.error.HTTPError as e:
        raise CodesignError(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
    except CodesignError:
        raise
    except ValueError as e:  # urllib: an address it cannot open
        raise CodesignError(f"cannot download {url}: {e}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", None) or getattr(e, "strerror", None) or e
        raise CodesignError(f"cannot download {url}: {reason}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def fetch(entries: list[dict], dest: Path, base_url: str | None = None) -> list[dict]:
    """Download ``entries`` into ``dest``; one result dict per entry (status fetched/present/skipped/failed)."""
    results = []
    for e in entries:
        target = Path(dest) / e["path"]
        row = {"name": e["name"], "path": e["path"], "dest": str(target)}
        if target.is_file() and sha256_of(target) == e["sha256"]:
            results.append({**row, "status": "present"})
            continue
        url = (base_url.rstrip("/") + "/" + urllib.parse.quote(e["path"])) if base_url else e.get("url")
        if not url:
            results.append({**row, "status": "skipped",
                            "reason": f"no download address; obtain it from {e.get('origin', 'its origin')}"})
            continue
        size = e.get("bytes")
        try:
            _download(url, target, e["sha256"], 2 * size + 4096 if isinstance(size, int) else MAX_ASSET_BYTES)
            results.append({**row, "status": "fetched", "url": url})
        except CodesignError as err:
            results.append({**row, "status": "failed", "url": url, "reason": str(err)})
    return results


def _where(e: dict) -> tuple[str, str | None, bool | None]:
    env = os.environ.get(ENV_VAR)
    for root in asset_roots():
        p = root / e["path"]
        if p.is_file():
            label = f"${ENV_VAR}" if env and root == Path(env) else "cache"
            return label, str(p), sha256_of(p) == e["sha256"]
    return "missing", None, None


def _list(args) -> int:
    rows = []
    for e in select(load_manifest(args.manifest), args.only):
        label, path, ok = _where(e)
        rows.append({"name": e["name"], "path": e["path"], "where": label, "file": path, "sha256_ok": ok,
                     "url": e.get("url"), "origin": e.get("origin")})
    if args.json:
        emit_json({"roots": [str(r) for r in asset_roots()], "assets": rows})
        return 0
    print(f"asset roots: {', '.join(str(r) for r in asset_roots())}")
    for r in rows:
        state = r["where"] if r["file"] is None else f"{r['where']}{'' if r['sha256_ok'] else ' (sha256 MISMATCH)'}"
        print(f"{r['name']:<34} {state:<28} {r['path']}")
    return 0


def _fetch(args) -> int:
    if args.base_url is not None and not args.base_url.startswith(("https://", "http://", "file://")):
        raise CodesignError(f"--base-url {args.base_url!r}: give an http://, https:// or file:// address")
    dest = writable_dir(args.dest, "--dest") if args.dest else cache_dir()
    results = fetch(select(load_manifest(args.manifest), args.only), dest, args.base_url)
    if args.json:
        emit_json({"dest": str(dest), "assets": results})
    else:
        for r in results:
            extra = f"  ({r['reason']})" if r["status"] == "skipped" else ""
            if r["status"] != "failed":
                print(f"{r['status']:<8} {r['path']}{extra}")
    failed = [r for r in results if r["status"] == "failed"]
    if failed:
        if not args.json:
            sys.stdout.flush()
        raise CodesignError("; ".join(f"{r['name']}: {r['reason']}" for r in failed))
    return 0


def register(sub) -> None:
    p = sub.add_parser("assets", help="list the public data files, or fetch them into the cache")
    s = p.add_subparsers(dest="action", metavar="ACTION")
    s.required = True
    common = dict(manifest=dict(metavar="PATH", help="use another asset manifest (default: the packaged one)"),
                  only=dict(metavar="NAME", action="append", help="only this asset (name or path; repeatable)"))
    pl = s.add_parser("list", help="show which assets are present and where")
    pf = s.add_parser("fetch", help="download the assets into the cache (verifying sha256)")
    for q in (pl, pf):
        q.add_argument("--manifest", **common["manifest"])
        q.add_argument("--only", **common["only"])
        q.add_argument("--json", action="store_true")
    pf.add_argument("--dest", metavar="DIR", help="download into DIR instead of the cache directory")
    pf.add_argument("--base-url", metavar="URL", help="fetch PATH from URL/PATH (a mirror) instead of each asset's url")
    pl.set_defaults(func=_list)
    pf.set_defaults(func=_fetch)
