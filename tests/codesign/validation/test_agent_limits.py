"""The board agent under bad input: bounded requests, answers and settings, and measurements
that overrun, crash or return nonsense, each answered at once while the agent keeps serving."""
import json
import math
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codesign.cli import main
from codesign.validation.agent import AgentError, make_server, request_to_target
from codesign.validation.latency import LatencyBackend, LatencyError, LatencyResult, get_backend
from codesign.validation.wire import (MAX_ARCH_CHARS, MAX_MEASURE_SECONDS, MAX_REQUEST_BYTES, MAX_RETRIES,
                                      MeasureRequest, check_answer, parse_request)
from models.layer import Layer
from models.network import Network
from models.schema import MAX_DIM, MAX_RESOLUTION

TOKEN = "test-token-0123456789abcdef"


class Probe(LatencyBackend):
    """What it does depends on the first layer's K: 7 starts a ``sleep`` child and sleeps
    (pids written to ``pidfile``), 6 exits the process, 5 returns NaN ms, 4 returns 1e300 ms,
    3 raises, 2 puts a NaN into the details; anything else: ms = MACs / 1e6."""
    scheme = "probe"

    def __init__(self, spec="probe", pidfile=None):
        super().__init__(spec)
        self.pidfile = pidfile

    def _measure(self, t):
        k = t.network.layers[0].K
        if k == 7:
            child = subprocess.Popen(["sleep", "60"])
            with open(self.pidfile, "w") as f:
                f.write(f"{os.getpid()} {child.pid}")
            time.sleep(60)
        if k == 6:
            os._exit(3)
        if k == 3:
            raise RuntimeError("boom")
        ms = {5: math.nan, 4: 1e300}.get(k, t.network.macs / 1e6)
        details = {"pid": os.getpid(), **({"x": math.nan} if k == 2 else {})}
        return LatencyResult(ms, 0.0, 1, self.spec, details)


def net(k=8, **dims):
    return Network("n", (Layer(name="conv", K=k, C=3, P=4, Q=4, R=3, S=3, **dims),), resolution=4)


def post(srv, body, timeout=10):
    """POST /measure with ``body`` (bytes, or JSON-encoded): (status, JSON answer)."""
    import http.client
    host, port = srv.server_address[:2]
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn.request("POST", "/measure", data, {"Authorization": f"Bearer {TOKEN}"})
    resp = conn.getresponse()
    out = resp.status, json.loads(resp.read())
    conn.close()
    return out


def gone(pid: int) -> bool:
    """Not running: absent, or a zombie waiting for a reaper."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def wait_gone(pid: int, within: float = 2.0) -> bool:
    deadline = time.monotonic() + within
    while not gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def ok_body(k=8):
    return {"network": net(k).to_dict()}


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_an_overrun_is_killed_with_its_children_and_the_agent_serves_at_once(agent, tmp_path):
    pidfile = tmp_path / "pids"
    srv = agent(Probe(pidfile=str(pidfile)), max_seconds=0.5)
    t0 = time.monotonic()
    status, ans = post(srv, ok_body(7))
    took = time.monotonic() - t0
    assert status == 504 and ans == {"error": "the measurement exceeded 0.5 s and was stopped"}
    assert 0.5 <= took < 2.0
    worker, child = map(int, pidfile.read_text().split())
    assert wait_gone(worker, 0.2) and wait_gone(child)  # the worker's whole process group is killed
    t1 = time.monotonic()
    status, ans = post(srv, ok_body(8))
    assert status == 200 and ans["ms"] == 8 * 432 / 1e6 and ans["details"]["pid"] != worker
    assert time.monotonic() - t1 < 2.0
    # the same again: every overrun is stopped, none makes the agent busy
    assert post(srv, ok_body(7))[0] == 504
    assert post(srv, ok_body(9))[0] == 200
    last = post(srv, ok_body(10))[1]["details"]["pid"]
    srv.shutdown()
    srv.server_close()
    assert wait_gone(last) and wait_gone(srv._measurer._pid)  # closing stops the measuring processes


def test_a_crash_or_nonsense_from_the_backend_is_a_500_and_the_agent_keeps_serving(agent):
    srv = agent(Probe())
    status, ans = post(srv, ok_body(6))
    assert status == 500 and ans["error"] == "the measuring process ended (exit status 3)"
    status, ans = post(srv, ok_body(5))
    assert status == 500 and ans["error"].startswith("the backend's result: ms: must be a finite number in [0, 1e+09]")
    status, ans = post(srv, ok_body(4))
    assert status == 500 and "ms: must be a finite number in [0, 1e+09] (got 1e+300)" in ans["error"]
    status, ans = post(srv, ok_body(3))
    assert status == 500 and ans["error"] == "the backend failed: RuntimeError: boom"
    status, ans = post(srv, ok_body(2))
    assert status == 500 and ans["error"] == "the backend's result: details.x is not a finite number"
    status, ans = post(srv, ok_body(8))
    assert status == 200 and ans["ms"] == 8 * 432 / 1e6
    assert srv.measured == 6



def test_a_lost_measuring_host_is_replaced(agent):
    import signal
    srv = agent(Probe())
    assert post(srv, ok_body(8))[0] == 200
    old = srv._measurer._pid
    os.kill(old, signal.SIGKILL)
    assert wait_gone(old)
    status, ans = post(srv, ok_body(9))
    assert status == 500 and ans["error"].startswith("the measuring process failed") and "restarted" in ans["error"]
    assert srv._measurer._pid != old
    assert post(srv, ok_body(9))[0] == 200

BAD_REQUESTS = {
    "huge layer K=2**62": ({"network": {**net().to_dict(), "layers": [
        {**net().to_dict()["layers"][0], "dims": {**net().layers[0].dims, "K": 2 ** 62}, "macs": None}]}},
        "request: network.layers[0].dims.K: must be a positive integer up to 1,048,576 (got 4611686018427387904)"),
    "K as a float 1e20": ({"network": {**net().to_dict(), "layers": [
        {**net().to_dict()["layers"][0], "dims": {**net().layers[0].dims, "K": 1e20}, "macs": None}]}},
        "request: network.layers[0].dims.K: not an integer"),
    "overflowing resolution": ({"net_config": {}, "resolution": 10 ** 30},
                               "request: net_config.first_conv: Field required"),
    "resolution out of range": ({"network": {**net().to_dict(), "resolution": MAX_RESOLUTION + 1}},
                                f"request: network.resolution: must be a positive integer up to {MAX_RESOLUTION:,}"),
    "long space name": ({"space": "x" * 65, "arch": {}}, "request: space: must be a string of 1 to 64 characters"),
    "long arch string": ({"space": "nasbench201", "arch": "|" * (MAX_ARCH_CHARS + 1)},
                         f"request: arch: an arch string must have 1 to {MAX_ARCH_CHARS:,} characters"),
    "a net.config nesting a path": ({"net_config": {"network": "/etc/passwd"}},
                                    "request: net_config: must not contain ['network']"),
    "a file name for a network": ({"network": "resnet18"}, "request: network: must be an object, got str"),
}


@pytest.mark.parametrize("why", list(BAD_REQUESTS))
def test_out_of_bounds_requests_are_400_naming_the_field_and_nothing_is_measured(agent, why):
    srv = agent(Probe())
    req, message = BAD_REQUESTS[why]
    t0 = time.monotonic()
    status, ans = post(srv, req)
    assert status == 400 and ans["error"].startswith(message), ans
    assert time.monotonic() - t0 < 1.0 and srv.measured == 0
    assert post(srv, ok_body())[0] == 200


@pytest.mark.parametrize("body, message", [
    (b'{"network": 1, "network": 2}', "request: malformed JSON (duplicate key 'network')"),
    (b'{"net_config": {}, "resolution": NaN}', "request: malformed JSON (NaN is not a number JSON accepts)"),
    (b'{"net_config": {}, "resolution": ' + b"9" * 400 + b"}", "request: malformed JSON (integer with 400 digits)"),
    (b'{"net_config": {}, "resolution": 1e400}', "request: malformed JSON (1e400 overflows a float)"),
    (b'{"network": ' + b"[" * 2000 + b"]" * 2000 + b"}", "request: nested deeper than 64 levels"),
    (b'{"space": "\xff"}', "request: not UTF-8 text (byte 0xff at offset 11)"),
])
def test_malformed_bodies_are_400(agent, body, message):
    srv = agent(Probe())
    assert post(srv, body) == (400, {"error": message})
    assert srv.measured == 0



@pytest.mark.parametrize("headers, status, message", [
    ([("Authorization", f"Bearer {TOKEN}"), ("Authorization", "Bearer other-token-0123456789")], 401,
     "repeated Authorization header"),
    ([("Authorization", f"Bearer {TOKEN}"), ("Content-Length", "2"), ("Content-Length", "99")], 400,
     "malformed or repeated Content-Length header"),
    ([("Authorization", f"Bearer {TOKEN}"), ("Content-Length", "-2")], 400, "malformed or repeated Content-Length header"),
    ([("Authorization", f"Bearer {TOKEN}"), ("Content-Length", "9" * 30)], 400, "malformed or repeated Content-Length header"),
])
def test_repeated_or_malformed_headers_are_refused(agent, headers, status, message):
    import http.client
    srv = agent(Probe())
    host, port = srv.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.putrequest("POST", "/measure")
    for k, v in headers:
        conn.putheader(k, v)
    conn.endheaders()
    conn.send(b"{}")
    resp = conn.getresponse()
    assert (resp.status, json.loads(resp.read())) == (status, {"error": message})
    conn.close()
    assert srv.measured == 0 and post(srv, ok_body())[0] == 200

def test_a_huge_layer_built_from_a_net_config_is_400(agent):
    from models.spaces import get_space
    import numpy as np
    from codesign.validation.latency import as_target

    srv = agent(Probe())
    cfg = as_target(get_space("ofa-mbv3").sample(np.random.default_rng(0)), space="ofa-mbv3").net_config
    bad = json.loads(json.dumps(cfg))
    bad["first_conv"]["out_channels"] = 2 ** 40
    status, ans = post(srv, {"net_config": bad, "resolution": 224})
    assert status == 400 and ans["error"].startswith("request: net_config.first_conv.out_channels:"), ans
    status, ans = post(srv, {"net_config": cfg, "resolution": MAX_RESOLUTION + 1})
    assert status == 400 and ans["error"].startswith("request: resolution: must be a positive integer up to")
    assert srv.measured == 0
    assert post(srv, {"net_config": cfg, "resolution": 160})[0] == 200


# ---- settings ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw, message", [
    ({"max_seconds": math.inf}, "agent settings: max_seconds: must be a finite number in (0, 3600]"),
    ({"max_seconds": 1e300}, "agent settings: max_seconds: must be a finite number in (0, 3600]"),
    ({"max_seconds": math.nan}, "agent settings: max_seconds: must be a finite number in (0, 3600]"),
    ({"max_seconds": 0}, "agent settings: max_seconds: must be a finite number in (0, 3600]"),
    ({"max_seconds": "5"}, "agent settings: max_seconds: not a number"),
    ({"max_bytes": 2 ** 40}, "agent settings: max_bytes: must be a positive integer up to 1,073,741,824"),
    ({"max_bytes": True}, "agent settings: max_bytes: not an integer"),
    ({"port": 70000}, "agent settings: port: must be an integer from 0 to 65,535"),
])
def test_agent_settings_are_bounded(kw, message):
    args = {"port": 0, **kw}
    port = args.pop("port")
    with pytest.raises(AgentError) as e:
        make_server(Probe(), "127.0.0.1", port, TOKEN, quiet=True, **args)
    assert str(e.value).startswith(message)


def run_cli(argv, capsys):
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    err = capsys.readouterr().err
    return rc, [line for line in err.splitlines() if line.strip()]


@pytest.mark.parametrize("option, value", [
    ("--max-seconds", "inf"), ("--max-seconds", "1e300"), ("--max-seconds", "nan"), ("--max-seconds", "0"),
    ("--max-seconds", "-1"), ("--max-request-bytes", "0"), ("--max-request-bytes", str(2 ** 40)),
    ("--port", "70000"), ("--port", "-1"),
])
def test_cli_bounds_are_one_error_line_before_anything_starts(tmp_path, capsys, option, value):
    token = tmp_path / "token"
    token.write_text(TOKEN)
    token.chmod(0o600)
    t0 = time.monotonic()
    rc, lines = run_cli(["agent", "serve", "--backend", "probe", "--port", "0", "--token-file", str(token),
                         option, value], capsys)
    assert rc == 2 and time.monotonic() - t0 < 5
    assert lines[-1].startswith("codesign") and "error:" in lines[-1] and value in lines[-1], lines
    assert not any("Traceback" in line for line in lines)
    hi = {"--max-seconds": f"{MAX_MEASURE_SECONDS:g}", "--max-request-bytes": f"{MAX_REQUEST_BYTES:,}",
          "--port": "65,535"}[option]
    assert hi in lines[-1]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o610])
def test_cli_refuses_a_token_file_others_may_open(tmp_path, capsys, mode):
    token = tmp_path / "token"
    token.write_text(TOKEN)
    token.chmod(mode)
    rc, lines = run_cli(["agent", "serve", "--backend", "probe", "--port", "0", "--token-file", str(token)], capsys)
    assert rc == 2 and lines == [f"codesign: error: token file {str(token)!r} has mode {mode:04o}, open to other "
                                 f"users; run: chmod 600 {token}"]


def test_token_file_content_is_bounded(tmp_path):
    from codesign.validation.wire import read_token_file
    path = tmp_path / "token"
    path.write_bytes(b"\xff" * 20)
    path.chmod(0o600)
    with pytest.raises(AgentError, match="not UTF-8 text"):
        read_token_file(str(path))
    path.write_text("x" * 5000)
    with pytest.raises(AgentError, match="too long"):
        read_token_file(str(path))
    path.write_text("x" * 100_000)
    with pytest.raises(AgentError, match="bytes, more than the 65,536 accepted"):
        read_token_file(str(path))


# ---- the client ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kw, message", [
    ({"retries": 10 ** 9}, f"remote: retries: must be an integer from 0 to {MAX_RETRIES}"),
    ({"retries": -1}, "remote: retries: must be an integer from 0 to"),
    ({"timeout_s": math.nan}, "remote: timeout_s: must be a finite number in (0, 86400]"),
    ({"timeout_s": 0}, "remote: timeout_s: must be a finite number in (0, 86400]"),
    ({"backoff_s": 1e300}, "remote: backoff_s: must be a finite number in [0, 60]"),
])
def test_client_options_are_bounded(kw, message):
    with pytest.raises(LatencyError) as e:
        get_backend("remote:http://127.0.0.1:9", token=TOKEN, **kw)
    assert str(e.value).startswith(message)



def test_client_refuses_contradictory_or_oversized_settings():
    with pytest.raises(LatencyError, match="remote: give token= or token_file=, not both"):
        get_backend("remote:http://127.0.0.1:9", token=TOKEN, token_file="/nonexistent")
    with pytest.raises(LatencyError, match="remote: the agent URL has 3,019 characters, at most 2,048"):
        get_backend("remote:http://127.0.0.1:9/" + "x" * 3000, token=TOKEN)

class _Canned(BaseHTTPRequestHandler):
    body = b""

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *a):
        pass


@pytest.mark.parametrize("body, message", [
    (b'{"ms": NaN, "spread": 0, "samples": 1, "backend": "x"}', "malformed JSON (NaN is not a number JSON accepts)"),
    (b'{"ms": 1e300, "spread": 0, "samples": 1, "backend": "x"}', "ms: must be a finite number in [0, 1e+09]"),
    (b'{"ms": -1, "spread": 0, "samples": 1, "backend": "x"}', "ms: must be a finite number in [0, 1e+09]"),
    (b'{"ms": 1, "spread": 0, "samples": 0, "backend": "x"}', "samples: must be a positive integer up to"),
    (b'{"ms": 1, "spread": 0, "samples": 1}', "backend: Field required"),
    (b'[' * 100 + b']' * 100, "nested deeper than 64 levels"),
])
def test_client_refuses_a_bad_answer(body, message):
    _Canned.body = body
    srv = HTTPServer(("127.0.0.1", 0), _Canned)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        client = get_backend(f"remote:http://127.0.0.1:{srv.server_address[1]}", token=TOKEN, retries=0)
        with pytest.raises(LatencyError) as e:
            client.measure(net())
        assert message in str(e.value) and str(e.value).startswith(
            f"the answer of the agent at http://127.0.0.1:{srv.server_address[1]}"), str(e.value)
    finally:
        srv.shutdown()
        srv.server_close()


# ---- properties of the request schema ------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["space", "arch", "net_config", "resolution", "network", "onnx", "layers", "name", "x"]),
        inner, max_size=4),
    max_leaves=20)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_the_request_schema_accepts_or_refuses_with_one_agent_error(data):
    try:
        req = parse_request(data)
    except AgentError as e:
        assert str(e).startswith("request") and "\n" not in str(e)
    else:
        assert isinstance(req, MeasureRequest)


dims = st.integers(1, 64)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(dims, dims, dims, dims, st.integers(1, 3), st.integers(1, 3)), min_size=1, max_size=5),
       st.one_of(st.none(), st.integers(1, MAX_RESOLUTION)))
def test_every_network_within_bounds_round_trips_through_the_request_schema(shapes, resolution):
    layers = tuple(Layer(name=f"l{i}", K=k, C=c, P=p, Q=q, R=r, S=r, stride=s)
                   for i, (k, c, p, q, r, s) in enumerate(shapes))
    network = Network("n", layers, resolution=resolution)
    target = request_to_target({"network": network.to_dict()})
    assert target.network == network and target.network.macs == network.macs


@settings(max_examples=60, deadline=None)
@given(st.sampled_from("GNKCPQRS"), st.integers(MAX_DIM + 1, 2 ** 70) | st.integers(-2 ** 70, 0))
def test_every_dimension_out_of_bounds_is_refused_naming_it(dim, value):
    d = net().to_dict()
    layer = {**d["layers"][0], "dims": {**d["layers"][0]["dims"], dim: value}, "macs": None}
    with pytest.raises(AgentError, match=rf"^request: network\.layers\[0\]\.dims\.{dim}: must be a positive integer"):
        request_to_target({"network": {**d, "layers": [layer]}})


@settings(max_examples=100, deadline=None)
@given(st.floats(), st.floats(), st.integers(-5, 2 ** 40))
def test_answers_are_finite_and_bounded_or_refused(ms, spread, samples):
    data = {"ms": ms, "spread": spread, "samples": samples, "backend": "b"}
    try:
        a = check_answer(data, "answer")
    except AgentError:
        assert not (math.isfinite(ms) and math.isfinite(spread) and 0 <= ms <= 1e9 and 0 <= spread <= 1e9
                    and 1 <= samples <= 10 ** 9)
    else:
        assert math.isfinite(a.ms) and math.isfinite(a.spread) and a.samples >= 1

