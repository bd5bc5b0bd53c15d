"""How worker processes start (``check --workers``, ``--dask local``).

Where the platform has it, workers fork from a fork server: they start in a fraction of the
time a fresh interpreter takes and share nothing of the command's state. The server listens
on a Unix socket in the temporary folder, whose path may be at most 107 bytes; under a
deeper ``$TMPDIR`` the server cannot start, so workers are spawned instead (slower to start,
the same results).
"""

from __future__ import annotations

import os

__all__ = ["start_method"]

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
