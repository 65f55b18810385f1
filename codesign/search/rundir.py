"""Run directories: ``config.yaml``, an append-only ``journal.jsonl`` of finished evaluations,
``result.json`` and ``report.md``. A killed run resumes from its journal without redoing a
finished evaluation.

Every file is read through its schema (``run_schema``). A torn or malformed *last* journal
line (a crash mid-write) is moved to ``journal.jsonl.torn`` with a warning before a resume;
a malformed line anywhere else stops the resume with an error naming the line, and nothing is
rewritten. A search holds an exclusive lock on the directory (``.lock``) while it writes.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import yaml

from models.inputs import decode_text, load_yaml_file, parse_json, validate

from .run_schema import MAX_CONFIG_BYTES, MAX_JOURNAL_BYTES, MAX_JOURNAL_LINE_BYTES, JournalEntry, RunConfig, \
    RunDirError

try:
    import fcntl
except ImportError:  # not POSIX: no lock (runs are still safe one at a time)
    fcntl = None


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


# locks this process holds, by directory: a search inside a CLI command that already locked
# the directory takes the lock again without blocking itself
_held: dict[str, list] = {}
_held_guard = threading.Lock()


class RunDir:
    def __init__(self, path, create: bool = True):
        self.path = Path(path)
        if create:
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except FileExistsError:
                raise RunDirError(f"{self.path}: exists and is not a directory") from None
            except OSError as e:
                raise RunDirError(f"{self.path}: cannot create the run directory ({e.strerror or e})") from None
        elif not self.path.is_dir():
            raise RunDirError(f"run directory not found: {self.path}")

    # ---- lock ----
    @property
    def lock_path(self) -> Path:
        return self.path / ".lock"

    @contextmanager
    def lock(self):
        """Hold the directory's exclusive lock; another process holding it is an error at once."""
        key = str(self.path.resolve())
        with _held_guard:
            if key in _held:
                _held[key][1] += 1
                fd = None
            else:
                fd = self._acquire()
                _held[key] = [fd, 1]
        try:
            yield self
        finally:
            with _held_guard:
                _held[key][1] -= 1
                if _held[key][1] == 0:
                    fd = _held.pop(key)[0]
                    os.close(fd)  # closing the descriptor releases the lock

    def _acquire(self) -> int:
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise RunDirError(f"{self.path}: cannot create the lock file ({e.strerror or e})") from None
        if fcntl is None:
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            except OSError:
                holder = ""
            os.close(fd)
            who = f" (process {holder})" if holder.isdigit() else ""
            raise RunDirError(f"{self.path}: another search is writing to this run directory{who}; "
                              f"wait for it to finish or stop it first") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd

    # ---- config ----
    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    def write_config(self, config: dict) -> None:
        if self.config_path.exists():
            old = self.read_config()
            if old != config:
                raise RunDirError(f"{self.path} already holds a run with another config: use --resume "
                                  f"to continue it or choose another --out")
            return
        atomic_write(self.config_path, yaml.safe_dump(config, sort_keys=True))

    def read_config(self) -> dict:
        """The saved config, checked against its schema (one error naming the field if not)."""
        if not self.config_path.exists():
            raise RunDirError(f"{self.path} has no config.yaml: not a run directory")
        data = load_yaml_file(self.config_path, error=RunDirError, max_bytes=MAX_CONFIG_BYTES)
        if not isinstance(data, dict):
            raise RunDirError(f"{self.config_path}: expected a mapping of search options, got "
                              f"{type(data).__name__ if data is not None else 'an empty file'}")
        validate(RunConfig, data, str(self.config_path), error=RunDirError)
        return data

    # ---- journal ----
    @property
    def journal_path(self) -> Path:
        return self.path / "journal.jsonl"

    @property
    def torn_path(self) -> Path:
        return self.path / "journal.jsonl.torn"

    def _journal_lines(self) -> list[tuple[int, int, bytes, bool]]:
        """``(line number, byte offset, raw line, ends with a newline)`` of every line."""
        try:
            size = self.journal_path.stat().st_size
        except FileNotFoundError:
            return []
        if size > MAX_JOURNAL_BYTES:
            raise RunDirError(f"{self.journal_path}: {size:,} bytes, more than the {MAX_JOURNAL_BYTES:,} accepted")
        try:
            parts = self.journal_path.read_bytes().split(b"\n")
        except OSError as e:
            raise RunDirError(f"{self.journal_path}: cannot read ({e.strerror or e})") from None
        out, off = [], 0
        for n, raw in enumerate(parts, start=1):
            if n == len(parts) and not raw:
                break  # the file ends with a newline
            out.append((n, off, raw, n < len(parts)))
            off += len(raw) + 1
        return out

    def _parse_line(self, n: int, raw: bytes, torn: bool, dimension: int | None, budget: int | None) -> dict:
        where = f"{self.journal_path} line {n}"
        if torn:
            raise RunDirError(f"{where}: no newline at the end (cut off mid-write)")
        if len(raw) > MAX_JOURNAL_LINE_BYTES:
            raise RunDirError(f"{where}: {len(raw):,} bytes, more than the {MAX_JOURNAL_LINE_BYTES:,} accepted")
        data = parse_json(decode_text(raw, where, error=RunDirError), where, error=RunDirError,
                          max_bytes=MAX_JOURNAL_LINE_BYTES)
        if not isinstance(data, dict):
            raise RunDirError(f"{where}: expected an evaluation (a JSON object with i, x, status, loss), "
                              f"got {json.dumps(data)[:40]}")
        entry = validate(JournalEntry, data, where, error=RunDirError)
        if budget is not None and entry.i >= budget:
            raise RunDirError(f"{where}: i: candidate {entry.i} is beyond the run's budget of {budget} "
                              f"(accepted 0 to {budget - 1})")
        if dimension is not None and len(entry.x) != dimension:
            raise RunDirError(f"{where}: x: {len(entry.x)} numbers, the search space has {dimension}")
        return data

    def load_journal(self, dimension: int | None = None, budget: int | None = None, *,
                     recover: bool = False, warn=None) -> list[dict]:
        """Entries in append order, each checked against the schema (and the space's
        ``dimension`` and the run's ``budget`` when given).

        A bad last line is left out; with ``recover`` it is also moved to ``journal.jsonl.torn``
        (appended, so nothing is ever lost) and ``warn(message)`` is called. A bad line before
        the last, or a candidate journaled twice, raises ``RunDirError`` and changes nothing."""
        lines = self._journal_lines()
        entries, seen = [], {}
        tail_error = None
        for k, (n, off, raw, newline) in enumerate(lines):
            last = k == len(lines) - 1
            try:
                e = self._parse_line(n, raw, not newline, dimension, budget)
            except RunDirError as err:
                if not last:
                    raise RunDirError(f"{err}; the journal is damaged before its last line: repair or remove "
                                      f"that line (or start a new run)") from None
                tail_error = (n, off, raw, str(err))
                break
            if e["i"] in seen:
                raise RunDirError(f"{self.journal_path} line {n}: candidate {e['i']} was already journaled on line "
                                  f"{seen[e['i']]}: a run directory written by two searches at once?")
            seen[e["i"]] = n
            entries.append(e)
        if tail_error is not None and recover:
            n, off, raw, why = tail_error
            self._set_aside(off, raw)
            msg = (f"{why}: moved that line to {self.torn_path} and resuming from the {len(entries)} "
                   f"intact entries")
            if warn is not None:
                warn(msg)
        return entries

    def read_journal(self) -> list[dict]:
        """Entries in append order; a torn last line (killed mid-write) is ignored."""
        return self.load_journal()

    def _set_aside(self, off: int, raw: bytes) -> None:
        tail = raw if raw.endswith(b"\n") else raw + b"\n"
        with open(self.torn_path, "ab") as f:
            f.write(tail)
            f.flush()
            os.fsync(f.fileno())
        with open(self.journal_path, "r+b") as f:
            f.truncate(off)
            os.fsync(f.fileno())

    def append(self, entry: dict) -> None:
        """Append one entry as a single write (a kill leaves the line whole or absent)."""
        line = (json.dumps(entry, separators=(",", ":"), allow_nan=False) + "\n").encode()
        fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)

    def truncate_torn_tail(self, warn=None) -> None:
        """Set a bad last line aside (see ``load_journal``) so that appends start on a fresh line."""
        self.load_journal(recover=True, warn=warn)

    # ---- results ----
    def write_json(self, name: str, obj) -> None:
        """Write ``obj`` as JSON; a NaN or infinity anywhere in it is an error, and nothing is written."""
        bad = _non_finite(obj, "")
        if bad is not None:
            raise RunDirError(f"{self.path / name}: {bad[0] or 'the value'} is {bad[1]}: a search result holds "
                              f"finite numbers only; nothing was written")
        atomic_write(self.path / name, json.dumps(obj, indent=2, allow_nan=False) + "\n")

    def write_text(self, name: str, text: str) -> None:
        atomic_write(self.path / name, text)


def _non_finite(obj, where: str):
    """``(field path, value)`` of the first NaN or infinity in ``obj``, or None."""
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (where, obj)
    if isinstance(obj, dict):
        items = ((f"{where}.{k}" if where else str(k), v) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(obj))
    else:
        return None
    for w, v in items:
        bad = _non_finite(v, w)
        if bad is not None:
            return bad
    return None
