"""Measured latency on this machine: PyTorch on CPU (``torch-cpu``) or a CUDA GPU
(``torch-cuda``), and ONNX Runtime on CPU (``onnxruntime``).

The module is built with random weights from the target's OFA-format ``net.config`` when it
has one (``models.torch_netconfig``: the real structure, with squeeze-and-excitation and
h-swish), else from its layer list (``models.torch_builder``: every MAC layer once). Batch 1,
inference mode. ``warmup`` untimed runs, then ``repeats`` timed runs; the result is the median,
its spread the interquartile range. ``max_seconds`` bounds the whole measurement: when it is
reached, fewer samples are kept (at least one) and ``details["truncated"]`` says so.

Options (keyword arguments, or in the spec: ``torch-cpu:threads=4,repeats=20``): ``warmup``
(3), ``repeats`` (10), ``threads`` (1; the intra-op thread count, restored afterwards),
``max_seconds`` (60).
"""
from __future__ import annotations

import math
import os
import tempfile
import time

import numpy as np

from .base import BackendUnavailable, LatencyBackend, LatencyError, LatencyResult, Target, register, split_spec

DEFAULTS = {"warmup": 3, "repeats": 10, "threads": 1, "max_seconds": 60.0}
DEFAULT_RESOLUTION = 224


def _check_options(spec: str, opts: dict) -> dict:
    out = dict(DEFAULTS)
    for k, v in opts.items():
        if k not in DEFAULTS:
            raise LatencyError(f"{spec}: unknown option {k!r} (known: {', '.join(DEFAULTS)})")
        if v is None:
            continue
        try:
            num = float(v)
        except (TypeError, ValueError):
            raise LatencyError(f"{spec}: {k}={v!r} is not a number") from None
        if k == "max_seconds":
            if not math.isfinite(num) or num <= 0:
                raise LatencyError(f"{spec}: max_seconds must be positive, got {v!r}")
            out[k] = num
            continue
        lo = 0 if k == "warmup" else 1
        if isinstance(v, bool) or not num.is_integer() or num < lo:
            raise LatencyError(f"{spec}: {k} must be an integer >= {lo}, got {v!r}")
        out[k] = int(num)
    return out


def _spec_options(spec: str) -> dict:
    """``"torch-cpu:threads=4,repeats=20"`` -> ``{"threads": "4", "repeats": "20"}``."""
    _, arg = split_spec(spec)
    opts = {}
    for part in arg.replace(" ", "").split(","):
        if not part:
            continue
        k, eq, v = part.partition("=")
        if not eq:
            raise LatencyError(f"{spec!r}: expected KEY=VALUE options after the colon, got {part!r}")
        opts[k] = v
    return opts


INTERLEAVE = 32  # modules built and timed together by measure_many (bounds the memory held)


def _torch():
    try:
        import torch
    except ImportError:
        raise BackendUnavailable("measured backends need PyTorch (pip install torch)") from None
    return torch


def build_runnable(target: Target):
    """``(module, input tensor, source)`` for ``target``: from its net.config when it has one,
    else from its layer list."""
    torch = _torch()
    if target.net_config is not None:
        from models.torch_netconfig import build_from_net_config
        r = target.network.resolution or DEFAULT_RESOLUTION
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            module = build_from_net_config(target.net_config)
            x = torch.randn(1, 3, r, r)
        return module, x, "net.config"
    from models.torch_builder import build_module
    module, (x,) = build_module(target.network)
    return module, x, "network"


def _timed(runs, warmup: int, repeats: int, max_seconds: float) -> list[list[float]]:
    """Milliseconds of each of ``runs``: ``warmup`` untimed calls of each, then ``repeats``
    rounds that time one call of every one of them (interleaved), within ``max_seconds``."""
    t_end = time.perf_counter() + max_seconds
    for run in runs:
        for _ in range(warmup):
            run()
            if time.perf_counter() > t_end:
                break
    samples: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for k, run in enumerate(runs):
            t0 = time.perf_counter()
            run()
            samples[k].append((time.perf_counter() - t0) * 1e3)
        if time.perf_counter() > t_end:
            break
    return samples


class _Measured(LatencyBackend):
    device = "cpu"

    def __init__(self, spec: str, **options):
        super().__init__(spec)
        merged = {**_spec_options(spec), **{k: v for k, v in options.items() if v is not None}}
        o = _check_options(spec, merged)
        self.warmup, self.repeats, self.threads, self.max_seconds = (
            o["warmup"], o["repeats"], o["threads"], o["max_seconds"])
        self._check_available()

    def _check_available(self) -> None:
        _torch()

    def _make_runner(self, module, x):
        """A zero-argument callable that runs one inference (blocking until it is done)."""
        raise NotImplementedError

    def _runner(self, target: Target):
        """``(run, source)``: a zero-argument inference callable and what it was built from."""
        module, x, source = build_runnable(target)
        return self._make_runner(module, x), source

    def _measure(self, target: Target) -> LatencyResult:
        return self._measure_group([target])[0]

    def _result(self, samples, source: str, truncated: bool, interleaved: int = 1) -> LatencyResult:
        a = np.asarray(samples)
        q1, med, q3 = np.percentile(a, [25, 50, 75])
        return LatencyResult(float(med), float(q3 - q1), len(samples), self.spec,
                             {"min": float(a.min()), "max": float(a.max()), "threads": self.threads,
                              "device": self.device, "warmup": self.warmup, "built_from": source,
                              "truncated": truncated, "interleaved_with": interleaved})

    def measure_many(self, targets, *, space: str | None = None, progress=None) -> list[LatencyResult]:
        """Measure ``targets`` in interleaved rounds: up to ``INTERLEAVE`` modules are built and
        warmed up, then each round times one run of every one of them, ``repeats`` rounds. A
        slow spell of a shared machine then costs every architecture of the group alike
        instead of ranking the one that happened to run in it last (on a shared 2-core
        virtual machine this raised the test-retest SRCC of 30 OFA sub-networks from about
        0.7 to above 0.9). The time bound applies per group."""
        from .base import as_target
        ts = [as_target(t, space=space) for t in targets]
        out: list[LatencyResult | None] = [self._cache.get(t.key) for t in ts]
        todo = [i for i, r in enumerate(out) if r is None]
        for g in range(0, len(todo), INTERLEAVE):
            group = todo[g:g + INTERLEAVE]
            for i, r in zip(group, self._measure_group([ts[i] for i in group])):
                self._cache[ts[i].key] = out[i] = r
                if progress is not None:
                    progress(1)
        if progress is not None:
            progress(len(ts) - len(todo))
        return out

    def _measure_group(self, targets: list[Target]) -> list[LatencyResult]:
        """Build, warm up and time ``targets`` together, with this backend's threads pinned."""
        torch = _torch()
        prev = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            runners = [self._runner(t) for t in targets]
            samples = _timed([run for run, _ in runners], self.warmup, self.repeats, self.max_seconds)
        finally:
            torch.set_num_threads(prev)
        return [self._result(smp, source, len(smp) < self.repeats, len(targets))
                for smp, (_, source) in zip(samples, runners)]


@register("torch-cpu")
class TorchCpuBackend(_Measured):
    """PyTorch eager inference on the CPU."""
    scheme = "torch-cpu"

    def _make_runner(self, module, x):
        torch = _torch()

        def run():
            with torch.inference_mode():
                module(x)
        return run


@register("torch-cuda")
class TorchCudaBackend(_Measured):
    """PyTorch eager inference on the first CUDA GPU (synchronized around each run)."""
    scheme = "torch-cuda"
    device = "cuda"

    def _check_available(self) -> None:
        torch = _torch()
        if not torch.cuda.is_available():
            raise BackendUnavailable(f"{self.spec}: no CUDA GPU is available to this PyTorch "
                                     f"({torch.__version__}); use torch-cpu or onnxruntime")

    def _make_runner(self, module, x):
        torch = _torch()
        dev = torch.device("cuda")
        module, x = module.to(dev), x.to(dev)
        self.device = f"cuda ({torch.cuda.get_device_name(dev)})"

        def run():
            with torch.inference_mode():
                module(x)
            torch.cuda.synchronize(dev)
        return run


_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
               "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(bool)": np.bool_}


@register("onnxruntime")
class OnnxRuntimeBackend(_Measured):
    """ONNX Runtime (CPUExecutionProvider): an ONNX workload file as it is, anything else as the
    module exported with ``torch.onnx.export``."""
    scheme = "onnxruntime"
    device = "cpu (onnxruntime)"

    def _check_available(self) -> None:
        super()._check_available()
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise BackendUnavailable("the onnxruntime backend needs the onnxruntime package "
                                     "(pip install onnxruntime)") from None

    def _make_runner(self, module, x):
        import onnxruntime as ort
        torch = _torch()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.onnx")
            try:
                # the TorchScript exporter: the dynamo one needs onnxscript, which is optional
                torch.onnx.export(module, (x,), path, dynamo=False, input_names=["x"])
            except Exception as e:  # exporter failures come in many types
                first = str(e).splitlines()[0] if str(e) else repr(e)
                raise LatencyError(f"{self.spec}: ONNX export failed: {first}") from None
            sess = self._session(path, "the exported model")
        feed = {sess.get_inputs()[0].name: x.numpy()}

        def run():
            sess.run(None, feed)
        return run

    def _session(self, model, name: str):
        """An onnxruntime session of ``model`` (a file path or the model's bytes)."""
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        try:
            return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            first = str(e).splitlines()[0] if str(e) else repr(e)
            raise LatencyError(f"{self.spec}: onnxruntime cannot load {name}: {first}") from None

    def _runner(self, target: Target):
        if target.onnx_path is None and target.onnx_bytes is None:
            return super()._runner(target)
        if target.onnx_bytes is not None:  # sent to an agent: run from memory
            model, name = target.onnx_bytes, f"the ONNX model of {target.network.name}"
        else:
            model, name = target.onnx_path, os.path.basename(target.onnx_path)
        sess = self._session(model, name)
        rng = np.random.default_rng(0)
        feed = {}
        for inp in sess.get_inputs():
            dims = list(inp.shape)
            if any(not isinstance(d, int) for d in dims[1:]):
                raise LatencyError(f"{self.spec}: input {inp.name!r} of {name} has "
                                   f"a dynamic shape {dims}; export the model with fixed input sizes")
            dims = [d if isinstance(d, int) else 1 for d in dims]  # a dynamic batch runs at 1
            dtype = _ORT_DTYPES.get(inp.type)
            if dtype is None:
                raise LatencyError(f"{self.spec}: input {inp.name!r} has the unsupported type {inp.type}")
            feed[inp.name] = (rng.standard_normal(dims).astype(dtype) if np.issubdtype(dtype, np.floating)
                              else np.zeros(dims, dtype=dtype))

        def run():
            sess.run(None, feed)
        return run, "onnx file"
