"""Chunks of a batch checked on Dask: ``pain-asp check --dask local|tcp://HOST:PORT`` (docs/scaling.md).

:class:`DaskPool` is a drop-in for :class:`pain_asp.modes.workers.WorkerPool`: the batch is read and
indexed as always (:func:`pain_asp.modes.check.iter_checked`; JSON Lines claims are parsed and
validated on the Dask workers in an index pass), so every claim is checked with its history from
every claim of its patient in the whole batch (and the history store); Dask workers check chunks
and render each result; results come back in any
order and are released in input order (two chunks per worker thread in flight, so that the
scheduler hands a worker its next chunk without waiting for this process; at most
``2 x workers`` held). The output is therefore the bytes ``--workers`` writes, whichever worker took which chunk.

``local`` starts a :class:`distributed.LocalCluster` of ``workers`` single-threaded worker
processes on this machine; ``tcp://HOST:PORT`` uses a running scheduler, whose workers must
have pain-asp installed and see the same ``--payer-dir``/``--ncci-dir`` paths.

clingo keeps every term a process has seen, so a Dask worker does not check a chunk itself:
it hands the chunk to a checking process of its own, a :class:`~pain_asp.modes.workers.WorkerPool`
of one, which retires at the limits of ``--workers`` and is replaced. Dask worker processes
are therefore never restarted (a nanny restart could leave the client waiting 120 s for the
worker to come back) and stay at the size of Dask itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Optional

from ..errors import PainAspError
from ..processes import worker_start_method

__all__ = ["CONNECT_TIMEOUT_S", "SILENCE_S", "DaskPool", "check_address", "check_chunk_on_worker"]

CONNECT_TIMEOUT_S = 10.0  # --dask tcp://...: how long to wait for the scheduler to answer
SILENCE_S = 600.0         # how long to wait for the next chunk (one takes seconds) before giving up
_POOLS: dict[str, Any] = {}  # per Dask worker process: its checking process (a WorkerPool of one)
_DAEMONIC = ("the Dask worker is a daemonic process, which cannot start the process that checks its "
             "chunks: start the Dask workers with DASK_DISTRIBUTED__WORKER__DAEMON=False")


def check_chunk_on_worker(process_pool: Callable[..., Any], task: Callable[..., list[Any]],
                          payload: bytes, options: Any, fmt: str, colour: bool, recycle_claims: int,
                          recycle_mb: float) -> tuple[Optional[bytes], str, tuple[int, int, int]]:
    """Run in a Dask worker: check one chunk with ``task`` (the batch check's
    :func:`pain_asp.modes.workers.check_task`, sent by name) in this worker's checking process,
    a ``process_pool`` of one (:class:`pain_asp.modes.workers.WorkerPool`, sent by name).

    Returns the chunk's items (msgpack), or None and why when the checking process died on it
    twice, and how many checking processes started, retired and died meanwhile.
    """
    import multiprocessing

    if multiprocessing.current_process().daemon:
        raise PainAspError(_DAEMONIC)
    key = repr((process_pool, task, options, fmt, colour, recycle_claims, recycle_mb))
    pool = _POOLS.get(key)
    if pool is None:
        pool = _POOLS[key] = process_pool(1, options, fmt, colour, recycle_claims, recycle_mb, task)
    before = (pool.started, pool.retired, pool.died)
    failures: list[str] = []
    [items] = pool.run([(payload, 0)], lambda number, why: failures.append(why) or [])
    counts = (pool.started - before[0], pool.retired - before[1], pool.died - before[2])
    return (None, failures[0], counts) if failures else (bytes(items), "", counts)


def check_address(address: str) -> None:
    """Raise a PainAspError unless ``address`` is ``local`` or ``tcp://HOST:PORT``-shaped."""
    if address != "local" and not address.startswith("tcp://"):
        raise PainAspError(f"--dask {address}: expected local or tcp://HOST:PORT")


# distributed keeps the last messages of each of its connections under 1 MB for developers
# (distributed.admin.low-level-log-length, 1,000 by default): a chunk's payload is such a
# message, so the client and a LocalCluster's scheduler (in this process) held every chunk
# sent, about 2.8 KB a claim (the command with Dask's scheduler: 133 MB at 20,000 claims,
# 252 MB at 60,000, 358 MB at 100,000). None are kept here; a remote scheduler keeps its own.
_NO_MESSAGE_LOG = {"distributed.admin.low-level-log-length": 0}


def _client_config() -> Any:
    """Dask settings for this process's client, in force while it runs (:data:`_NO_MESSAGE_LOG`)."""
    import dask

    return dask.config.set(_NO_MESSAGE_LOG)


def _local_config() -> Any:
    """Dask settings for a LocalCluster (its scheduler runs in this process) and its worker
    processes, in force while it runs.

    They start where they can (pain_asp/processes.py) from a fork server that has imported
    Dask: in about a second, without the several that spawning a fresh interpreter takes,
    and without this process's memory, threads (its Dask client runs an event loop in a
    thread) and open files. They are not daemonic, so they may start their checking process.
    """
    import dask

    return dask.config.set({"distributed.worker.multiprocessing-method": worker_start_method(),
                            "distributed.worker.daemon": False, **_NO_MESSAGE_LOG})


def _client(address: str, workers: int) -> tuple[Any, Any, Any]:
    """A Dask client, and for ``local`` the LocalCluster it owns and the settings in force
    while it runs (:func:`_local_config` or :func:`_client_config`; to be left with ``__exit__``)."""
    try:
        import logging

        from distributed import Client, LocalCluster
    except ImportError:
        raise PainAspError("--dask needs Dask's distributed scheduler: pip install 'pain-asp[scale]'") from None
    if address == "local":
        # On loopback only; the scheduler's HTTP routes on a free port, not 8787 (which
        # another cluster may hold: a warning on standard error). Errors of a task come back
        # through its result; Dask's own log (e.g. a worker's last heartbeat to a scheduler
        # already stopped at the end) stays off standard error.
        config = _local_config()  # after distributed's import: its defaults are in the config
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=":0", silence_logs=logging.CRITICAL)
        return Client(cluster), cluster, config
    check_address(address)
    config = _client_config()
    try:
        return Client(address, timeout=CONNECT_TIMEOUT_S), None, config
    except OSError:
        config.__exit__(None, None, None)
        raise PainAspError(f"--dask {address}: no Dask scheduler answered there "
                           f"within {CONNECT_TIMEOUT_S:g} s") from None


class DaskPool:
    """Checks chunks on Dask; the interface of :class:`pain_asp.modes.workers.WorkerPool`."""

    def __init__(self, address: str, workers: int, options: Any, fmt: str, colour: bool,
                 recycle_claims: int, recycle_mb: float, task: Callable[..., list[Any]],
                 process_pool: Callable[..., Any]) -> None:
        self.address = address
        self.size = max(1, workers)
        self.task = task
        self.process_pool = process_pool  # each Dask worker's checking process (WorkerPool)
        self._args = (options, fmt, colour, max(1, recycle_claims), recycle_mb)
        self._client: Any = None
        self._cluster: Any = None
        self._config: Any = None
        self.started = 0
        self.retired = 0
        self.died = 0

    def start(self, count: int = 0) -> None:
        """Start the cluster (or connect), e.g. while the batch is still being read."""
        if self._client is not None:
            return
        self._client, self._cluster, self._config = _client(self.address, self.size)
        if self._cluster is None:  # a running cluster: as many chunks in flight as it has threads
            workers = self._client.scheduler_info()["workers"].values()
            self.size = max(1, sum(w["nthreads"] for w in workers))

    def run(self, chunks: Iterable[tuple[bytes, int]],
            on_failure: Callable[[int, str], list[Any]]) -> Iterator[Any]:
        """Check ``(payload, claims)`` chunks; yield each chunk's items (msgpack), in chunk order."""
        import time

        from distributed import as_completed

        self.start()
        client = self._client
        run_id = uuid.uuid4().hex
        source = iter(chunks)
        numbers: dict[Any, int] = {}
        done: dict[int, Any] = {}
        pending = as_completed()
        next_in = next_out = 0

        def submit() -> bool:
            nonlocal next_in
            chunk = next(source, None)
            if chunk is None:
                return False
            future = client.submit(check_chunk_on_worker, self.process_pool, self.task, chunk[0],
                                   *self._args,
                                   key=f"pain-asp-{run_id}-{next_in}", pure=False, retries=1)
            numbers[future.key] = next_in
            next_in += 1
            pending.add(future)
            return True

        while next_in < 2 * self.size and submit():
            pass
        heard = time.monotonic()
        while not pending.is_empty():
            if not pending.has_ready():  # a worker or scheduler that stopped answering must not hang the batch
                if time.monotonic() - heard > SILENCE_S:
                    raise PainAspError(f"--dask {self.address}: no chunk came back from the Dask workers "
                                       f"in {SILENCE_S:g} s; the batch is stopped")
                time.sleep(0.02)
                continue
            future = next(pending)
            heard = time.monotonic()
            number = numbers.pop(future.key)
            done[number] = self._result(future, number, on_failure)
            future.release()
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1
            while next_in - next_out < 2 * self.size and submit():
                pass

    def _result(self, future: Any, number: int, on_failure: Callable[[int, str], list[Any]]) -> bytes:
        import msgspec
        from distributed import KilledWorker

        if future.status == "error":
            error = future.exception()
            if isinstance(error, PainAspError):
                raise PainAspError(str(error))
            if isinstance(error, KilledWorker):
                return msgspec.msgpack.encode(on_failure(number, "the Dask workers checking it stopped"))
            raise RuntimeError(f"a Dask worker failed: {type(error).__name__}: {error}")
        items, why, (started, retired, died) = future.result()
        self.started += started
        self.retired += retired
        self.died += died
        return items if items is not None else msgspec.msgpack.encode(on_failure(number, why))

    def close(self) -> None:
        """Disconnect; stop the LocalCluster this pool started (its workers stop their checking processes)."""
        if self._client is not None:
            self._client.close()
            if self._cluster is not None:
                self._cluster.close()
            self._client = self._cluster = None
        if self._config is not None:
            self._config.__exit__(None, None, None)
            self._config = None
