"""Run directories: ``config.yaml``, an append-only ``journal.jsonl`` of finished evaluations,
``result.json`` and ``report.md``. A killed run resumes from its journal without redoing a
finished evaluation."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import yaml

from models.errors import CodesignError


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class RunDir:
    def __init__(self, path, create: bool = True):
        self.path = Path(path)
        if create:
            self.path.mkdir(parents=True, exist_ok=True)
        elif not self.path.is_dir():
            raise CodesignError(f"run directory not found: {self.path}")

    # ---- config ----
    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    def write_config(self, config: dict) -> None:
        if self.config_path.exists():
            old = self.read_config()
            if old != config:
                raise CodesignError(f"{self.path} already holds a run with another config: use --resume "
                                    f"to continue it or choose another --out")
            return
        atomic_write(self.config_path, yaml.safe_dump(config, sort_keys=True))

    def read_config(self) -> dict:
        if not self.config_path.exists():
            raise CodesignError(f"{self.path} has no config.yaml: not a run directory")
        try:
            return yaml.safe_load(self.config_path.read_text())
        except yaml.YAMLError as e:
            raise CodesignError(f"{self.config_path}: malformed ({str(e).splitlines()[0]})") from None

    # ---- journal ----
    @property
    def journal_path(self) -> Path:
        return self.path / "journal.jsonl"

    def read_journal(self) -> list[dict]:
        """Entries in append order; a torn last line (killed mid-write) is ignored."""
        if not self.journal_path.exists():
            return []
        out = []
        with open(self.journal_path) as f:
            for line in f:
                if not line.endswith("\n"):
                    break
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    break
        return out

    def append(self, entry: dict) -> None:
        line = json.dumps(entry, separators=(",", ":"), allow_nan=False) + "\n"
        with open(self.journal_path, "a") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def truncate_torn_tail(self) -> None:
        """Drop a partial last line so that appends start on a fresh line."""
        if not self.journal_path.exists():
            return
        data = self.journal_path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with open(self.journal_path, "r+b") as f:
                f.truncate(cut)

    # ---- results ----
    def write_json(self, name: str, obj) -> None:
        atomic_write(self.path / name, json.dumps(obj, indent=2, allow_nan=False) + "\n")

    def write_text(self, name: str, text: str) -> None:
        atomic_write(self.path / name, text)
