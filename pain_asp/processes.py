"""How worker processes start (``check --workers``, ``--dask local``).

Where the platform has it, workers fork from a fork server: they start in a fraction of the
time a fresh interpreter takes and share nothing of the command's state. The server listens
on a Unix socket in the temporary folder, whose path may be at most 107 bytes; under a
deeper ``$TMPDIR`` the server cannot start, so workers are spawned instead (slower to start,
the same results).

A new interpreter started as ``python -c`` (the fork server; a spawned worker) puts the
current folder first on its import path, and the fork server imports the modules it preloads
(clingo, the engine) before it takes the command's own path: a ``clingo.py`` or a
``pain_asp/`` in the folder a user checks claims from would run in every worker. So the
workers start with ``PYTHONSAFEPATH`` set (Python 3.11 and later), which leaves the current
folder off the path (:func:`worker_start_method`).
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["start_method", "worker_context", "worker_start_method"]

# sun_path holds 108 bytes with its final NUL; multiprocessing puts the socket at
# <tmp>/pymp-XXXXXXXX/listener-XXXXXXXX (37 bytes after <tmp>).
_SOCKET_PATH_MAX = 107
_SOCKET_NAME_BYTES = 37


def start_method() -> str:
    """``forkserver`` where it exists and its socket fits in the temporary folder, else
    ``spawn``."""
    import multiprocessing
    import tempfile

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return "spawn"
    folder = os.fsencode(tempfile.gettempdir())
    return "forkserver" if len(folder) + _SOCKET_NAME_BYTES <= _SOCKET_PATH_MAX else "spawn"



def worker_start_method() -> str:
    """:func:`start_method`, once ``PYTHONSAFEPATH`` is set in this process's environment, so
    that the worker processes started from here on (by multiprocessing or by Dask's nanny)
    leave the current folder off their import path."""
    os.environ["PYTHONSAFEPATH"] = "1"
    return start_method()


def worker_context(preload: list[str]) -> Any:
    """The multiprocessing context for worker processes (:func:`worker_start_method`): a fork
    server that has imported ``preload``, or spawn."""
    import multiprocessing

    if worker_start_method() == "forkserver":
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(preload)
        return context
    return multiprocessing.get_context("spawn")
