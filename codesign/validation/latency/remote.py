"""``remote:http://host:port``: latency measured on a board by a codesign agent
(:mod:`codesign.validation.agent`, started there with ``codesign agent serve``); the wire format
both sides speak is :mod:`codesign.validation.wire`.

The target travels as data (:meth:`Target.to_request`): a search-space arch, a net.config or
the layer list. Options: ``token`` (else ``token_file``, else the environment variable
``CODESIGN_AGENT_TOKEN``), ``timeout_s`` (per attempt, default 300 — above the agent's default
limit of 120 s, plus the same again waiting for the measurement lock; at most a day),
``retries`` (default 3, at most 10) and ``backoff_s`` (default 0.5, at most 60; waits 0.5, 1,
2 s ..., each wait at most 300 s): :class:`~codesign.validation.wire.ClientOptions`.

The agent's answer is read up to a size bound and checked against
:class:`~codesign.validation.wire.MeasureAnswer` (finite, bounded latency and spread), so a
broken or hostile agent cannot hand back a NaN, an absurd number or an endless body.

Retried: failures to connect or a connection dropped before the answer, and the answers 502 and
503 (the agent is busy). Not retried: no answer within ``timeout_s`` (the board may still be
measuring), 504 (the measurement overran the agent's limit and would again), 500 (the backend
failed), 401 and the other 4xx (the request itself is wrong). Connections go straight to the
agent (proxy settings are ignored) and redirects are not followed, so the token only ever goes
to the URL given.
"""
from __future__ import annotations

import http.client
import json
import os
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from models.inputs import decode_text, parse_json, validate

from ..wire import (HEALTH_PATH, MAX_ANSWER_BYTES, MAX_BACKOFF_WAIT_S, MAX_URL_CHARS, MEASURE_PATH, AgentError,
                    ClientOptions, auth_header, check_answer, check_token, read_token_file)
from .base import LatencyBackend, LatencyError, LatencyResult, Target, register, split_spec

TOKEN_ENV = "CODESIGN_AGENT_TOKEN"
_RETRY_STATUS = (502, 503)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # the 3xx becomes an HTTPError


@register("remote")
class RemoteBackend(LatencyBackend):
    """Latency measured by a codesign agent at ``remote:URL``."""
    scheme = "remote"

    def __init__(self, spec: str, *, token: str | None = None, token_file: str | None = None,
                 timeout_s: float = 300.0, retries: int = 3, backoff_s: float = 0.5):
        super().__init__(spec)
        _, url = split_spec(spec)
        if len(url) > MAX_URL_CHARS:
            raise LatencyError(f"remote: the agent URL has {len(url):,} characters, at most {MAX_URL_CHARS:,}")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise LatencyError(f"{spec!r}: give the agent's address, e.g. remote:http://board.local:8765")
        try:
            parts.port
        except ValueError:
            raise LatencyError(f"{spec!r}: malformed port") from None
        if parts.query or parts.fragment:
            raise LatencyError(f"{spec!r}: the agent URL takes no query or fragment")
        self.url = url.rstrip("/")
        opts = validate(ClientOptions, {"timeout_s": timeout_s, "retries": retries, "backoff_s": backoff_s},
                        "remote", error=LatencyError)
        self.timeout_s, self.retries, self.backoff_s = opts.timeout_s, opts.retries, opts.backoff_s
        self._token = self._resolve_token(token, token_file)
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())

    @staticmethod
    def _resolve_token(token, token_file) -> str:
        if token and token_file:
            raise LatencyError("remote: give token= or token_file=, not both")
        try:
            if token:
                return check_token(str(token).strip())
            if token_file:
                return read_token_file(os.fspath(token_file), private=False)
            env = os.environ.get(TOKEN_ENV, "").strip()
            if env:
                return check_token(env)
        except AgentError as e:
            raise LatencyError(f"remote: {e}") from None
        raise LatencyError(f"remote: no agent token: pass token= or token_file=, or set {TOKEN_ENV}")

    def _measure(self, target: Target) -> LatencyResult:
        body = json.dumps(target.to_request()).encode("utf-8")
        t0 = time.perf_counter()
        answer = self._call("POST", MEASURE_PATH, body)
        rtt_ms = (time.perf_counter() - t0) * 1e3
        got = LatencyResult.from_dict(check_answer(answer, f"the answer of the agent at {self.url}",
                                                   error=LatencyError).model_dump())
        details = dict(got.details)
        details.update(agent=self.url, agent_backend=got.backend, round_trip_ms=rtt_ms)
        return LatencyResult(got.ms, got.spread, got.samples, f"remote:{self.url} ({got.backend})", details)

    def health(self) -> dict:
        """The agent's ``/health`` answer (``{"ok": true, "backend": SPEC}``)."""
        return self._call("GET", HEALTH_PATH, None)

    def _call(self, method: str, path: str, body: bytes | None) -> dict:
        url = self.url + path
        headers = {"Authorization": auth_header(self._token), "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(self.backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_WAIT_S))
            req = urllib.request.Request(url, data=body, headers=headers, method=method)
            try:
                with self._opener.open(req, timeout=self.timeout_s) as resp:
                    data = resp.read(MAX_ANSWER_BYTES + 1)
            except urllib.error.HTTPError as e:
                msg = _agent_message(e)
                if e.code == 401:
                    raise LatencyError(f"the agent at {self.url} refused the token: {msg}") from None
                if e.code in _RETRY_STATUS:
                    last = f"HTTP {e.code}: {msg}"
                    continue
                raise LatencyError(f"the agent at {self.url} answered HTTP {e.code}: {msg}") from None
            except urllib.error.URLError as e:  # could not connect (refused, unknown host, connect timeout)
                last = str(e.reason)
                continue
            except TimeoutError:
                raise LatencyError(f"the agent at {self.url} gave no answer within {self.timeout_s:g} s") from None
            except (ConnectionError, http.client.HTTPException) as e:  # dropped before the answer
                last = f"{type(e).__name__}: {e}"
                continue
            if len(data) > MAX_ANSWER_BYTES:
                raise LatencyError(f"the agent at {self.url} sent an answer over {MAX_ANSWER_BYTES:,} bytes")
            source = f"the answer of the agent at {self.url}"
            answer = parse_json(decode_text(data, source, error=LatencyError), source, error=LatencyError,
                                max_bytes=MAX_ANSWER_BYTES)
            if not isinstance(answer, dict):
                raise LatencyError(f"the agent at {self.url} sent a malformed answer (not a JSON object)")
            return answer
        n = self.retries + 1
        raise LatencyError(f"agent at {self.url} unreachable after {n} attempt{'s' * (n > 1)}: {last}")


def _agent_message(err: urllib.error.HTTPError) -> str:
    """The ``error`` field of an agent's JSON error answer, else the HTTP reason."""
    try:
        d = json.loads(err.read(65536) or b"{}")
        if isinstance(d, dict) and isinstance(d.get("error"), str):
            return d["error"] if len(d["error"]) <= 2000 else d["error"][:2000] + "..."
    except (OSError, ValueError, RecursionError, http.client.HTTPException):
        pass
    return str(err.reason)
