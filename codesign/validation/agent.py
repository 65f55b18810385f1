"""The remote board agent: a small token-authenticated HTTP service that measures latency on
the machine it runs on with one latency backend (``codesign agent serve``). The client side is
the ``remote:http://host:port`` backend (:mod:`codesign.validation.latency.remote`).

Endpoints:

- ``GET /health`` (no token): ``{"ok": true, "backend": SPEC}``.
- ``POST /measure`` with ``Authorization: Bearer TOKEN`` and a JSON body naming the target as
  :meth:`codesign.validation.latency.Target.to_request` writes it — ``{"space", "arch"}``,
  ``{"net_config", "resolution"}``, ``{"network": Network.to_dict()}`` or that with
  ``"onnx"``, the ONNX model as base64 (an ``onnxruntime`` agent runs it as is, other
  backends the layer list) — answers ``LatencyResult.to_dict()``.

Every other path needs the token too. Answers: 400 malformed JSON or target (JSON
``{"error": MESSAGE}``), 401 missing or wrong token (nothing is read further or measured), 404,
405, 411 no Content-Length, 413 body over ``max_bytes`` (refused before reading it), 500 the
backend failed unexpectedly, 503 busy, 504 the measurement overran ``max_seconds``.

The request is JSON data only: it is checked field by field and never names a file the agent
would read, nor anything it would import, evaluate or unpickle. An ONNX model is a graph of
standard operators (onnxruntime loads no custom-operator library unless told to); one whose
tensors point to external data files is refused, since loading it would read them.

Measurements run one at a time (a lock), each in a worker thread. A request that finds another
measurement running waits for it up to ``max_seconds`` (then 503). A measurement that overruns
``max_seconds`` is answered 504, but a Python thread cannot be killed: it keeps running, and the
agent answers 503 to new measurements until it has finished.
"""
from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from models.errors import CodesignError

from .wire import HEALTH_PATH, MEASURE_PATH, REQUEST_FORMS, AgentError, auth_header, check_token, read_token_file

__all__ = ["AgentError", "AgentServer", "is_loopback", "make_server", "read_token_file", "request_to_target", "serve"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_MAX_BYTES = 1 << 20
DEFAULT_MAX_SECONDS = 120.0
IO_TIMEOUT_S = 30.0       # a client that stalls mid-request is dropped after this
LINGER_S = 1.0            # after refusing a body, discard what the client still sends for this long

# keys that make as_target recurse into a nested value (which could be a path it would read)
_NESTING_KEYS = ("arch", "net_config", "network")


def is_loopback(host: str) -> bool:
    """Is ``host`` a loopback address (or ``localhost``)?"""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def request_to_target(req):
    """Check a client's JSON request and resolve it to a :class:`~codesign.validation.latency.Target`.

    Only the three request forms are accepted, with values of the right JSON types; nested
    objects that would make :func:`~codesign.validation.latency.as_target` resolve a string (a workload
    file or zoo name) are refused, so a request never makes the agent read a file."""
    from models.importers import is_net_config
    from models.spaces import get_space

    from .latency import as_target

    if not isinstance(req, dict):
        raise AgentError(f"the request must be a JSON object, got {type(req).__name__}")
    keys = set(req)
    if keys not in REQUEST_FORMS:
        raise AgentError(f"unexpected request fields {sorted(keys)}: send {{'space', 'arch'}}, "
                         f"{{'net_config', 'resolution'}}, {{'network'}} or {{'network', 'onnx'}}")
    if "arch" in req:
        space, arch = req["space"], req["arch"]
        if not isinstance(space, str):
            raise AgentError("'space' must be a search-space name (a string)")
        if isinstance(arch, str):  # an arch string (nasbench201): the space parses it
            arch = get_space(space).validate(arch)
        if not isinstance(arch, dict):
            raise AgentError("'arch' must be a JSON object (or a space's arch string)")
        _no_nesting(arch, "arch")
        if is_net_config(arch):
            raise AgentError("'arch' is a net.config: send it as {'net_config': ...}")
        return as_target(arch, space=space)
    if "net_config" in req:
        cfg, res = req["net_config"], req.get("resolution")
        if not is_net_config(cfg):
            raise AgentError("'net_config' must be an OFA net.config object (with 'blocks')")
        _no_nesting(cfg, "net_config")
        if res is not None and (isinstance(res, bool) or not isinstance(res, int) or res <= 0):
            raise AgentError(f"'resolution' must be a positive integer, got {res!r}")
        return as_target(cfg, resolution=res)
    net = req["network"]
    if not isinstance(net, dict):
        raise AgentError("'network' must be a Network.to_dict() object")
    target = as_target({"network": net})
    if "onnx" in req:
        target.onnx_bytes = _onnx_model(req["onnx"])
    return target


def _onnx_model(text) -> bytes:
    """The ONNX model sent as base64, checked to parse and to carry all its data inline."""
    import binascii

    import onnx
    from onnx.external_data_helper import uses_external_data

    if not isinstance(text, str):
        raise AgentError("'onnx' must be the ONNX model as a base64 string")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise AgentError("'onnx' is not valid base64") from None
    try:
        model = onnx.load_model_from_string(data)
    except Exception:  # protobuf raises its own DecodeError
        raise AgentError("'onnx' does not decode to an ONNX model") from None
    if not model.graph.node:
        raise AgentError("'onnx' does not decode to an ONNX model (no graph nodes)")

    def tensors(graph):
        yield from graph.initializer
        for node in graph.node:
            for a in node.attribute:
                if a.HasField("t"):
                    yield a.t
                yield from a.tensors
                for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                    yield from tensors(g)

    if any(uses_external_data(t) for t in tensors(model.graph)):
        raise AgentError("the ONNX model refers to external data files; send a model with its data inline")
    return data


def _no_nesting(d: dict, what: str) -> None:
    bad = [k for k in _NESTING_KEYS if k in d]
    if bad:
        raise AgentError(f"'{what}' must not contain {bad}")


def _json_default(o):
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    return str(o)


class AgentServer(ThreadingHTTPServer):
    """The agent's HTTP server: one latency backend, one token, the request bounds."""
    daemon_threads = True

    def __init__(self, address, backend, *, token: str, max_bytes: int, max_seconds: float, quiet: bool):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.backend = backend
        self.backend_spec = backend.spec
        self.max_bytes = int(max_bytes)
        self.max_seconds = float(max_seconds)
        self.quiet = quiet
        self._auth = auth_header(check_token(token)).encode("ascii")
        self._run_lock = threading.Lock()   # held while a measurement runs (released by its worker)
        self._state = threading.Lock()      # guards _overrun against the worker finishing
        self._overrun = False
        self.measured = 0                   # measurements started
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def authorized(self, header: str | None) -> bool:
        got = (header or "").strip().encode("utf-8", "replace")
        return hmac.compare_digest(got, self._auth)

    def run_measurement(self, target) -> tuple[int, dict]:
        """Measure ``target`` in a worker thread under the lock; (HTTP status, JSON answer)."""
        with self._state:
            if self._overrun:
                return 503, {"error": f"busy: a measurement that exceeded {self.max_seconds:g} s is still "
                                      "running; retry later"}
        if not self._run_lock.acquire(timeout=self.max_seconds):
            return 503, {"error": f"busy: another measurement ran for more than {self.max_seconds:g} s; retry later"}
        box: dict = {}

        def work():
            try:
                box["result"] = self.backend.measure(target)
            except BaseException as e:  # reported to the client below
                box["error"] = e
            finally:
                with self._state:
                    box["done"] = True
                    self._overrun = False
                self._run_lock.release()
                finished.set()

        finished = threading.Event()
        self.measured += 1
        try:
            threading.Thread(target=work, name="codesign-agent-measure", daemon=True).start()
        except BaseException:
            self._run_lock.release()
            raise
        finished.wait(self.max_seconds)
        with self._state:
            if not box.get("done"):
                self._overrun = True
                return 504, {"error": f"the measurement exceeded {self.max_seconds:g} s; the agent refuses new "
                                      "measurements until it finishes"}
        err = box.get("error")
        if isinstance(err, CodesignError):
            return 400, {"error": str(err)}
        if err is not None:
            return 500, {"error": f"the backend failed: {type(err).__name__}: {err}"}
        return 200, box["result"].to_dict()

    def handle_error(self, request, client_address):
        if not self.quiet:
            e = sys.exc_info()[1]
            sys.stderr.write(f"codesign-agent: {client_address[0]} connection error: {type(e).__name__}: {e}\n")


class _Handler(BaseHTTPRequestHandler):
    server: AgentServer
    server_version = "codesign-agent/1"
    sys_version = ""
    timeout = IO_TIMEOUT_S

    # -- routes ---------------------------------------------------------------------------
    def do_GET(self):
        self._t0 = time.perf_counter()
        path = urlsplit(self.path).path
        if path == HEALTH_PATH:
            return self._reply(200, {"ok": True, "backend": self.server.backend_spec})
        if not self._check_auth():
            return
        if path == MEASURE_PATH:
            return self._reply(405, {"error": "use POST /measure"})
        self._reply(404, {"error": f"no such endpoint {path!r} (POST /measure, GET /health)"})

    def do_POST(self):
        self._t0 = time.perf_counter()
        path = urlsplit(self.path).path
        if not self._check_auth():
            return
        if path != MEASURE_PATH:
            self._reply(404, {"error": f"no such endpoint {path!r} (POST /measure, GET /health)"})
            return self._discard(self._declared_length(), self.server.max_bytes)
        length = self._declared_length()
        if length is None:
            return self._reply(411, {"error": "a Content-Length header is required"})
        if length < 0:
            return self._reply(400, {"error": "malformed Content-Length header"})
        if length > self.server.max_bytes:
            self._reply(413, {"error": f"request of {length} bytes exceeds the agent's limit of "
                                       f"{self.server.max_bytes} bytes (an ONNX model travels as base64: "
                                       f"start the agent with a larger --max-request-bytes)"})
            return self._discard(length, 8 * self.server.max_bytes)
        try:
            body = self.rfile.read(length)
        except OSError:  # the client stalled or went away
            self.close_connection = True
            return self._log(0)
        if len(body) < length:
            return self._reply(400, {"error": f"truncated body: {len(body)} of {length} bytes"})
        try:
            req = json.loads(body)
        except json.JSONDecodeError as e:
            return self._reply(400, {"error": f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}"})
        except (ValueError, RecursionError) as e:
            return self._reply(400, {"error": f"malformed JSON: {type(e).__name__}: {e}"})
        try:
            target = request_to_target(req)
        except CodesignError as e:
            return self._reply(400, {"error": str(e)})
        except Exception as e:  # data that passed the shape checks but not the importers
            return self._reply(400, {"error": f"malformed target ({type(e).__name__}: {e})"})
        status, answer = self.server.run_measurement(target)
        self._reply(status, answer)

    # -- helpers --------------------------------------------------------------------------
    def _check_auth(self) -> bool:
        if self.server.authorized(self.headers.get("Authorization")):
            return True
        has = "Authorization" in self.headers
        self._reply(401, {"error": "wrong token" if has else "missing token (Authorization: Bearer TOKEN)"},
                    extra={"WWW-Authenticate": 'Bearer realm="codesign-agent"'})
        self._discard(self._declared_length(), self.server.max_bytes)
        return False

    def _declared_length(self) -> int | None:
        text = self.headers.get("Content-Length")
        if text is None:
            return None
        try:
            return int(text)
        except ValueError:
            return -1

    def _discard(self, length: int | None, cap: int) -> None:
        """Close after an unread body without resetting the connection before the client has
        read the answer: stop sending, then drop what it sends (at most ``cap`` bytes, LINGER_S)."""
        self.close_connection = True
        if not length or length <= 0:
            return
        try:
            self.connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + LINGER_S
            left = min(length, cap)
            while left > 0:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    break
                self.connection.settimeout(wait)
                chunk = self.rfile.read1(min(left, 65536))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass

    def _reply(self, status: int, payload: dict, extra: dict | None = None) -> None:
        data = json.dumps(payload, default=_json_default).encode("utf-8")
        self._log(status)  # before the answer, so the line exists once the client has it
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True

    def _log(self, status: int) -> None:
        if self.server.quiet:
            return
        ms = (time.perf_counter() - getattr(self, "_t0", time.perf_counter())) * 1e3
        path = urlsplit(self.path).path
        sys.stderr.write(f"codesign-agent: {self.client_address[0]} \"{self.command} {path}\" "
                         f"{status or '-'} {ms:.1f} ms\n")

    def log_request(self, code="-", size="-"):
        pass  # _log writes one line per request

    def log_message(self, format, *args):
        if not self.server.quiet:
            sys.stderr.write(f"codesign-agent: {self.client_address[0]} {format % args}\n")


def make_server(backend_spec, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, token: str = "",
                max_bytes: int = DEFAULT_MAX_BYTES, max_seconds: float = DEFAULT_MAX_SECONDS,
                *, quiet: bool = False) -> AgentServer:
    """An agent bound to ``host:port`` (port 0: an ephemeral port; ``server.server_address``
    and ``server.url`` give it), not yet serving. ``backend_spec`` is a spec string or a
    :class:`~codesign.validation.latency.LatencyBackend`."""
    from .latency import LatencyBackend, get_backend

    if isinstance(max_bytes, bool) or int(max_bytes) <= 0:
        raise AgentError(f"max request bytes must be a positive integer, got {max_bytes!r}")
    if not float(max_seconds) > 0:
        raise AgentError(f"max measurement seconds must be positive, got {max_seconds!r}")
    if not 0 <= int(port) <= 65535:
        raise AgentError(f"port must be in [0, 65535], got {port}")
    backend = backend_spec if isinstance(backend_spec, LatencyBackend) else get_backend(backend_spec)
    try:
        return AgentServer((host, int(port)), backend, token=token, max_bytes=max_bytes,
                           max_seconds=max_seconds, quiet=quiet)
    except OSError as e:
        raise AgentError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def serve(backend_spec, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, token: str = "",
          max_bytes: int = DEFAULT_MAX_BYTES, max_seconds: float = DEFAULT_MAX_SECONDS,
          *, quiet: bool = False, ready=None) -> None:
    """Run an agent until interrupted (Ctrl-C returns normally). ``ready(server)`` is called
    once it listens."""
    server = make_server(backend_spec, host, port, token, max_bytes, max_seconds, quiet=quiet)
    try:
        if ready is not None:
            ready(server)
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
