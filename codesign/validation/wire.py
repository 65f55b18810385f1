"""The board agent's wire format, shared by the server (:mod:`codesign.validation.agent`) and
the ``remote:`` client (:mod:`codesign.validation.latency.remote`): endpoints, the bearer
token and its rules, and the request forms. Both sides import this module; it imports neither.

A request body is the JSON that :meth:`codesign.validation.latency.Target.to_request` writes:
one of :data:`REQUEST_FORMS`."""
from __future__ import annotations

import os
import secrets

from models.errors import CodesignError

HEALTH_PATH = "/health"
MEASURE_PATH = "/measure"
MIN_TOKEN_CHARS = 16
# the key sets a /measure request may have
REQUEST_FORMS = ({"space", "arch"}, {"net_config"}, {"net_config", "resolution"}, {"network"}, {"network", "onnx"})


class AgentError(CodesignError):
    """A bad agent setting (token, bounds, address) or a malformed client request."""


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
    return token


def read_token_file(path: str, *, private: bool = True) -> str:
    """The token in ``path`` (surrounding whitespace stripped). With ``private``, refuse a file
    that other users can read (POSIX)."""
    try:
        st = os.stat(path)
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
    except FileNotFoundError:
        raise AgentError(f"token file {path!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise AgentError(f"cannot read token file {path!r}: {e}") from None
    if private and os.name == "posix" and st.st_mode & 0o004:
        raise AgentError(f"token file {path!r} is readable by every user; run: chmod 600 {path}")
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
