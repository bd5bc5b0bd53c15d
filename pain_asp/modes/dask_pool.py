"""Chunks of a batch checked on Dask: ``pain-asp check --dask local|tcp://HOST:PORT`` (docs/scaling.md).

:class:`DaskPool` is a drop-in for :class:`pain_asp.modes.check.WorkerPool`: the batch is read and
indexed as always (:func:`pain_asp.modes.check.iter_checked`; JSON Lines claims are parsed and
validated on the Dask workers in an index pass), so every claim is checked with its history from
every claim of its patient in the whole batch (and the history store); Dask workers check chunks
and render each result; results come back in any
order and are released in input order (one chunk per worker in flight, at most ``2 x workers``
held). The output is therefore the bytes ``--workers`` writes, whichever worker took which chunk.

``local`` starts a :class:`distributed.LocalCluster` of ``workers`` single-threaded worker
processes on this machine; ``tcp://HOST:PORT`` uses a running scheduler, whose workers must
have pain-asp installed and see the same ``--payer-dir``/``--ncci-dir`` paths.

clingo keeps every term a process has seen: a worker whose resident memory passes
``recycle_mb`` after a chunk is restarted by its nanny (a chunk it held is run again
elsewhere; results are keyed by chunk, so nothing is written twice).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..errors import PainAspError
from ..memory import rss_mb
from ..processes import start_method

__all__ = ["DaskPool", "check_address", "check_chunk_on_worker"]

_CHECKERS: dict[Any, Any] = {}


def check_chunk_on_worker(task: Callable[..., list[Any]], payload: bytes, options: Any, fmt: str,
                          colour: bool) -> tuple[bytes, str, float]:
    """Run in a Dask worker: check one chunk with ``task`` (the batch check's
    :func:`pain_asp.modes.check.check_task`, sent by name).

    Returns the chunk's items (msgpack), the worker's address and its resident memory (MB) afterwards.
    One :class:`~pain_asp.engine.Checker` per worker process and options.
    """
    import msgspec
    from distributed import get_worker

    from ..engine import Checker

    key = repr(options)
    if key not in _CHECKERS:
        _CHECKERS[key] = Checker(options)
    items = msgspec.msgpack.encode(task(_CHECKERS[key], payload, fmt, colour))
    # An index-pass chunk (``I``) grounds nothing, so clingo has not grown: no restart for it.
    return items, get_worker().address, rss_mb() if payload[:1] != b"I" else 0.0


def check_address(address: str) -> None:
    """Raise a PainAspError unless ``address`` is ``local`` or ``tcp://HOST:PORT``-shaped."""
    if address != "local" and not address.startswith("tcp://"):
        raise PainAspError(f"--dask {address}: expected local or tcp://HOST:PORT")


def _client(address: str, workers: int) -> tuple[Any, Any]:
    """A Dask client (and the LocalCluster it owns, for ``local``)."""
    try:
        import logging

        from distributed import Client, LocalCluster
    except ImportError:
        raise PainAspError("--dask needs Dask's distributed scheduler: pip install 'pain-asp[scale]'") from None
    if address == "local":
        import dask

        # Where it can (pain_asp/processes.py), the worker processes (and their nannies) fork
        # from a fork server that has imported Dask: they start in about a second, without the
        # several that spawning a fresh interpreter takes, and without this process's memory,
        # threads (its Dask client runs an event loop in a thread) and open files.
        method = start_method()
        with dask.config.set({"distributed.worker.multiprocessing-method": method}):
            # On loopback only; the scheduler's HTTP routes on a free port, not 8787 (which
            # another cluster may hold: a warning on standard error).
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=":0", silence_logs=logging.ERROR)
        return Client(cluster), cluster
    check_address(address)
    try:
        return Client(address, timeout=30), None
    except OSError:
        raise PainAspError(f"--dask {address}: no Dask scheduler answered there") from None


class DaskPool:
    """Checks chunks on Dask; the interface of :class:`pain_asp.modes.check.WorkerPool`."""

    def __init__(self, address: str, workers: int, options: Any, fmt: str, colour: bool,
                 recycle_mb: float, task: Callable[..., list[Any]]) -> None:
        self.address = address
        self.size = max(1, workers)
        self.task = task
        self._args = (options, fmt, colour)
        self.recycle_mb = recycle_mb
        self._client: Any = None
        self._cluster: Any = None
        self.started = 0
        self.retired = 0
        self.died = 0
        self._recycle: set[str] = set()  # workers past recycle_mb, restarted once idle
        self._restarter: Any = None       # the thread that restarts them (_restart_idle)
        self._restarting: Any = None      # the restart under way

    def start(self, count: int = 0) -> None:
        """Start the cluster (or connect), e.g. while the batch is still being read."""
        if self._client is None:
            self._client, self._cluster = _client(self.address, self.size)
            self.started = len(self._client.scheduler_info()["workers"])
            if self._cluster is None:  # a running cluster: as many chunks in flight as it has threads
                self.size = max(1, sum(w["nthreads"] for w in self._client.scheduler_info()["workers"].values()))

    def run(self, chunks: Iterable[tuple[bytes, int]],
            on_failure: Callable[[int, str], list[Any]]) -> Iterator[Any]:
        """Check ``(payload, claims)`` chunks; yield each chunk's items (msgpack), in chunk order."""
        from distributed import as_completed

        self.start()
        client = self._client
        run_id = uuid.uuid4().hex
        source = iter(chunks)
        upcoming = next(source, None)  # one chunk ahead: restart workers only while chunks remain
        numbers: dict[Any, int] = {}
        done: dict[int, Any] = {}
        pending = as_completed()
        next_in = next_out = 0

        def submit() -> bool:
            nonlocal next_in, upcoming
            if upcoming is None:
                return False
            payload = upcoming[0]
            upcoming = next(source, None)
            future = client.submit(check_chunk_on_worker, self.task, payload, *self._args,
                                   key=f"pain-asp-{run_id}-{next_in}", pure=False, retries=1)
            numbers[future.key] = next_in
            next_in += 1
            pending.add(future)
            return True

        while next_in < self.size and submit():
            pass
        for future in pending:
            number = numbers.pop(future.key)
            if future.status == "error":
                done[number] = self._failed(future, number, on_failure)
            else:
                done[number], worker, rss = future.result()
                if rss >= self.recycle_mb:
                    self._recycle.add(worker)
            future.release()
            if upcoming is not None:
                self._restart_idle()
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1
            while pending.count() < self.size and next_in - next_out < 2 * self.size and submit():
                pass

    def _failed(self, future: Any, number: int, on_failure: Callable[[int, str], list[Any]]) -> bytes:
        import msgspec
        from distributed import KilledWorker

        error = future.exception()
        if isinstance(error, PainAspError):
            raise PainAspError(str(error))
        if isinstance(error, KilledWorker):
            self.died += 1
            return msgspec.msgpack.encode(on_failure(number, "the Dask workers checking it stopped"))
        raise RuntimeError(f"a Dask worker failed: {type(error).__name__}: {error}")

    def _restart_idle(self) -> None:
        """Restart the workers past their memory limit that hold no chunk (a nanny starts a
        fresh process; a worker busy with a chunk waits, so no chunk is ever cut short).

        A restart takes seconds on a loaded machine (the new process registers with the
        scheduler): it runs in a thread of its own, one at a time, while the other workers'
        chunks go on being submitted and collected here."""
        if not self._recycle or (self._restarting is not None and not self._restarting.done()):
            return
        busy = self._client.processing(workers=list(self._recycle))
        idle = [w for w in self._recycle if not busy.get(w)]
        if idle:
            from concurrent.futures import ThreadPoolExecutor

            if self._restarter is None:
                self._restarter = ThreadPoolExecutor(1, thread_name_prefix="pain-asp-restart")
            self._restarting = self._restarter.submit(self._client.restart_workers, idle, raise_for_error=False)
            self.retired += len(idle)
            self.started += len(idle)
            self._recycle.difference_update(idle)

    def close(self) -> None:
        """Disconnect (after a restart under way); stop the LocalCluster this pool started."""
        if self._restarter is not None:
            self._restarter.shutdown(wait=True)
            self._restarter = self._restarting = None
        if self._client is not None:
            self._client.close()
            if self._cluster is not None:
                self._cluster.close()
            self._client = self._cluster = None
