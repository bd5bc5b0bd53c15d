"""NCCI procedure-to-procedure (PTP) edits and medically unlikely edits (MUE).

The tables have the layout of CMS's quarterly practitioner files (see kb/data/README.md).
Only the rows that touch the codes of the claims in a solve are written as facts, so the
grounder never sees the full national table.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import PainAspError
from .resources import kb_dir
from .tokens import CODE_RE

__all__ = ["NcciTables", "load_tables", "PtpRow", "MueRow"]

PTP_FILE = "ncci_ptp_practitioner.tsv"
MUE_FILE = "ncci_mue_practitioner.tsv"


@dataclass(frozen=True)
class PtpRow:
    """One PTP edit: column-1 code, column-2 code, modifier indicator, dates (YYYYMMDD)."""

    column1: str
    column2: str
    indicator: int
    effective: int
    deletion: int
    rationale: str


@dataclass(frozen=True)
class MueRow:
    """One MUE: code, maximum units, MUE adjudication indicator (1, 2 or 3)."""

    code: str
    value: int
    mai: int
    rationale: str


class NcciTables:
    """PTP and MUE rows indexed by code."""

    def __init__(self, ptp: list[PtpRow], mue: list[MueRow], origin: str) -> None:
        self.origin = origin
        self.ptp_by_code: dict[str, list[PtpRow]] = {}
        for row in ptp:
            self.ptp_by_code.setdefault(row.column1, []).append(row)
        self.mue = {row.code: row for row in mue}

    def facts(self, codes: set[str]) -> list[str]:
        """``ptp_edit/5`` for pairs whose both codes are in ``codes``; ``mue/3`` for ``codes``."""
        out = []
        for code in sorted(codes):
            for row in self.ptp_by_code.get(code, ()):
                if row.column2 in codes and row.indicator in (0, 1):
                    out.append(
                        f'ptp_edit("{row.column1}", "{row.column2}", {row.indicator}, '
                        f"{row.effective}, {row.deletion})."
                    )
            mue = self.mue.get(code)
            if mue is not None:
                out.append(f'mue("{code}", {mue.value}, {mue.mai}).')
        return out


def _date(text: str, where: str) -> int:
    text = text.strip()
    if text in ("", "*"):
        return 99991231
    if not (text.isdigit() and len(text) == 8):
        raise PainAspError(f"{where}: expected a date as YYYYMMDD or *, got {text!r}")
    return int(text)


def _code(text: str, where: str) -> str:
    code = text.strip().upper()
    if not CODE_RE.match(code):
        raise PainAspError(f"{where}: expected a CPT/HCPCS code, got {text!r}")
    return code


def read_ptp(path: Path) -> list[PtpRow]:
    """Read a practitioner PTP file (tab-separated, header row)."""
    rows = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        next(reader, None)
        for number, cols in enumerate(reader, start=2):
            if not cols or not "".join(cols).strip():
                continue
            where = f"{path}:{number}"
            if len(cols) < 6:
                raise PainAspError(f"{where}: expected 7 tab-separated columns, got {len(cols)}")
            indicator = cols[5].strip()[:1]
            if indicator not in ("0", "1", "9"):
                raise PainAspError(f"{where}: expected modifier indicator 0, 1 or 9, got {cols[5]!r}")
            rows.append(PtpRow(_code(cols[0], where), _code(cols[1], where), int(indicator),
                               _date(cols[3], where), _date(cols[4], where),
                               cols[6].strip() if len(cols) > 6 else ""))
    return rows


def read_mue(path: Path) -> list[MueRow]:
    """Read a practitioner MUE file (tab-separated, header row)."""
    rows = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        next(reader, None)
        for number, cols in enumerate(reader, start=2):
            if not cols or not "".join(cols).strip():
                continue
            where = f"{path}:{number}"
            if len(cols) < 3:
                raise PainAspError(f"{where}: expected 4 tab-separated columns, got {len(cols)}")
            value, mai = cols[1].strip(), cols[2].strip()[:1]
            if not value.isdigit() or mai not in ("1", "2", "3"):
                raise PainAspError(f"{where}: expected an MUE value and an MAI of 1, 2 or 3, got {cols[1:3]!r}")
            rows.append(MueRow(_code(cols[0], where), int(value), int(mai),
                               cols[3].strip() if len(cols) > 3 else ""))
    return rows


@lru_cache(maxsize=4)
def load_tables(directory: str | None = None) -> NcciTables:
    """Tables from ``directory`` (an imported CMS data set), else the shipped starter tables."""
    folder = Path(directory) if directory else kb_dir() / "data"
    return NcciTables(read_ptp(folder / PTP_FILE), read_mue(folder / MUE_FILE), str(folder))
