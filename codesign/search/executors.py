"""Executors for candidate evaluations: serial, local processes, or a Dask cluster.

All are ``concurrent.futures.Executor``-compatible; the search submits a fixed-size batch and
tells results back in submission order, so the result does not depend on which executor (or
how many workers) ran it.
"""
from __future__ import annotations

import concurrent.futures as cf
from contextlib import contextmanager

from models.errors import CodesignError


class SerialExecutor(cf.Executor):
    """Runs each call at submission, in the caller's process."""

    def submit(self, fn, /, *args, **kwargs):
        fut = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - handed to the caller through the future
            fut.set_exception(e)
        return fut


@contextmanager
def make_executor(workers: int = 1, dask_address: str | None = None):
    """``workers <= 1`` and no address: serial; ``workers > 1``: local processes; an address
    (``tcp://host:port``, or ``local`` for an in-process test cluster): a Dask cluster."""
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
        import multiprocessing as mp
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as ex:
            yield ex
    else:
        yield SerialExecutor()
