"""The board agent's wire format, shared by the server (:mod:`codesign.validation.agent`) and
the ``remote:`` client (:mod:`codesign.validation.latency.remote`): endpoints, the bearer
token and its rules, the schemas of a request, of an answer and of both sides' settings, and
their bounds. Both sides import this module; it imports neither.

A request body is the JSON that :meth:`codesign.validation.latency.Target.to_request` writes:
one of :data:`REQUEST_FORMS`, checked by :class:`MeasureRequest` (the network and the
net.config with the workload schemas of :mod:`models.schema`). An answer is
``LatencyResult.to_dict()``, checked by :class:`MeasureAnswer` on both sides, so that a
non-finite or absurd latency never travels."""
from __future__ import annotations

import os
import secrets
from typing import Annotated, Any, Optional, Union

from pydantic import BeforeValidator, Field, model_validator

from models.errors import CodesignError
from models.inputs import read_text, validate
from models.schema import MAX_RESOLUTION, FloatIn, IntIn, NetConfigSpec, NetworkSpec, SchemaModel, TextIn

HEALTH_PATH = "/health"
MEASURE_PATH = "/measure"
MIN_TOKEN_CHARS = 16
MAX_TOKEN_CHARS = 4096
MAX_TOKEN_FILE_BYTES = 64 * 1024
# the key sets a /measure request may have
REQUEST_FORMS = ({"space", "arch"}, {"net_config"}, {"net_config", "resolution"}, {"network"}, {"network", "onnx"})

# ---- bounds (far above any real use; each one is checked before any work) ----
MAX_REQUEST_BYTES = 2 ** 30        # --max-request-bytes: an ONNX model travels as base64 (+1/3)
MAX_MEASURE_SECONDS = 3600.0       # --max-seconds: one measurement, killed past it
MAX_SPACE_CHARS = 64               # a search-space name
MAX_ARCH_KEYS = 256                # keys of an arch object (OFA: ks, e, d, r, ...)
MAX_ARCH_CHARS = 4096              # an arch string (NAS-Bench-201 cells are ~90 characters)
MAX_ANSWER_BYTES = 16 * 2 ** 20    # an agent's answer, as the client reads it
MAX_LATENCY_MS = 1e9               # ~11.6 days for one inference
MAX_SAMPLES = 10 ** 9              # timed runs behind one latency
MAX_BACKEND_CHARS = 1024           # the backend description in an answer
MAX_URL_CHARS = 2048               # remote:URL
MAX_CLIENT_TIMEOUT_S = 86400.0     # remote: timeout_s, per attempt
MAX_RETRIES = 10                   # remote: retries
MAX_BACKOFF_S = 60.0               # remote: backoff_s (first wait; each wait is capped at MAX_BACKOFF_WAIT_S)
MAX_BACKOFF_WAIT_S = 300.0


class AgentError(CodesignError):
    """A bad agent setting (token, bounds, address) or a malformed client request."""


# ---- the request -------------------------------------------------------------------------------
# keys that would make as_target recurse into a nested value (which could be a path it would read)
NESTING_KEYS = ("arch", "net_config", "network")


def _no_nesting(d: dict) -> dict:
    bad = [k for k in NESTING_KEYS if k in d]
    if bad:
        raise ValueError(f"must not contain {bad}")
    return d


def _arch(v):
    if isinstance(v, str):
        if not 1 <= len(v) <= MAX_ARCH_CHARS:
            raise ValueError(f"an arch string must have 1 to {MAX_ARCH_CHARS:,} characters")
        return v
    if not isinstance(v, dict):
        raise ValueError("must be a JSON object (or a space's arch string)")
    if len(v) > MAX_ARCH_KEYS:
        raise ValueError(f"has {len(v):,} keys, more than the {MAX_ARCH_KEYS} accepted")
    return _no_nesting(v)


def _net_config(v):
    if isinstance(v, dict):
        _no_nesting(v)
    return v


def _onnx_text(v):
    if not isinstance(v, str):
        raise ValueError("must be the ONNX model as a base64 string")
    return v


class MeasureRequest(SchemaModel):
    """A ``POST /measure`` body: ``{space, arch}``, ``{net_config[, resolution]}`` or
    ``{network[, onnx]}`` (:data:`REQUEST_FORMS`). The values a later step resolves (the arch
    by its search space, the ONNX model by onnx) are only shape-checked here."""

    space: Optional[TextIn(MAX_SPACE_CHARS)] = None
    arch: Annotated[Optional[Union[str, dict[str, Any]]], BeforeValidator(_arch)] = None
    net_config: Annotated[Optional[NetConfigSpec], BeforeValidator(_net_config)] = None
    resolution: Optional[IntIn(1, MAX_RESOLUTION)] = None
    network: Optional[NetworkSpec] = None
    onnx: Annotated[Optional[str], BeforeValidator(_onnx_text)] = None

    @model_validator(mode="before")
    @classmethod
    def _form(cls, data):
        if not isinstance(data, dict):
            raise ValueError(f"must be a JSON object, got {type(data).__name__}")
        if set(data) not in REQUEST_FORMS:
            raise ValueError(f"unexpected fields {sorted(data)}: send {{'space', 'arch'}}, "
                             "{'net_config', 'resolution'}, {'network'} or {'network', 'onnx'}")
        return data


def parse_request(data) -> MeasureRequest:
    """A client's parsed JSON checked against :class:`MeasureRequest` (one ``AgentError`` line)."""
    return validate(MeasureRequest, data, "request", error=AgentError)


# ---- the answer --------------------------------------------------------------------------------
class MeasureAnswer(SchemaModel):
    """A ``POST /measure`` answer: ``LatencyResult.to_dict()`` with finite, bounded numbers."""

    ms: FloatIn(0.0, MAX_LATENCY_MS)
    spread: FloatIn(0.0, MAX_LATENCY_MS)
    samples: IntIn(1, MAX_SAMPLES)
    backend: TextIn(MAX_BACKEND_CHARS)
    details: dict[str, Any] = Field(default_factory=dict)


def check_answer(data, source: str, *, error: type[CodesignError] = AgentError) -> MeasureAnswer:
    """A measurement answer checked against :class:`MeasureAnswer` (one ``error`` line)."""
    return validate(MeasureAnswer, data, source, error=error)


# ---- settings ----------------------------------------------------------------------------------
class AgentSettings(SchemaModel):
    """The agent's bounds (``codesign agent serve`` options, :func:`make_server` arguments)."""

    host: TextIn(255)
    port: IntIn(0, 65535)
    max_bytes: IntIn(1, MAX_REQUEST_BYTES)
    max_seconds: FloatIn(0.0, MAX_MEASURE_SECONDS, lo_open=True)


class ClientOptions(SchemaModel):
    """The ``remote:`` backend's options."""

    timeout_s: FloatIn(0.0, MAX_CLIENT_TIMEOUT_S, lo_open=True) = 300.0
    retries: IntIn(0, MAX_RETRIES) = 3
    backoff_s: FloatIn(0.0, MAX_BACKOFF_S) = 0.5


# ---- the token ---------------------------------------------------------------------------------
def auth_header(token: str) -> str:
    """The ``Authorization`` header value that carries ``token``."""
    return f"Bearer {token}"


def check_token(token: str) -> str:
    """``token`` if it is usable as a bearer token (printable ASCII, no spaces, long enough)."""
    if not isinstance(token, str) or not token:
        raise AgentError("the agent token is empty")
    if not all(33 <= ord(c) <= 126 for c in token):
        raise AgentError("the agent token must be printable ASCII without spaces")
    if len(token) < MIN_TOKEN_CHARS:
        raise AgentError(f"the agent token is too short ({len(token)} characters, need {MIN_TOKEN_CHARS}); "
                         "make one with 'codesign agent token FILE'")
    if len(token) > MAX_TOKEN_CHARS:
        raise AgentError(f"the agent token is too long ({len(token):,} characters, at most {MAX_TOKEN_CHARS:,})")
    return token


def read_token_file(path: str, *, private: bool = True) -> str:
    """The token in ``path`` (surrounding whitespace stripped). With ``private``, refuse a file
    that any other user may read or write (a group or other permission bit set, POSIX)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise AgentError(f"token file {path!r} does not exist") from None
    except OSError as e:
        raise AgentError(f"cannot read token file {path!r}: {e.strerror or e}") from None
    if private and os.name == "posix" and st.st_mode & 0o077:
        raise AgentError(f"token file {path!r} has mode {st.st_mode & 0o777:04o}, open to other users; "
                         f"run: chmod 600 {path}")
    token = read_text(path, f"token file {path!r}", max_bytes=MAX_TOKEN_FILE_BYTES, error=AgentError).strip()
    if not token:
        raise AgentError(f"token file {path!r} is empty")
    try:
        return check_token(token)
    except AgentError as e:
        raise AgentError(f"token file {path!r}: {e}") from None


def write_token_file(path: str, *, overwrite: bool = False) -> str:
    """Write a new random token to ``path`` (mode 0600) and return it."""
    token = secrets.token_urlsafe(32)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise AgentError(f"{path!r} exists; pass --force to replace it") from None
    except OSError as e:
        raise AgentError(f"cannot write token file {path!r}: {e}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    if os.name == "posix":
        os.chmod(path, 0o600)
    return token
