"""A per-user cache for derived data (ICD-10-CM tables, rule metadata).

Everything here can be rebuilt from the installed package; a read-only or missing cache
only makes the first run of a process slower. ``PAIN_ASP_CACHE_DIR`` overrides the place.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

__all__ = ["cache_dir", "folder_stamp", "read_cached", "read_cached_bytes", "stamp_key", "write_atomic",
           "write_cached"]


def cache_dir() -> Path:
    """``$PAIN_ASP_CACHE_DIR``, else ``$XDG_CACHE_HOME/pain-asp``, else ``~/.cache/pain-asp``."""
    explicit = os.environ.get("PAIN_ASP_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "pain-asp"


def stamp_key(stamp: str) -> str:
    """A short file-name key for ``stamp`` (a description of the cached data's inputs).

    Not a cryptographic digest (hashlib's OpenSSL import costs a one-claim check about
    4 ms): different stamps may share a key, so every cache file also stores its full
    stamp and a reader treats a different stamp as a miss.
    """
    return f"{zlib.crc32(stamp.encode()):08x}"


def folder_stamp(folder: Path, pattern: str = "*.lp") -> str:
    """A description of the files matching ``pattern`` in ``folder`` and below (path, time of
    change, size) that changes whenever any of them changes (read with ``os.walk``: half the
    time of ``Path.rglob``, and every check reads the knowledge base's stamp)."""
    from fnmatch import fnmatchcase

    root = folder.resolve()
    found = []
    for top, _, names in os.walk(root):
        relative = os.path.relpath(top, root)
        parts = () if relative == "." else tuple(relative.split(os.sep))
        for name in names:
            if fnmatchcase(name, pattern):
                info = os.stat(os.path.join(top, name))
                found.append((*parts, name, info.st_mtime_ns, info.st_size))
    lines = [str(root)]
    for *path, changed, size in sorted(found, key=lambda row: row[:-2]):
        lines.append(f"{'/'.join(path)}|{changed}|{size}")
    return "\n".join(lines)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename; ignore an unwritable cache
    (a folder that cannot be made, or a file that cannot be written: ``write_output`` says
    so with a PainAspError)."""
    from . import outputs
    from .errors import PainAspError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        outputs.write_output(path, text)
    except (OSError, PainAspError):
        return
    _remove_stale(path)


# An entry of a kind not written for this long is removed at the kind's next write: every
# install (another folder, another version) and every edit of a payer file writes new entries,
# and an entry still in use is only written again (a few milliseconds).
_STALE_SECONDS = 30 * 86_400


def _remove_stale(written: Path) -> None:
    """Remove the entries of ``written``'s kind (its name up to the key: ``icd10cm-``,
    ``program-``, ``payer-``, ``kb-meta-``) written more than 30 days ago; errors are ignored."""
    import time

    kind = written.name.rsplit("-", 1)[0] + "-"
    oldest = time.time() - _STALE_SECONDS
    try:
        with os.scandir(written.parent) as entries:
            for entry in entries:
                if (entry.name.startswith(kind) and entry.name != written.name
                        and entry.name[len(kind):].count("-") == 0 and entry.stat().st_mtime < oldest):
                    os.unlink(entry.path)
    except OSError:
        pass


def read_cached(name: str, stamp: str) -> str | None:
    """The text cached as ``name`` for ``stamp``, or None (no cache, unreadable, another stamp)."""
    data = read_cached_bytes(name, stamp)
    try:
        return None if data is None else data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def read_cached_bytes(name: str, stamp: str) -> bytes | None:
    """:func:`read_cached` as the bytes written (UTF-8), without decoding them.

    A cache file holds the stamp's length, a newline, the full stamp and the text, so a
    reader compares the whole stamp, never only a key derived from it.
    """
    try:
        data = (cache_dir() / name).read_bytes()
    except OSError:
        return None
    head, newline, rest = data.partition(b"\n")
    key = stamp.encode("utf-8")
    if not newline or head != str(len(stamp)).encode() or not rest.startswith(key):
        return None
    return rest[len(key):]


def write_cached(name: str, stamp: str, text: str) -> None:
    """Cache ``text`` as ``name`` for ``stamp`` (see :func:`read_cached`)."""
    write_atomic(cache_dir() / name, f"{len(stamp)}\n{stamp}{text}")
