"""ICD-10-CM billability from the installed ``simple-icd-10-cm`` release.

The package parses its tabular XML at import (about 2.5 s), too slow for a one-claim
check, so the set of billable codes and of non-billable headers is derived from it once
and cached in the user's cache directory, keyed by the installed package file. The
knowledge base combines this current status with the dated transitions in
``kb/catalog/dx_validity.lp`` to decide billability on each date of service.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

from .cache import cache_dir, stamp_key, write_atomic

__all__ = ["dx_status", "release_stamp"]


def release_stamp() -> str:
    """A description of the installed ICD-10-CM package that changes whenever it changes."""
    spec = importlib.util.find_spec("simple_icd_10_cm")
    if spec is None or spec.origin is None:
        raise RuntimeError("the simple-icd-10-cm package is not installed")
    folder = Path(spec.origin).parent
    stamp = max((p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*.xml"))
    return f"{folder}|{stamp[0]}|{stamp[1]}"


def _build() -> tuple[frozenset[str], frozenset[str]]:
    import simple_icd_10_cm as icd

    billable, headers = set(), set()
    for code in icd.get_all_codes(True):
        if not icd.is_category_or_subcategory(code):
            continue
        (billable if icd.is_leaf(code) else headers).add(code)
    return frozenset(billable), frozenset(headers)


@lru_cache(maxsize=1)
def _tables() -> tuple[str, str]:
    """Space-padded lists of billable codes and of headers (a substring test is a lookup)."""
    stamp = release_stamp()
    path = cache_dir() / f"icd10cm-{stamp_key(stamp)}.txt"
    try:
        first, billable_text, header_text = path.read_text(encoding="utf-8").split("\n--\n")
        if first == stamp:
            return f" {billable_text} ", f" {header_text} "
    except (OSError, ValueError):
        pass
    billable, headers = _build()
    write_atomic(path, stamp + "\n--\n" + " ".join(sorted(billable)) + "\n--\n" + " ".join(sorted(headers)))
    return f" {' '.join(sorted(billable))} ", f" {' '.join(sorted(headers))} "


@lru_cache(maxsize=65536)
def dx_status(code: str) -> str | None:
    """``billable`` or ``header`` in the installed release, or None if the code is not in it."""
    billable, headers = _tables()
    key = f" {code} "
    if key in billable:
        return "billable"
    if key in headers:
        return "header"
    return None
