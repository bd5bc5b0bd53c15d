"""ICD-10-CM code status by fiscal year, from the tables shipped in ``kb/data/icd10cm``.

``releases.json`` lists the periods (a fiscal year, October 1 to September 30, or part of one
when CMS changed the code set on April 1) with the release that governs each and where it
came from; ``icd10cm.tsv.gz`` has one line per code with one status character per period
(``B`` billable, ``H`` header, ``-`` not a code of that release).
``scripts/build_icd10cm.py`` builds both; docs/reference-data.md tells how to add a year.
"""

from __future__ import annotations

import json
from functools import lru_cache

import msgspec

from .resources import kb_dir

__all__ = ["Period", "periods", "dx_marks", "dx_status", "dx_facts", "release_source", "periods_text"]

_STATUS = {"B": "billable", "H": "header", "-": "absent"}


class Period(msgspec.Struct, frozen=True):
    """A span of dates (YYYYMMDD) governed by one ICD-10-CM release."""

    label: str
    start: int
    end: int
    source: str

    def as_dict(self) -> dict[str, object]:
        """For ``data status``."""
        return {"release": self.label, "from": _iso(self.start), "to": _iso(self.end),
                "source": self.source}


def _ymd(iso: str) -> int:
    return int(iso.replace("-", ""))


def _iso(ymd: int) -> str:
    text = str(ymd)
    return f"{text[:4]}-{text[4:6]}-{text[6:]}"


@lru_cache(maxsize=1)
def periods() -> tuple[Period, ...]:
    """The periods of the shipped tables, oldest first."""
    data = json.loads((kb_dir() / "data" / "icd10cm" / "releases.json").read_text(encoding="utf-8"))
    out = []
    for item in data["periods"]:
        source = f"{item['cms_release']}; from PyPI {item['package']} {item['version']}, {item['file']}"
        out.append(Period(item["label"], _ymd(item["from"]), _ymd(item["to"]), source))
    return tuple(out)


@lru_cache(maxsize=1)
def _table() -> bytes:
    """The table's bytes after a newline, so that ``\\n<code>\\t`` finds a code's line (parsing
    every line into a mapping would cost a one-claim check some 0.3 s). The unpacked table is
    kept in the user cache (:mod:`pain_asp.cache`): unpacking costs a one-claim check ~10 ms,
    and reading it as text (decoded, then copied) ~5 ms where bytes take 0.3 ms."""
    from .cache import read_cached_bytes, stamp_key, write_cached

    path = kb_dir() / "data" / "icd10cm" / "icd10cm.tsv.gz"
    info = path.stat()
    stamp = f"{path.resolve()}|{info.st_mtime_ns}|{info.st_size}"
    name = f"icd10cm-{stamp_key(stamp)}.tsv"
    data = read_cached_bytes(name, stamp)
    if data is None:
        import gzip

        with gzip.open(path, "rb") as handle:
            data = handle.read()
        write_cached(name, stamp, data.decode("ascii"))
    return b"\n" + data


@lru_cache(maxsize=65536)
def dx_marks(code: str) -> str:
    """One status character per period for ``code`` (``-`` everywhere for a code never seen)."""
    table = _table()
    start = table.find(f"\n{code}\t".encode("ascii"))
    if start < 0:
        return "-" * len(periods())
    start += len(code) + 2
    return table[start:table.index(b"\n", start)].decode("ascii")


def dx_status(code: str) -> str | None:
    """``billable`` or ``header`` in the latest release, or None if the code is not in it."""
    return {"B": "billable", "H": "header"}.get(dx_marks(code)[-1])


def dx_facts(codes: set[str] | list[str]) -> list[str]:
    """``icd_period/3`` for every period, ``dx_in/3`` for each code and period whose status is known."""
    spans = periods()
    out = [f'icd_period({p.start}, {p.end}, "ICD-10-CM {p.label}").' for p in spans]
    for code in sorted(set(codes)):
        for period, mark in zip(spans, dx_marks(code)):
            if mark in _STATUS:
                out.append(f'dx_in("{code}", {period.start}, {_STATUS[mark]}).')
    return out


def release_source(label: str) -> dict[str, str]:
    """A finding's source entry for the release its facts name (``ICD-10-CM FY2025``, or
    ``none`` when no period covers the date)."""
    for period in periods():
        if f"ICD-10-CM {period.label}" == label:
            return {"document": f"{label} ({_iso(period.start)} to {_iso(period.end)}): {period.source}",
                    "url": "", "confidence": "data",
                    "effective": _iso(period.start)}
    first, last = periods()[0], periods()[-1]
    return {"document": f"no ICD-10-CM release: pain-asp's tables cover {_iso(first.start)} to "
                        f"{_iso(last.end)}", "url": "", "confidence": "data", "effective": ""}


def periods_text() -> str:
    """The shipped releases for ``pain-asp data status``."""
    spans = periods()
    lines = [f"ICD-10-CM releases shipped: {_iso(spans[0].start)} to {_iso(spans[-1].end)} (a diagnosis on "
             "a date outside them is dx-unknown)"]
    for p in spans:
        lines.append(f"  {p.label}: {_iso(p.start)} to {_iso(p.end)}: {p.source}")
    return "\n".join(lines) + "\n"
