"""Locate external data files (predictors, latency tables, NAS-Bench sets).

The files are never part of the package: they are read from the directory named by the
environment variable ``CODESIGN_ASSETS`` (or the cache ``codesign assets fetch`` fills).
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import AssetMissing

ENV_VAR = "CODESIGN_ASSETS"


def cache_dir() -> Path:
    """Where ``codesign assets fetch`` stores downloaded files."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "codesign" / "assets"


def asset_roots() -> list[Path]:
    roots = []
    env = os.environ.get(ENV_VAR)
    if env:
        roots.append(Path(env))
    roots.append(cache_dir())
    return roots


def asset_path(relative: str, origin: str = "") -> Path:
    """Return the path of ``relative`` inside the first asset root that has it.

    Raises ``AssetMissing`` naming the variable to set and where the file comes from.
    """
    for root in asset_roots():
        p = root / relative
        if p.exists():
            return p
    hint = f" It comes from {origin}." if origin else ""
    raise AssetMissing(
        f"asset '{relative}' not found: set {ENV_VAR} to the directory that holds it "
        f"or run 'codesign assets fetch'.{hint}"
    )


def have_asset(relative: str) -> bool:
    return any((root / relative).exists() for root in asset_roots())
