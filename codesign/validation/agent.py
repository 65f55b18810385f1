"""The remote board agent: a small token-authenticated HTTP service that measures latency on
the machine it runs on with one latency backend (``codesign agent serve``). The client side is
the ``remote:http://host:port`` backend (:mod:`codesign.validation.latency.remote`); the wire
format, its schemas and bounds are :mod:`codesign.validation.wire`.

Endpoints:

- ``GET /health`` (no token): ``{"ok": true, "backend": SPEC}``.
- ``POST /measure`` with ``Authorization: Bearer TOKEN`` and a JSON body naming the target as
  :meth:`codesign.validation.latency.Target.to_request` writes it — ``{"space", "arch"}``,
  ``{"net_config", "resolution"}``, ``{"network": Network.to_dict()}`` or that with
  ``"onnx"``, the ONNX model as base64 (an ``onnxruntime`` agent runs it as is, other
  backends the layer list) — answers ``LatencyResult.to_dict()``.

Every other path needs the token too. Answers: 400 malformed JSON, a request outside its schema
or a target that cannot be built (JSON ``{"error": MESSAGE}`` naming the field and the accepted
range), 401 missing or wrong token (nothing is read further or measured), 404, 405, 411 no
Content-Length, 413 body over ``max_bytes`` (refused before reading it), 500 the backend failed
or returned a non-finite or out-of-range result, 503 busy, 504 the measurement overran
``max_seconds`` (and was stopped).

The request is JSON data only: it is checked against its schema and never names a file the
agent would read, nor anything it would import, evaluate or unpickle. An ONNX model is a graph
of standard operators (onnxruntime loads no custom-operator library unless told to); one whose
tensors point to external data files is refused, since loading it would read them.

Measurements run one at a time, in a *worker process*: the agent forks a measuring host at
start (single-threaded, before it listens), which forks the worker; the worker builds the
backend (from its spec, so that e.g. CUDA is first initialised there) and measures the targets
it is sent. A measurement that overruns ``max_seconds`` is answered 504 and its worker's process
group is killed; the host forks a fresh worker at once, so the next request is served as usual
(a fresh worker's first-use set-up, such as initialising a GPU, counts toward its first
measurement). A request that finds another measurement running waits for it up to
``max_seconds`` (then 503). Answers are cached per target for the agent's lifetime (at most
``MAX_CACHED_RESULTS``, the oldest dropped first).
"""
from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import math
import os
import pickle
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from models.errors import CodesignError
from models.inputs import decode_text, parse_json, validate

from .wire import (HEALTH_PATH, MEASURE_PATH, AgentError, AgentSettings, auth_header, check_answer,
                   check_token, parse_request, read_token_file)

__all__ = ["AgentError", "AgentServer", "is_loopback", "make_server", "read_token_file", "request_to_target", "serve"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_MAX_BYTES = 1 << 20
DEFAULT_MAX_SECONDS = 120.0
IO_TIMEOUT_S = 30.0       # a client that stalls mid-request is dropped after this
LINGER_S = 1.0            # after refusing a body, discard what the client still sends for this long
START_TIMEOUT_S = 300.0   # the worker builds the backend (imports, device set-up) within this at start
HOST_SLACK_S = 10.0       # the measuring host answers within max_seconds + this, or is restarted
REAP_WAIT_S = 5.0         # how long a killed worker is waited for before it is left to be reaped later
MAX_CACHED_RESULTS = 10_000  # answers kept per agent (the oldest go first)
# modules the measuring host imports once, so that a worker forked after a kill starts warm
# (importing torch does not initialise CUDA: the worker still does that itself)
_PRELOAD = {"torch-cpu": ("torch",), "torch-cuda": ("torch",), "onnxruntime": ("onnxruntime", "onnx", "torch")}


def is_loopback(host: str) -> bool:
    """Is ``host`` a loopback address (or ``localhost``)?"""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def request_to_target(req):
    """Check a client's parsed JSON request against :class:`~codesign.validation.wire.MeasureRequest`
    and resolve it to a :class:`~codesign.validation.latency.Target`; one ``CodesignError`` line
    (the field and the accepted range) when either fails.

    Only the request forms are accepted; nested objects that would make
    :func:`~codesign.validation.latency.as_target` resolve a string (a workload file or zoo name)
    are refused, so a request never makes the agent read a file."""
    from models.importers import is_net_config
    from models.spaces import get_space

    from .latency import as_target

    parsed = parse_request(req)
    if parsed.arch is not None:
        space, arch = req["space"], req["arch"]
        if isinstance(arch, str):  # an arch string (nasbench201): the space parses it
            arch = get_space(space).validate(arch)
        if not isinstance(arch, dict):
            raise AgentError("request: arch: must be a JSON object (or a space's arch string)")
        if is_net_config(arch):
            raise AgentError("request: arch: is a net.config: send it as {'net_config': ...}")
        return as_target(arch, space=space)
    if parsed.net_config is not None:
        return as_target(req["net_config"], resolution=req.get("resolution"))
    target = as_target({"network": req["network"]})
    if "onnx" in req:
        target.onnx_bytes = _onnx_model(req["onnx"])
    return target


def _onnx_model(text: str) -> bytes:
    """The ONNX model sent as base64, checked to parse and to carry all its data inline."""
    import binascii

    import onnx
    from onnx.external_data_helper import uses_external_data

    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise AgentError("request: onnx: not valid base64") from None
    try:
        model = onnx.load_model_from_string(data)
    except Exception:  # protobuf raises its own DecodeError
        raise AgentError("request: onnx: does not decode to an ONNX model") from None
    if not model.graph.node:
        raise AgentError("request: onnx: does not decode to an ONNX model (no graph nodes)")

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
        raise AgentError("request: onnx: the model refers to external data files; send a model with its data inline")
    return data


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


# ---- the measuring processes ------------------------------------------------------------------
# parent (HTTP server, threads) --pipe--> host (forked once, single-threaded) --pipe--> worker
# (forked by the host, own process group, builds the backend and measures). Messages:
#   parent -> host: ("measure", target | None, seconds) | ("stop",)
#   host -> worker: target | None (None: report that the backend is ready)
#   worker -> host -> parent: ("ok", result JSON) | ("ready", spec) | ("error", message) |
#                             ("fail", message); host -> parent also ("timeout", seconds) | ("died", why)

def _die_with_parent(parent_pid: int) -> None:
    """Have the kernel kill this process when its parent exits (Linux; elsewhere best effort)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent went away before the request took effect
        os._exit(1)


def _child_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the server stops its children itself
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _worker_main(backend, conn) -> None:
    from .latency import LatencyBackend, get_backend

    failed = None
    if not isinstance(backend, LatencyBackend):
        try:
            backend = get_backend(backend)
        except CodesignError as e:
            failed = ("error", str(e))
        except Exception as e:  # noqa: BLE001 - reported to the parent as a failure
            failed = ("fail", f"the backend failed to start: {type(e).__name__}: {e}")
    while True:
        try:
            target = conn.recv()
        except (EOFError, OSError):
            return
        if failed is not None:
            reply = failed
        elif target is None:
            reply = ("ready", backend.spec)
        else:
            try:
                result = backend.measure(target).to_dict()
            except CodesignError as e:
                reply = ("error", str(e))
            except Exception as e:  # noqa: BLE001
                reply = ("fail", f"the backend failed: {type(e).__name__}: {e}")
            else:
                reply = _result_json(result)
        conn.send(reply)


def _result_json(result: dict) -> tuple[str, str]:
    """("ok", JSON text) for a result within :class:`~codesign.validation.wire.MeasureAnswer`,
    else ("fail", which field is out of range or not finite)."""
    try:
        check_answer(result, "the backend's result")
        return "ok", json.dumps(result, default=_json_default, allow_nan=False)
    except AgentError as e:
        return "fail", str(e)
    except ValueError:
        where = _non_finite(json.loads(json.dumps(result, default=_json_default)), "")
        return "fail", f"the backend's result: {where or 'a value'} is not a finite number"


def _non_finite(value, path: str) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        found = _non_finite(v, f"{path}[{k}]" if isinstance(k, int) else f"{path}.{k}" if path else str(k))
        if found:
            return found
    return None


def _fork(main, *args, close=()) -> tuple[int, object]:
    """Fork a child that runs ``main(*args, conn, parent_pid)`` and exits, after closing its copies
    of the ``close`` connections; (pid, the parent's end of the pipe)."""
    from multiprocessing import Pipe

    ours, theirs = Pipe()
    parent = os.getpid()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        code = 0
        try:
            for c in (ours, *close):
                c.close()
            _child_signals()
            main(*args, theirs, parent)
        except BaseException:  # noqa: BLE001
            code = 1
        finally:
            os._exit(code)
    theirs.close()
    return pid, ours


def _reap(pid: int, wait_s: float) -> int | None:
    """Wait up to ``wait_s`` for child ``pid``; its wait status, or None if it is still there."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return 0
        if got:
            return status
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.005)


def _why(status: int | None) -> str:
    if status is None:
        return "it did not exit"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            return f"killed by {signal.Signals(sig).name}"
        except ValueError:
            return f"killed by signal {sig}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def _run_worker(backend, conn, host_pid) -> None:
    os.setpgid(0, 0)  # its own group: a kill reaches whatever it started, too
    _die_with_parent(host_pid)
    _worker_main(backend, conn)


def _preload(backend) -> None:
    import importlib

    from .latency import split_spec

    spec = backend if isinstance(backend, str) else getattr(backend, "spec", "")
    for name in _PRELOAD.get(split_spec(spec)[0], ()):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the worker reports what is missing
            pass


def _host_main(backend, conn, parent_pid) -> None:
    """The measuring host: forks the worker, times each measurement, kills and replaces a
    worker that overruns or dies."""
    _preload(backend)
    worker = None     # (pid, conn)
    zombies = []      # killed workers not reaped yet

    def start():  # the worker does not hold the host's pipe to the server
        return _fork(_run_worker, backend, close=(conn,))

    def kill(w):
        pid, wconn = w
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        wconn.close()
        status = _reap(pid, REAP_WAIT_S)
        if status is None:
            zombies.append(pid)
        return status

    try:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                return
            zombies[:] = [z for z in zombies if _reap(z, 0) is None]
            if msg[0] == "stop":
                return
            _, payload, seconds = msg
            if worker is None:
                worker = start()
            try:
                worker[1].send(payload)
                reply = worker[1].recv() if worker[1].poll(seconds) else ("timeout", seconds)
            except (EOFError, OSError):
                reply = None
            if reply is None or reply[0] == "timeout":
                status = kill(worker)
                if reply is None:
                    reply = ("died", f"the measuring process ended ({_why(status)})")
                worker = start()  # ready for the next request at once
            conn.send(reply)
    finally:
        if worker is not None:
            kill(worker)


class _Measurer:
    """The parent's side of the measuring host (one conversation at a time: the caller locks)."""

    def __init__(self, backend):
        self._backend = backend
        self._closed = False
        self.close_in_child = ()  # sockets a host forked later must not keep open (the listening one)
        self._pid, self._conn = _fork(_host_main, backend)

    def call(self, payload, seconds: float) -> tuple:
        if self._closed:
            return ("fail", "the agent is shutting down")
        try:
            self._conn.send(("measure", payload, seconds))  # pickled whole before anything is sent
        except (pickle.PicklingError, TypeError, AttributeError) as e:
            return ("fail", f"cannot send the target to the measuring process: {type(e).__name__}: {e}")
        except OSError:
            pass  # the host is gone: poll() below says so
        try:
            if self._conn.poll(seconds + HOST_SLACK_S):
                return self._conn.recv()
            why = f"gave no answer within {seconds + HOST_SLACK_S:g} s"
        except (EOFError, OSError) as e:
            why = f"failed ({type(e).__name__})"
        if self._closed:
            return ("fail", "the agent is shutting down")
        self._stop(kill=True)
        # a rare path: forked from the threaded server, it closes its copy of the listening socket
        self._pid, self._conn = _fork(_host_main, self._backend, close=self.close_in_child)
        return ("fail", f"the measuring process {why}; it was restarted")

    def _stop(self, kill: bool = False) -> None:
        if not kill:
            try:
                self._conn.send(("stop",))
            except OSError:
                kill = True
        try:
            self._conn.close()
        except OSError:
            pass
        if not kill and _reap(self._pid, REAP_WAIT_S) is not None:
            return
        try:
            os.kill(self._pid, signal.SIGKILL)  # its worker dies with it (PR_SET_PDEATHSIG)
        except ProcessLookupError:
            pass
        _reap(self._pid, REAP_WAIT_S)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._stop()


class AgentServer(ThreadingHTTPServer):
    """The agent's HTTP server: one latency backend (measured in a worker process), one token,
    the request bounds. ``backend`` is a spec string (the backend is then built in the worker:
    prefer it for CUDA, which cannot be used across a fork once initialised) or a
    :class:`~codesign.validation.latency.LatencyBackend` instance (inherited by the worker)."""
    daemon_threads = True

    def __init__(self, address, backend, *, token: str, max_bytes: int, max_seconds: float, quiet: bool):
        from .latency import LatencyError

        settings = validate(AgentSettings, {"host": address[0], "port": address[1], "max_bytes": max_bytes,
                                            "max_seconds": max_seconds}, "agent settings", error=AgentError)
        address = (settings.host, settings.port)
        if ":" in settings.host:
            self.address_family = socket.AF_INET6
        self.backend = backend
        self.max_bytes = settings.max_bytes
        self.max_seconds = settings.max_seconds
        self.quiet = quiet
        self._auth = auth_header(check_token(token)).encode("ascii")
        self._run_lock = threading.Lock()   # held while a measurement runs
        self._results: dict[str, dict] = {}  # target key -> answer (the backend caches live here)
        self.measured = 0                   # measurements started (answered from the cache or not)
        if not hasattr(os, "fork"):
            raise AgentError("the agent measures in a forked worker process and needs os.fork (Linux, macOS)")
        # forked before the socket exists, so the measuring processes never hold it
        self._measurer = _Measurer(backend)
        try:
            kind, value = self._measurer.call(None, START_TIMEOUT_S)
            if kind == "error":
                raise LatencyError(value)
            if kind == "timeout":
                raise AgentError(f"the backend did not start within {START_TIMEOUT_S:g} s")
            if kind != "ready":
                raise AgentError(f"the backend did not start: {value}")
            self.backend_spec = value
            super().__init__(address, _Handler)
            self._measurer.close_in_child = (self.socket,)
        except BaseException:
            self._measurer.close()
            raise

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def authorized(self, header: str | None) -> bool:
        got = (header or "").strip().encode("utf-8", "replace")
        return hmac.compare_digest(got, self._auth)

    def run_measurement(self, target) -> tuple[int, dict]:
        """Measure ``target`` in the worker process under the lock; (HTTP status, JSON answer)."""
        if not self._run_lock.acquire(timeout=self.max_seconds):
            return 503, {"error": f"busy: another measurement ran for more than {self.max_seconds:g} s; retry later"}
        try:
            self.measured += 1
            key = target.key
            if key in self._results:
                return 200, self._results[key]
            kind, value = self._measurer.call(target, self.max_seconds)
            if kind == "ok":
                try:
                    answer = check_answer(json.loads(value), "the backend's result").model_dump()
                except AgentError as e:
                    return 500, {"error": str(e)}
                if len(self._results) >= MAX_CACHED_RESULTS:
                    del self._results[next(iter(self._results))]
                self._results[key] = answer
                return 200, answer
        finally:
            self._run_lock.release()
        if kind == "error":
            return 400, {"error": value}
        if kind == "timeout":
            return 504, {"error": f"the measurement exceeded {self.max_seconds:g} s and was stopped"}
        return 500, {"error": value}

    def server_close(self):
        super().server_close()
        self._measurer.close()

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
        self._reply(404, {"error": f"no such endpoint {path[:200]!r} (POST /measure, GET /health)"})

    def do_POST(self):
        self._t0 = time.perf_counter()
        path = urlsplit(self.path).path
        if not self._check_auth():
            return
        if path != MEASURE_PATH:
            self._reply(404, {"error": f"no such endpoint {path[:200]!r} (POST /measure, GET /health)"})
            return self._discard(self._declared_length(), self.server.max_bytes)
        length = self._declared_length()
        if length is None:
            return self._reply(411, {"error": "a Content-Length header is required"})
        if length < 0:
            return self._reply(400, {"error": "malformed or repeated Content-Length header"})
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
            # bounded depth, finite numbers, no duplicate keys, strict UTF-8
            req = parse_json(decode_text(body, "request", error=AgentError), "request", error=AgentError,
                             max_bytes=self.server.max_bytes)
            target = request_to_target(req)
        except CodesignError as e:
            return self._reply(400, {"error": str(e)})
        except Exception as e:  # noqa: BLE001 - data that passed the schema but not an importer
            return self._reply(400, {"error": f"request: malformed target ({type(e).__name__}: {e})"})
        status, answer = self.server.run_measurement(target)
        self._reply(status, answer)

    # -- helpers --------------------------------------------------------------------------
    def _check_auth(self) -> bool:
        given = self.headers.get_all("Authorization") or []
        if len(given) == 1 and self.server.authorized(given[0]):
            return True
        why = ("missing token (Authorization: Bearer TOKEN)" if not given else "wrong token" if len(given) == 1
               else "repeated Authorization header")
        self._reply(401, {"error": why},
                    extra={"WWW-Authenticate": 'Bearer realm="codesign-agent"'})
        self._discard(self._declared_length(), self.server.max_bytes)
        return False

    def _declared_length(self) -> int | None:
        """The Content-Length (None if absent; -1 if malformed or repeated)."""
        given = self.headers.get_all("Content-Length") or []
        if not given:
            return None
        text = given[0].strip()
        if len(given) > 1 or not text.isdigit() or len(text) > 19:
            return -1
        return int(text)

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
    :class:`~codesign.validation.latency.LatencyBackend` (see :class:`AgentServer`); the
    bounds are those of :class:`~codesign.validation.wire.AgentSettings`."""
    try:
        return AgentServer((host, port), backend_spec, token=token, max_bytes=max_bytes,
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
