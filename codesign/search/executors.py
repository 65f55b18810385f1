"""Executors for candidate evaluations: serial, local processes, or a Dask cluster.

All are ``concurrent.futures.Executor``-compatible; the search submits a fixed-size batch and
tells results back in submission order, so the result does not depend on which executor (or
how many workers) ran it.
"""
from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager

from models.errors import CodesignError

PR_SET_PDEATHSIG = 1  # linux/prctl.h


class SerialExecutor(cf.Executor):
    """Runs each call at submission, in the caller's process."""

    def submit(self, fn, /, *args, **kwargs):
        fut = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - handed to the caller through the future
            fut.set_exception(e)
        return fut


def die_with_parent(parent_pid: int) -> None:
    """Worker initializer: end this process when ``parent_pid`` dies, even by SIGKILL.

    Linux: the kernel sends SIGKILL on the parent's death (``PR_SET_PDEATHSIG``); elsewhere, or
    if that fails, a daemon thread polls the parent id. Either way a parent that died before
    this ran is noticed at once."""
    armed = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent_pid:
        os._exit(1)
    if not armed:
        def watch():
            while os.getppid() == parent_pid:
                time.sleep(0.5)
            os._exit(1)
        threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def _stop_workers(ex: cf.ProcessPoolExecutor) -> None:
    """Kill the pool's workers now (an interrupted search must not wait for, or leave, them)."""
    procs = list((getattr(ex, "_processes", None) or {}).values())
    for p in procs:
        try:
            p.kill()
        except (OSError, ValueError):
            pass
    for p in procs:
        p.join(timeout=5)
    ex.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _process_pool(workers: int):
    import multiprocessing as mp
    ex = cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                initializer=die_with_parent, initargs=(os.getpid(),))
    try:
        yield ex
    except BaseException:
        _stop_workers(ex)
        raise
    ex.shutdown(wait=True)


@contextmanager
def make_executor(workers: int = 1, dask_address: str | None = None):
    """``workers <= 1`` and no address: serial; ``workers > 1``: local processes; an address
    (``tcp://host:port``, or ``local`` for an in-process test cluster): a Dask cluster.

    Local workers die with this process (even when it is killed), and an exception or
    interruption leaving the block kills them instead of waiting for their work."""
    if dask_address:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise CodesignError("--dask needs the 'distributed' package") from None
        cluster = None
        if dask_address == "local":
            cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
        else:
            try:
                client = Client(dask_address, timeout=10)
            except (OSError, TimeoutError) as e:
                raise CodesignError(f"cannot reach the Dask scheduler at {dask_address}: {e}") from None
        try:
            yield client.get_executor()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    elif workers > 1:
        with _process_pool(workers) as ex:
            yield ex
    else:
        yield SerialExecutor()
