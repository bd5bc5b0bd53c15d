"""A per-user cache for derived data (ICD-10-CM tables, rule metadata).

Everything here can be rebuilt from the installed package; a read-only or missing cache
only makes the first run of a process slower. ``PAIN_ASP_CACHE_DIR`` overrides the place.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["cache_dir", "write_atomic"]


def cache_dir() -> Path:
    """``$PAIN_ASP_CACHE_DIR``, else ``$XDG_CACHE_HOME/pain-asp``, else ``~/.cache/pain-asp``."""
    explicit = os.environ.get("PAIN_ASP_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "pain-asp"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename; ignore an unwritable cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False,
                                         suffix=".tmp") as tmp:
            tmp.write(text)
        os.replace(tmp.name, path)
    except OSError:
        pass
