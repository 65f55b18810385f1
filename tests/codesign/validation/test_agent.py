"""The remote board agent (codesign.validation.agent) and its client (remote: backend), on loopback."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from codesign.validation.agent import AgentError, is_loopback, make_server, read_token_file
from codesign.cli import main
from codesign.validation.latency import LatencyBackend, LatencyError, LatencyResult, Target, as_target, get_backend, register
from models.layer import Layer
from models.network import Network
from models.spaces import get_space

TOKEN = "test-token-0123456789abcdef"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@register("fake-macs")
class FakeMacs(LatencyBackend):
    """Deterministic: ms = total MACs / 1e6; counts its measurements."""
    scheme = "fake-macs"

    def __init__(self, spec):
        super().__init__(spec)
        self.calls = 0

    def _measure(self, t):
        self.calls += 1
        details = {"macs": t.network.macs, "layers": len(t.network)}
        return LatencyResult(t.network.macs / 1e6, 0.0, 1, self.spec, details)


class Stamped(FakeMacs):
    """Sleeps ``delay`` s per measurement (``long`` s for a layer with K=7); the details carry
    the interval it measured in (monotonic clock, shared by the agent's processes)."""

    def __init__(self, spec, delay, long=None):
        super().__init__(spec)
        self.delay, self.long = delay, long

    def _measure(self, t):
        t0 = time.monotonic()
        time.sleep(self.long if self.long is not None and t.network.layers[0].K == 7 else self.delay)
        r = super()._measure(t)
        return LatencyResult(r.ms, r.spread, r.samples, r.backend,
                             {**r.details, "t0": t0, "t1": time.monotonic(), "pid": os.getpid()})


def tiny_net(k=8, name="tiny"):
    # one 3x3 conv, 3 -> k channels, 4x4 output: k * 3 * 16 * 9 MACs
    return Network(name, (Layer(name="conv", K=k, C=3, P=4, Q=4, R=3, S=3),), resolution=4)


def raw(srv, method, path, body=None, token=TOKEN, length=None):
    """One request by hand: (status, decoded JSON answer)."""
    host, port = srv.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    conn.putrequest(method, path)
    if token is not None:
        conn.putheader("Authorization", f"Bearer {token}")
    if data is not None or length is not None:
        conn.putheader("Content-Length", str(length if length is not None else len(data)))
    conn.endheaders()
    if data is not None and length is None:
        conn.send(data)
    resp = conn.getresponse()
    out = resp.status, json.loads(resp.read())
    conn.close()
    return out


def remote(srv, **kw):
    kw.setdefault("token", TOKEN)
    return get_backend(f"remote:{srv.url}", **kw)


def test_remote_measure_equals_local(agent):
    backend = FakeMacs("fake-macs")
    srv = agent(backend)
    assert srv.server_address[0] == "127.0.0.1" and srv.server_address[1] > 0
    client = remote(srv)
    local = FakeMacs("fake-macs")

    r = client.measure(tiny_net())
    assert r.ms == 8 * 3 * 16 * 9 / 1e6 == 0.003456
    assert (r.spread, r.samples) == (0.0, 1)
    assert r.backend == f"remote:{srv.url} (fake-macs)"
    assert r.details["macs"] == 3456 and r.details["layers"] == 1 and r.details["agent_backend"] == "fake-macs"

    arch = get_space("ofa-mbv3").sample(np.random.default_rng(0))
    cfg_target = as_target(arch, space="ofa-mbv3")
    for target, kw in ((arch, {"space": "ofa-mbv3"}), ("resnet18", {}),
                       ({"net_config": cfg_target.net_config, "resolution": cfg_target.network.resolution}, {})):
        got, want = client.measure(target, **kw), local.measure(target, **kw)
        assert got.ms == want.ms and got.spread == want.spread and got.samples == want.samples
        assert {k: got.details[k] for k in want.details} == want.details
    assert cfg_target.network.macs / 1e6 == client.measure(arch, space="ofa-mbv3").ms
    # arch and its net.config are different requests (separate keys) for one network
    assert srv.measured == 4
    assert client.measure(tiny_net()).ms == 0.003456 and srv.measured == 4  # cached client-side


def test_health_needs_no_token_everything_else_does(agent):
    backend = FakeMacs("fake-macs")
    srv = agent(backend)
    assert raw(srv, "GET", "/health", token=None) == (200, {"ok": True, "backend": "fake-macs"})
    assert remote(srv).health() == {"ok": True, "backend": "fake-macs"}
    body = {"network": tiny_net().to_dict()}
    status, ans = raw(srv, "POST", "/measure", body, token=None)
    assert status == 401 and ans["error"].startswith("missing token")
    status, ans = raw(srv, "POST", "/measure", body, token=TOKEN[:-1] + "X")
    assert status == 401 and ans["error"] == "wrong token"
    assert raw(srv, "GET", "/nowhere", token=None)[0] == 401
    with pytest.raises(LatencyError, match="refused the token"):
        remote(srv, token="another-token-0123456789").measure(tiny_net())
    assert srv.measured == 0
    assert raw(srv, "GET", "/measure")[0] == 405
    assert raw(srv, "POST", "/elsewhere", body)[0] == 404
    assert raw(srv, "POST", "/measure", body) == (200, {"ms": 0.003456, "spread": 0.0, "samples": 1,
                                                       "backend": "fake-macs",
                                                       "details": {"macs": 3456, "layers": 1}})


def test_oversized_body_is_refused_unread_and_the_agent_keeps_serving(agent):
    backend = FakeMacs("fake-macs")
    srv = agent(backend, max_bytes=2000)
    # headers announce 10^9 bytes and none follow: the answer comes without waiting for the body
    t0 = time.perf_counter()
    status, ans = raw(srv, "POST", "/measure", token=TOKEN, length=10 ** 9)
    assert status == 413 and ans["error"].startswith("request of 1000000000 bytes exceeds the agent's limit of 2000 bytes")
    assert time.perf_counter() - t0 < 2.5
    big = as_target("resnet50")  # its layer list is ~13 kB of JSON
    assert len(json.dumps(big.to_request())) > 2000
    with pytest.raises(LatencyError, match="HTTP 413: request of .* exceeds the agent's limit of 2000 bytes"):
        remote(srv).measure(big)
    assert srv.measured == 0
    assert raw(srv, "POST", "/measure", {"network": tiny_net(k=2).to_dict()})[1]["ms"] == 2 * 3 * 16 * 9 / 1e6
    status, ans = raw(srv, "POST", "/measure", token=TOKEN, length=None)  # no Content-Length
    assert status == 411


def test_malformed_json_and_bad_targets_get_400_and_the_agent_keeps_serving(agent, tmp_path):
    backend = FakeMacs("fake-macs")
    srv = agent(backend)
    assert raw(srv, "POST", "/measure", b'{"space": ofa}') == (
        400, {"error": "request: malformed JSON (Expecting value at line 1 col 11)"})
    status, ans = raw(srv, "POST", "/measure", {"space": "no-such-space", "arch": {"ks": [3]}})
    assert status == 400 and ans["error"].startswith("unknown search space 'no-such-space'")
    status, ans = raw(srv, "POST", "/measure", {"space": "ofa-mbv3", "arch": {"ks": [3]}})
    assert status == 400 and "ofa-mbv3" in ans["error"]
    status, ans = raw(srv, "POST", "/measure", {"network": tiny_net().to_dict(), "extra": 1})
    assert status == 400 and ans["error"].startswith("request: unexpected fields ['extra', 'network']")
    status, ans = raw(srv, "POST", "/measure", [1, 2])
    assert status == 400 and ans["error"].startswith("request: must be a JSON object, got list")
    # a request never makes the agent read a file, even one holding a valid network
    path = tmp_path / "net.json"
    path.write_text(json.dumps(tiny_net().to_dict()))
    for req in ({"network": str(path)}, {"net_config": str(path)}, {"net_config": str(path), "resolution": 4},
                {"space": "ofa-mbv3", "arch": {"net_config": str(path)}},
                {"space": "ofa-mbv3", "arch": {"arch": str(path), "space": "ofa-mbv3"}}):
        status, ans = raw(srv, "POST", "/measure", req)
        assert status == 400, (req, ans)
    assert srv.measured == 0
    with pytest.raises(LatencyError, match="HTTP 400: unknown search space"):
        remote(srv)._measure(Target(tiny_net(), arch={"x": 1}, space="nope"))
    assert raw(srv, "POST", "/measure", {"network": tiny_net().to_dict()})[1]["ms"] == 0.003456
    assert srv.measured == 1


def test_overrunning_measurement_is_stopped_with_504_and_the_next_is_served(agent):
    backend = Stamped("fake-macs", delay=0.0, long=30.0)
    srv = agent(backend, max_seconds=0.3)
    t0 = time.perf_counter()
    status, ans = raw(srv, "POST", "/measure", {"network": tiny_net(k=7).to_dict()})
    assert status == 504 and ans["error"] == "the measurement exceeded 0.3 s and was stopped"
    assert 0.3 <= time.perf_counter() - t0 < 1.8
    # no 503: the overrunning worker was killed and a fresh one measures the next request
    t1 = time.perf_counter()
    status, ans = raw(srv, "POST", "/measure", {"network": tiny_net(k=2).to_dict()})
    assert status == 200 and ans["ms"] == 2 * 3 * 16 * 9 / 1e6
    assert time.perf_counter() - t1 < 2.0
    assert srv.measured == 2
    # 504 itself is not retried
    t2 = time.perf_counter()
    with pytest.raises(LatencyError, match="HTTP 504: the measurement exceeded 0.3 s"):
        remote(srv, retries=3, backoff_s=2.0).measure(tiny_net(k=7))
    assert time.perf_counter() - t2 < 2.0  # a retry would have waited 2 s first


def test_concurrent_requests_are_measured_one_at_a_time(agent):
    backend = Stamped("fake-macs", delay=0.05)
    srv = agent(backend)
    results = {}

    def go(k):
        results[k] = raw(srv, "POST", "/measure", {"network": tiny_net(k=k).to_dict()})

    threads = [threading.Thread(target=go, args=(k,)) for k in (1, 2, 3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {k: (s, a["ms"]) for k, (s, a) in results.items()} == {k: (200, k * 432 / 1e6) for k in (1, 2, 3, 4)}
    spans = sorted((a["details"]["t0"], a["details"]["t1"]) for _, a in results.values())
    assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:]))  # no two overlap
    assert srv.measured == 4 and len({a["details"]["pid"] for _, a in results.values()}) == 1


def test_client_gives_up_on_an_unreachable_agent_after_retries(monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = get_backend(f"remote:http://127.0.0.1:{port}", token=TOKEN, retries=2, backoff_s=0.05, timeout_s=1)
    t0 = time.perf_counter()
    with pytest.raises(LatencyError, match=rf"agent at http://127.0.0.1:{port} unreachable after 3 attempts"):
        client.measure(tiny_net())
    assert 0.15 <= time.perf_counter() - t0 < 2.0  # backoff 0.05 + 0.1 s
    monkeypatch.delenv("CODESIGN_AGENT_TOKEN", raising=False)
    with pytest.raises(LatencyError, match="no agent token"):
        get_backend(f"remote:http://127.0.0.1:{port}")
    monkeypatch.setenv("CODESIGN_AGENT_TOKEN", TOKEN)
    assert get_backend(f"remote:http://127.0.0.1:{port}")._token == TOKEN
    with pytest.raises(LatencyError, match="give the agent's address"):
        get_backend("remote:board:8765")
    with pytest.raises(LatencyError, match="too short"):
        get_backend(f"remote:http://127.0.0.1:{port}", token="short")


def test_token_files_and_bounds(tmp_path):
    path = tmp_path / "token"
    assert main(["agent", "token", str(path)]) == 0
    assert os.stat(path).st_mode & 0o777 == 0o600
    token = read_token_file(str(path))
    assert len(token) == 43 and token == path.read_text().strip()
    assert main(["agent", "token", str(path)]) == 2  # exists, no --force
    for mode in (0o644, 0o640, 0o604, 0o620, 0o660):  # any group or other permission bit
        path.chmod(mode)
        with pytest.raises(AgentError, match=f"has mode {mode:04o}, open to other users; run: chmod 600"):
            read_token_file(str(path))
    path.chmod(0o400)
    assert read_token_file(str(path)) == token
    (tmp_path / "empty").write_text("\n")
    (tmp_path / "empty").chmod(0o600)
    with pytest.raises(AgentError, match="is empty"):
        read_token_file(str(tmp_path / "empty"))
    with pytest.raises(AgentError, match="does not exist"):
        read_token_file(str(tmp_path / "missing"))
    assert main(["agent", "serve", "--backend", "fake-macs", "--port", "0",
                 "--token-file", str(tmp_path / "missing")]) == 2
    with pytest.raises(AgentError, match="too short"):
        make_server("fake-macs", "127.0.0.1", 0, "abc")
    with pytest.raises(AgentError, match="agent settings: max_bytes: must be a positive integer up to 1,073,741,824"):
        make_server("fake-macs", "127.0.0.1", 0, TOKEN, max_bytes=0)
    with pytest.raises(LatencyError, match="unknown latency backend 'nope'"):
        make_server("nope", "127.0.0.1", 0, TOKEN)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20") and not is_loopback("board.local")


LAUNCH = """
import sys
from codesign.validation.latency import LatencyBackend, LatencyResult, register

@register("fake-macs")
class FakeMacs(LatencyBackend):
    scheme = "fake-macs"
    def _measure(self, t):
        return LatencyResult(t.network.macs / 1e6, 0.0, 1, self.spec, {"macs": t.network.macs})

from codesign.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_cli_serve_in_a_subprocess(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    # started with SIGINT ignored, as a background job of a script is: Ctrl-C must stop it anyway
    proc = subprocess.Popen([sys.executable, "-c", LAUNCH, "agent", "serve", "--backend", "fake-macs",
                             "--port", "0", "--token-file", str(token_file), "--max-seconds", "5"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        line = proc.stdout.readline()
        m = re.fullmatch(r"codesign agent: serving fake-macs at (http://127\.0\.0\.1:(\d+)) \(Ctrl-C stops\)\n", line)
        assert m and int(m.group(2)) > 0, line + proc.stderr.read() if not m else line
        r = get_backend(f"remote:{m.group(1)}", token_file=str(token_file)).measure(tiny_net())
        assert r.ms == 0.003456 and r.backend == f"remote:{m.group(1)} (fake-macs)"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert re.search(r'codesign-agent: 127\.0\.0\.1 "POST /measure" 200 [\d.]+ ms', err)
    assert err.rstrip().endswith("codesign agent: stopped") and out == ""


def test_remote_equals_local_analytical_eyeriss(agent):
    pytest.importorskip("codesign.validation.latency.analytical", reason="analytical backends not available")
    # the agent's worker is forked from this test process, which may have started numba's thread
    # pool already (the worker then runs the serial kernel); it maps ResNet-18 from a cold start
    # (JIT compilation of a fresh clone included) beside another test worker on two cores
    srv = agent("analytical:eyeriss", max_seconds=300)
    client, local = remote(srv, timeout_s=360), get_backend("analytical:eyeriss")
    for target in ("resnet18", tiny_net()):
        got, want = client.measure(target), local.measure(target)
        assert got.ms == want.ms and got.spread == want.spread == 0.0 and got.samples == want.samples
        assert {k: got.details[k] for k in want.details} == want.details
        assert got.backend == f"remote:{srv.url} (analytical:eyeriss)"


def _onnx_file(tmp_path, name="m.onnx"):
    import torch
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Sigmoid(), torch.nn.Conv2d(8, 8, 1))
    path = tmp_path / name
    torch.onnx.export(m, (torch.randn(1, 3, 16, 16),), str(path), dynamo=False, input_names=["x"])
    return str(path)


def test_an_onnx_workload_travels_as_a_file_and_runs_as_is(agent, tmp_path):
    pytest.importorskip("onnxruntime")
    import base64

    import onnx

    path = _onnx_file(tmp_path)
    target = as_target(path)
    req = target.to_request()
    assert set(req) == {"network", "onnx"}
    with open(path, "rb") as f:
        assert base64.b64decode(req["onnx"]) == f.read()
    # the agent's onnxruntime session runs the sent model (its Sigmoid is not in the layer list)
    ort = get_backend("onnxruntime", repeats=3, warmup=1)
    srv = agent(ort, max_bytes=1 << 22)
    r = remote(srv).measure(path)
    assert r.details["built_from"] == "onnx file" and r.details["agent_backend"] == "onnxruntime"
    assert r.ms > 0 and r.samples == 3 and srv.measured == 1
    # a non-ONNX backend behind the agent measures the layer list of the same request
    fake = FakeMacs("fake-macs")
    r2 = remote(agent(fake, max_bytes=1 << 22)).measure(path)
    assert r2.ms == target.network.macs / 1e6
    # bad ONNX payloads: 400 with a reason, nothing measured, the agent keeps serving
    net = target.network.to_dict()
    model = onnx.load(path)
    ext = model.graph.initializer[0]
    ext.data_location = onnx.TensorProto.EXTERNAL
    ext.ClearField("raw_data")
    e = ext.external_data.add()
    e.key, e.value = "location", "secrets.bin"
    bad = {"not base64": "@@@", "not a model": base64.b64encode(b"hello world").decode(),
           "external data": base64.b64encode(model.SerializeToString()).decode(), "not a string": 7}
    for why, payload in bad.items():
        status, answer = raw(srv, "POST", "/measure", {"network": net, "onnx": payload})
        assert status == 400, why
        assert {"not base64": "not valid base64", "not a model": "does not decode",
                "external data": "external data", "not a string": "base64 string"}[why] in answer["error"]
    assert srv.measured == 1
    # a model over the agent's size limit: 413 names the option to raise
    small = agent(ort, max_bytes=1024)
    with pytest.raises(LatencyError, match="max-request-bytes"):
        remote(small, retries=0).measure(path)
