"""NCCI procedure-to-procedure (PTP) edits, medically unlikely edits (MUE), add-on code edits (AOC).

The tables have the layout of CMS's quarterly practitioner files (see kb/data/README.md).
Only the rows that touch the codes of the claims in a solve are written as facts, so the
grounder never sees the full national table.

Which tables a check uses, first match wins:

1. a folder named explicitly (``--ncci-dir``, ``CheckOptions.ncci_dir``, a case's ``ncci:``);
2. the imported data set in the per-user data folder, ``$PAIN_ASP_DATA_DIR/ncci`` (else
   ``$XDG_DATA_HOME/pain-asp/ncci``, else ``~/.local/share/pain-asp/ncci``), when it holds a
   complete import (its ``manifest.json`` and both tables);
3. the starter tables shipped in ``kb/data``.

:func:`import_ncci` reads CMS's files (``pain-asp data import-ncci``) as CMS publishes them
(.zip archives, .xlsx, .csv or text: pain_asp/inputs/cms_files.py): practitioner PTP files
``ccipra-v<version>r0-f<1..4>.txt`` (tab-separated), the practitioner MUE table (tab- or
comma-separated) and, optionally, the add-on code edit table. Every row is validated; a
malformed row is reported with its file and line, and nothing is written unless every row
is good (or ``skip_malformed`` is given). By default only rows touching a code of the
knowledge base's catalog are kept. The import writes the tables in the layout this module
reads and a ``manifest.json`` naming the source files (with SHA-256), the NCCI version and
quarter, and the row counts; :func:`status` reports it, and
:meth:`NcciTables.data_sets` names the tables a finding cites.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import msgspec

from .errors import PainAspError
from .inputs.cms_files import KINDS, table_texts, wrong_kind
from .resources import kb_dir

__all__ = [
    "NcciTables", "load_tables", "PtpRow", "MueRow", "AocRow", "read_ptp", "read_mue", "read_aoc",
    "data_root", "default_dir", "installed_dir", "resolve_dir",
    "import_ncci", "ImportReport", "status", "status_text", "ncci_version", "DATA_ENV", "starter_notice",
]

PTP_FILE = "ncci_ptp_practitioner.tsv"
MUE_FILE = "ncci_mue_practitioner.tsv"
AOC_FILE = "ncci_aoc.tsv"
MANIFEST = "manifest.json"
PTP_INDEX = "ptp_index.json"
DATA_ENV = "PAIN_ASP_DATA_DIR"
PTP_HEADER = ("Column 1\tColumn 2\t*=in existence prior to 1996\tEffective Date\t"
              "Deletion Date *=no data\tModifier 0=not allowed 1=allowed 9=not applicable\t"
              "PTP Edit Rationale")
MUE_HEADER = ("HCPCS/CPT Code\tPractitioner Services MUE Values\tMUE Adjudication Indicator\t"
              "MUE Rationale")
AOC_HEADER = "Add-on Code\tPrimary Code\tAOC Edit Type\tAOC Edit Eff Dt\tAOC Edit Del Dt"
OPEN_END = 99991231
_TABLE_CODE = re.compile(r"^[0-9A-Z]{5}$")  # every CPT/HCPCS code in CMS's tables is 5 characters
_MAX_LISTED = 20


class PtpRow(msgspec.Struct, frozen=True):
    """One PTP edit: column-1 code, column-2 code, modifier indicator, dates (YYYYMMDD)."""

    column1: str
    column2: str
    indicator: int
    effective: int
    deletion: int
    rationale: str
    prior_1996: bool = False


class MueRow(msgspec.Struct, frozen=True):
    """One MUE: code, maximum units, MUE adjudication indicator (1, 2 or 3)."""

    code: str
    value: int
    mai: int
    rationale: str


class AocRow(msgspec.Struct, frozen=True):
    """One add-on code edit: add-on, primary, edit type (1, 2 or 3), dates (YYYYMMDD)."""

    addon: str
    primary: str          # CONTRACTOR (CMS's CCCCC) when the contractor defines the primaries
    edit_type: int
    effective: int
    deletion: int


class NcciTables:
    """PTP and MUE rows indexed by code.

    A large imported PTP table is not parsed whole: ``lazy`` (a :class:`_PtpIndex` written at
    import) reads only the rows of the column-1 codes a solve asks for.
    """

    def __init__(self, ptp: list[PtpRow], mue: list[MueRow], origin: str,
                 manifest: dict[str, Any] | None = None, lazy: _PtpIndex | None = None,
                 aoc: list[AocRow] | None = None) -> None:
        self.origin = origin
        self.manifest = manifest
        self.lazy = lazy
        self.shipped = Path(origin).resolve() == (kb_dir() / "data").resolve()
        self.ptp_count = lazy.rows if lazy is not None else len(ptp)
        self.mue_count = len(mue)
        self.ptp_by_code: dict[str, list[PtpRow]] = {}
        for row in ptp:
            self.ptp_by_code.setdefault(row.column1, []).append(row)
        self.mue = {row.code: row for row in mue}
        self.aoc_count = len(aoc) if aoc is not None else None
        self.aoc_by_addon: dict[str, list[AocRow]] = {}
        for item in aoc or []:
            self.aoc_by_addon.setdefault(item.addon, []).append(item)

    def data_sets(self) -> dict[str, dict[str, str]]:
        """What each table in use is (``ptp``, ``mue``, ``aoc``): its name as a finding cites
        it, whether it is CMS's table, and the quarter's first day when known."""
        manifest = self.manifest or {}
        quarter = manifest.get("quarter")
        version = f" (NCCI version {manifest['version']})" if manifest.get("version") else ""
        effective = _quarter_start(quarter) if quarter else ""
        if self.shipped:
            ptp = {"name": f"pain-asp starter PTP table ({self.ptp_count} pairs, unverified): not CMS's table",
                   "cms": "no", "effective": ""}
            mue = {"name": f"pain-asp starter MUE table ({self.mue_count} codes, unverified): not CMS's table",
                   "cms": "no", "effective": ""}
        elif manifest:
            ptp = {"name": f"CMS NCCI practitioner PTP edits {quarter or '(quarter unknown)'}{version}",
                   "cms": "yes", "effective": effective}
            mue = {"name": f"CMS practitioner MUE table {quarter or '(quarter unknown)'}", "cms": "yes",
                   "effective": effective}
        else:
            ptp = {"name": f"PTP table in {self.origin} (no import manifest: quarter unknown)",
                   "cms": "unknown", "effective": ""}
            mue = {"name": f"MUE table in {self.origin} (no import manifest: quarter unknown)",
                   "cms": "unknown", "effective": ""}
        aoc = {"name": "pain-asp catalog add-on primaries (kb/catalog/codes.lp): CMS's add-on code "
                       "edit tables not imported", "cms": "no", "effective": ""}
        if self.aoc_count is not None and manifest.get("aoc"):
            aoc_quarter = manifest["aoc"].get("quarter") or quarter
            aoc = {"name": f"CMS NCCI add-on code edits {aoc_quarter or '(quarter unknown)'}", "cms": "yes",
                   "effective": _quarter_start(aoc_quarter) if aoc_quarter else ""}
        return {"ptp": ptp, "mue": mue, "aoc": aoc}

    def starter(self) -> list[str]:
        """The tables in use that are not CMS's: ``ptp``, ``mue``, ``aoc`` (empty when complete)."""
        return [kind for kind, info in self.data_sets().items() if info["cms"] == "no"]

    def rows_for(self, code: str) -> list[PtpRow]:
        """The PTP rows whose column-1 code is ``code``."""
        if self.lazy is not None:
            return self.lazy.rows_for(code)
        return self.ptp_by_code.get(code, [])

    def facts(self, codes: set[str]) -> list[str]:
        """``ptp_edit/5`` for pairs whose both codes are in ``codes``; ``mue/3`` for ``codes``;
        ``aoc_listed/2`` for the add-ons among ``codes`` with their CMS edit types and
        ``aoc_edit/5`` for their CMS primaries among ``codes``."""
        out = []
        for code in sorted(codes):
            for row in self.rows_for(code):
                if row.column2 in codes and row.indicator in (0, 1):
                    out.append(
                        f'ptp_edit("{row.column1}", "{row.column2}", {row.indicator}, '
                        f"{row.effective}, {row.deletion})."
                    )
            mue = self.mue.get(code)
            if mue is not None:
                out.append(f'mue("{code}", {mue.value}, {mue.mai}).')
            for edit_type in sorted({row.edit_type for row in self.aoc_by_addon.get(code, [])}):
                out.append(f'aoc_listed("{code}", {edit_type}).')
            for row in self.aoc_by_addon.get(code, []):
                if row.primary in codes:
                    out.append(f'aoc_edit("{code}", "{row.primary}", {row.edit_type}, '
                               f"{row.effective}, {row.deletion}).")
        return out


# ---------------------------------------------------------------------------------------
# Reading CMS-layout files
# ---------------------------------------------------------------------------------------

class _Parsed(msgspec.Struct):
    """Rows of one file, with the lines that were not rows."""

    ptp: list[tuple[int, PtpRow]] = msgspec.field(default_factory=list)
    mue: list[tuple[int, MueRow]] = msgspec.field(default_factory=list)
    aoc: list[tuple[int, AocRow]] = msgspec.field(default_factory=list)
    malformed: list[str] = msgspec.field(default_factory=list)
    preamble: int = 0
    tables: list[str] = msgspec.field(default_factory=list)
    rows: int = 0            # good PTP rows read, kept or not


def _is_header(cells: list[str], kind: str) -> bool:
    """The column header: ``Column 1`` first (PTP), an MUE value column second (MUE), an
    add-on code column (AOC)."""
    names = [c.strip().strip('"').lower() for c in cells]
    if kind == "ptp":
        return bool(names) and names[0].startswith("column 1")
    if kind == "aoc":
        return any(n.startswith(("add-on code", "add on code")) for n in names)
    return len(names) >= 3 and "mue" in names[1]


def _split(line: str, comma: bool) -> list[str]:
    if comma:
        return next(csv.reader([line]), [])
    return line.split("\t")


def _parse(path: Path, kind: str, keep: set[str] | None = None) -> _Parsed:
    """Every data row of the tables of ``kind`` in ``path`` (a text file, an .xlsx sheet or a
    .zip archive as CMS ships it, pain_asp/inputs/cms_files.py). With ``keep``, every PTP row is
    validated and counted but only those touching a code of ``keep`` are returned."""
    out = _Parsed()
    for label, text in table_texts(path, kind):
        wrong_kind(label, text, kind)
        one = _parse_text(label, text, kind, keep)
        out.rows += one.rows
        out.ptp += one.ptp
        out.mue += one.mue
        out.aoc += one.aoc
        out.malformed += one.malformed
        out.preamble += one.preamble
        out.tables.append(label)
    return out


def _parse_text(label: str, text: str, kind: str, keep: set[str] | None = None) -> _Parsed:
    """Every data row of one CMS-layout table. Lines before the column header (a copyright
    notice) are skipped and counted; after the header, every non-blank line must be a row,
    except header continuation lines (empty first cell) before the first row. A well-formed
    tab-separated PTP row is read by one pattern (a full table has some 2 million); any
    other goes through the column checks that name what is wrong."""
    out = _Parsed()
    state = "preamble"
    comma = False
    columns: dict[str, int] = {}
    seen_mue: dict[str, int] = {}
    for number, raw in enumerate(io.StringIO(text), start=1):
        line = raw.rstrip("\r\n")
        if not line.strip("\t ,"):
            continue
        if state == "preamble":
            line_comma = "\t" not in line and "," in line
            cells = _split(line, line_comma)
            first = cells[0] if cells else ""
            if _is_header(cells, kind):
                state, comma = "header", line_comma
                columns = _aoc_columns(cells) if kind == "aoc" else {}
                continue
            if not _TABLE_CODE.match(first.strip().strip('"').upper()):
                out.preamble += 1
                continue
            if kind == "aoc":
                raise PainAspError(_AOC_NO_HEADER.format(label=label))
            state, comma = "data", line_comma
        else:
            if state == "data" and kind == "ptp" and not comma:
                fast = _PTP_LINE.fullmatch(line)
                if fast and _calendar(fast[4]) and (fast[5] == "*" or (_calendar(fast[5]) and fast[5] >= fast[4])):
                    out.rows += 1
                    if keep is None or fast[1] in keep or fast[2] in keep:
                        out.ptp.append((number, PtpRow(
                            fast[1], fast[2], int(fast[6]), int(fast[4]),
                            OPEN_END if fast[5] == "*" else int(fast[5]), (fast[7] or "").strip(), fast[3] == "*")))
                    continue
            cells = _split(line, comma)
            first = cells[0] if cells else ""
            if state == "header":
                if not first.strip():
                    continue
                state = "data"
        where = f"{label}:{number}"
        try:
            if kind == "ptp":
                row = _ptp_row(cells, where)
                out.rows += 1
                if keep is None or row.column1 in keep or row.column2 in keep:
                    out.ptp.append((number, row))
            elif kind == "aoc":
                out.aoc.append((number, _aoc_row(cells, columns, where)))
            else:
                row = _mue_row(cells, where)
                if row.code in seen_mue:
                    raise ValueError(f"{where}: code {row.code} already has an MUE on line {seen_mue[row.code]}")
                seen_mue[row.code] = number
                out.mue.append((number, row))
        except ValueError as exc:
            out.malformed.append(str(exc))
    if state == "preamble" and out.preamble and kind == "aoc":
        raise PainAspError(_AOC_NO_HEADER.format(label=label))
    if state == "preamble" and out.preamble:
        out.malformed.append(f"{label}: no {KINDS[kind]} rows found "
                             f"({out.preamble} line(s) that are neither a header nor a row)")
    return out


_PTP_LINE = re.compile(r"([0-9A-Z]{5})\t([0-9A-Z]{5})\t(\*?)\t(\d{8})\t(\d{8}|\*)\t([019])(?:\t([^\t]*))?[\t ]*")


@lru_cache(maxsize=8192)
def _calendar(text: str) -> bool:
    """``YYYYMMDD`` is a calendar date (a full table repeats a few thousand dates)."""
    try:
        dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return False
    return True


def _date(text: str, where: str, name: str, open_end: bool) -> int:
    text = text.strip()
    if open_end and text in ("", "*"):
        return OPEN_END
    if not (text.isdigit() and len(text) == 8):
        raise ValueError(f"{where}: {name}: expected a date as YYYYMMDD{' or *' if open_end else ''}, got {text!r}")
    try:
        dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise ValueError(f"{where}: {name}: {text!r} is not a calendar date") from None
    return int(text)


def _code(text: str, where: str, name: str) -> str:
    code = text.strip().strip('"').upper()
    if not _TABLE_CODE.match(code):
        raise ValueError(f"{where}: {name}: expected a CPT/HCPCS code (5 letters or digits), got {text!r}")
    return code


def _ptp_row(cols: list[str], where: str) -> PtpRow:
    if len(cols) < 6:
        raise ValueError(f"{where}: expected at least 6 tab-separated columns (column 1, column 2, "
                         f"pre-1996 flag, effective date, deletion date, modifier indicator), got {len(cols)}")
    flag = cols[2].strip()
    if flag not in ("", "*"):
        raise ValueError(f"{where}: pre-1996 flag: expected * or nothing, got {cols[2]!r}")
    effective = _date(cols[3], where, "effective date", False)
    deletion = _date(cols[4], where, "deletion date", True)
    if deletion < effective:
        raise ValueError(f"{where}: deletion date {deletion} is before the effective date {effective}")
    indicator = cols[5].strip()
    if indicator not in ("0", "1", "9"):
        raise ValueError(f"{where}: modifier indicator: expected 0, 1 or 9, got {cols[5]!r}")
    return PtpRow(_code(cols[0], where, "column 1"), _code(cols[1], where, "column 2"), int(indicator),
                  effective, deletion, cols[6].strip() if len(cols) > 6 else "", flag == "*")


def _mue_row(cols: list[str], where: str) -> MueRow:
    if len(cols) < 3:
        raise ValueError(f"{where}: expected at least 3 columns (code, MUE value, MUE adjudication "
                         f"indicator), got {len(cols)}")
    value = cols[1].strip().strip('"')
    if not value.isdigit():
        raise ValueError(f"{where}: MUE value: expected a whole number, got {cols[1]!r}")
    mai = cols[2].strip().strip('"')[:1]
    if mai not in ("1", "2", "3"):
        raise ValueError(f"{where}: MUE adjudication indicator: expected 1, 2 or 3, got {cols[2]!r}")
    return MueRow(_code(cols[0], where, "code"), int(value), int(mai),
                  cols[3].strip().strip('"') if len(cols) > 3 else "")


CONTRACTOR = "CONTRACTOR"
_AOC_NO_HEADER = ("{label}: no column header naming the add-on code, primary code, edit type and dates "
                  "(CMS's fixed-width AOC text has none: give the .xlsx of the same download, or its .zip)")
_AOC_COLUMNS = {   # CMS's AOC column names (spaces and case aside) -> field
    "add-on code": "addon", "add on code": "addon", "primary code": "primary",
    "aoc edit type": "type", "aoc edit eff dt": "effective", "aoc edit del dt": "deletion",
}


def _aoc_columns(cells: list[str]) -> dict[str, int]:
    """Column positions of the AOC fields, from CMS's header (``... (Julian)`` suffixes aside)."""
    out = {}
    for i, cell in enumerate(cells):
        name = " ".join(cell.strip().strip('"').lower().replace("(julian)", "").replace("_", " ").split())
        if name in _AOC_COLUMNS:
            out.setdefault(_AOC_COLUMNS[name], i)
    return out


def _aoc_date(text: str, where: str, name: str, open_end: bool) -> int:
    """CMS's AOC dates: Julian YYYYDDD (as published), or YYYYMMDD; 9999999 or empty = none."""
    text = text.strip().strip('"')
    if open_end and text in ("", "*", "9999999", "99999999", "99991231"):
        return OPEN_END
    if text.isdigit() and len(text) == 7:
        year, day = int(text[:4]), int(text[4:])
        if 1 <= day <= (366 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 365):
            date = dt.date(year, 1, 1) + dt.timedelta(days=day - 1)
            return date.year * 10000 + date.month * 100 + date.day
        raise ValueError(f"{where}: {name}: {text!r} is not a Julian date (YYYYDDD)")
    return _date(text, where, name, open_end)


def _aoc_row(cols: list[str], columns: dict[str, int], where: str) -> AocRow:
    missing = [f for f in ("addon", "primary", "type", "effective", "deletion") if f not in columns]
    if missing:
        raise ValueError(f"{where}: the column header names no {', '.join(missing)} column "
                         "(expected CMS's Add-on Code, Primary Code, AOC Edit Type, AOC Edit Eff Dt, AOC Edit Del Dt)")
    if len(cols) <= max(columns.values()):
        raise ValueError(f"{where}: expected {max(columns.values()) + 1} columns as in the header, got {len(cols)}")
    cell = {f: cols[i].strip().strip('"') for f, i in columns.items()}
    kind = cell["type"].lower().replace("type", "").strip()
    if kind not in ("1", "2", "3"):
        raise ValueError(f"{where}: AOC edit type: expected 1, 2 or 3, got {cell['type']!r}")
    primary = cell["primary"].upper()
    primary = CONTRACTOR if primary in ("CCCCC", "") else _code(primary, where, "primary code")
    effective = _aoc_date(cell["effective"], where, "AOC edit effective date", False)
    deletion = _aoc_date(cell["deletion"], where, "AOC edit deletion date", True)
    if deletion < effective:
        raise ValueError(f"{where}: deletion date {deletion} is before the effective date {effective}")
    return AocRow(_code(cell["addon"], where, "add-on code"), primary, int(kind), effective, deletion)


def _strict(parsed: _Parsed) -> None:
    if parsed.malformed:
        raise PainAspError(_malformed_text(parsed.malformed))


def _malformed_text(problems: list[str]) -> str:
    shown = problems[:_MAX_LISTED]
    more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
    return f"{len(problems)} malformed row(s):\n  " + "\n  ".join(shown) + more


def read_ptp(path: Path) -> list[PtpRow]:
    """Read a practitioner PTP file; a malformed row raises PainAspError naming file and line."""
    parsed = _parse(path, "ptp")
    _strict(parsed)
    return [row for _, row in parsed.ptp]


def read_mue(path: Path) -> list[MueRow]:
    """Read a practitioner MUE file; a malformed row raises PainAspError naming file and line."""
    parsed = _parse(path, "mue")
    _strict(parsed)
    return [row for _, row in parsed.mue]


def read_aoc(path: Path) -> list[AocRow]:
    """Read an add-on code edit table; a malformed row raises PainAspError naming file and line."""
    parsed = _parse(path, "aoc")
    _strict(parsed)
    return [row for _, row in parsed.aoc]


# ---------------------------------------------------------------------------------------
# Where the tables are
# ---------------------------------------------------------------------------------------

def data_root() -> Path:
    """``$PAIN_ASP_DATA_DIR``, else ``$XDG_DATA_HOME/pain-asp``, else ``~/.local/share/pain-asp``."""
    explicit = os.environ.get(DATA_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_DATA_HOME")
    return (Path(base) if base else Path.home() / ".local" / "share") / "pain-asp"


def default_dir() -> Path:
    """Where ``import_ncci`` writes when no folder is named: ``data_root()/ncci``."""
    return data_root() / "ncci"


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in (MANIFEST, PTP_FILE, MUE_FILE))


def installed_dir() -> Path | None:
    """The imported data set in the per-user data folder, if a complete one is there."""
    folder = default_dir()
    return folder if _complete(folder) else None


def resolve_dir(directory: str | Path | None = None) -> Path:
    """The folder whose tables a check reads (see the module docstring)."""
    if directory:
        return Path(directory)
    return installed_dir() or kb_dir() / "data"


def load_tables(directory: str | None = None) -> NcciTables:
    """Tables from ``directory``, else the imported data set, else the shipped starter tables."""
    folder = resolve_dir(directory)
    stamp = tuple(_stamp(folder / name) for name in (PTP_FILE, MUE_FILE, MANIFEST, AOC_FILE))
    return _load(str(folder), stamp)


def _stamp(path: Path) -> tuple[int, int]:
    try:
        info = path.stat()
    except OSError:
        return (0, 0)
    return (info.st_mtime_ns, info.st_size)


@lru_cache(maxsize=4)
def _load(folder: str, stamp: tuple[tuple[int, int], ...]) -> NcciTables:
    path = Path(folder)
    manifest = _manifest(path)
    index = _PtpIndex.open(path) if manifest is not None else None
    aoc = read_aoc(path / AOC_FILE) if (path / AOC_FILE).is_file() else None
    if index is not None and index.rows > LAZY_ROWS:
        return NcciTables([], read_mue(path / MUE_FILE), folder, manifest, lazy=index, aoc=aoc)
    return NcciTables(read_ptp(path / PTP_FILE), read_mue(path / MUE_FILE), folder, manifest, aoc=aoc)


LAZY_ROWS = 20000  # above this many PTP rows, an imported table is read code by code


class _PtpIndex:
    """Byte ranges of each column-1 code in an imported PTP table (sorted by column 1).

    Written at import as ``ptp_index.json`` with the table's size; a table whose size no
    longer matches (edited by hand) is read whole instead. Rows are parsed, and validated,
    only when a solve asks for their code.
    """

    def __init__(self, path: Path, rows: int, ranges: dict[str, list[int]]) -> None:
        self.path = path
        self.rows = rows
        self.ranges = ranges
        self._cache: dict[str, list[PtpRow]] = {}

    @classmethod
    def open(cls, folder: Path) -> _PtpIndex | None:
        """The index of ``folder``'s PTP table, if it is there and matches the table."""
        try:
            data = json.loads((folder / PTP_INDEX).read_text(encoding="utf-8"))
            size = (folder / PTP_FILE).stat().st_size
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("ptp_size") != size:
            return None
        ranges = data.get("codes")
        if not isinstance(ranges, dict) or not isinstance(data.get("rows"), int):
            return None
        return cls(folder / PTP_FILE, data["rows"], ranges)

    def rows_for(self, code: str) -> list[PtpRow]:
        """The rows of ``code`` (parsed on first use)."""
        cached = self._cache.get(code)
        if cached is not None:
            return cached
        span = self.ranges.get(code)
        rows: list[PtpRow] = []
        if span is not None:
            with self.path.open("rb") as handle:
                handle.seek(span[0])
                chunk = handle.read(span[1] - span[0]).decode("utf-8")
            for offset, line in enumerate(chunk.splitlines()):
                row = _ptp_row_or_error(line.split("\t"), f"{self.path} (row {offset + 1} of {code})")
                if row.column1 != code:
                    raise PainAspError(f"{self.path}: the table does not match its index "
                                       f"({PTP_INDEX}); import the data set again")
                rows.append(row)
        self._cache[code] = rows
        return rows


def _ptp_row_or_error(cells: list[str], where: str) -> PtpRow:
    try:
        return _ptp_row(cells, where)
    except ValueError as exc:
        raise PainAspError(str(exc)) from None


def _manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# ---------------------------------------------------------------------------------------
# Import
# ---------------------------------------------------------------------------------------

_VERSION = re.compile(r"cci(pra|oph)-v(\d{2,3})r(\d+)-f(\d+)", re.I)
_ISO = re.compile(r"(20\d\d)[-_]?(0[1-9]|1[0-2])[-_]?(0[1-9]|[12]\d|3[01])")
_US = re.compile(r"(0[1-9]|1[0-2])[-_](0[1-9]|[12]\d|3[01])[-_](20\d\d)")
_QUARTER = re.compile(r"(20\d\d)\s*[-_ ]?q([1-4])|q([1-4])\s*[-_ ]?(20\d\d)", re.I)


def ncci_version(name: str) -> tuple[str, str] | None:
    """``ccipra-v321r0-f1.txt`` -> ("32.1", "2026Q2").

    CMS numbers NCCI releases <major>.<minor>: the major number is the year less 1994 and
    the minor number the quarter less one (version 32.0 took effect on 2026-01-01). The
    quarter is derived from that numbering; ``--quarter`` overrides it.
    """
    match = _VERSION.search(name)
    if not match:
        return None
    digits = match.group(2)
    major, minor = int(digits[:-1]), int(digits[-1])
    if not 0 <= minor <= 3:
        return f"{major}.{minor}", ""
    return f"{major}.{minor}", f"{1994 + major}Q{minor + 1}"


def _quarter_start(quarter: str) -> str:
    """``2026Q2`` -> ``2026-04-01``."""
    return f"{quarter[:4]}-{3 * int(quarter[-1]) - 2:02}-01"


def _quarter_of_name(name: str) -> str | None:
    for pattern, order in ((_ISO, (0, 1)), (_US, (2, 0))):
        match = pattern.search(name)
        if match:
            year, month = int(match.group(order[0] + 1)), int(match.group(order[1] + 1))
            return f"{year}Q{(month - 1) // 3 + 1}"
    match = _QUARTER.search(name)
    if match:
        year = match.group(1) or match.group(4)
        quarter = match.group(2) or match.group(3)
        return f"{year}Q{quarter}"
    return None


class ImportReport(msgspec.Struct):
    """What an import did."""

    folder: Path
    manifest: dict[str, Any]
    malformed: list[str]
    warnings: list[str]

    def text(self) -> str:
        """A summary for people."""
        m = self.manifest
        lines = [f"imported NCCI data set into {self.folder}",
                 f"  quarter {m.get('quarter') or 'unknown'}"
                 + (f" (NCCI version {m['version']})" if m.get("version") else "")
                 + f"; quarter from {m.get('quarter_from')}",
                 f"  filter: {m['filter']}"]
        for item in m["ptp"]["files"]:
            lines.append(f"  PTP {item['name']}: {item['rows']} rows, kept {item['kept']}")
        mue = m["mue"]["file"]
        lines.append(f"  MUE {mue['name']}: {mue['rows']} rows, kept {mue['kept']}")
        if m.get("aoc"):
            aoc = m["aoc"]["file"]
            lines.append(f"  AOC {aoc['name']}: {aoc['rows']} rows, kept {aoc['kept']} "
                         f"(quarter {m['aoc'].get('quarter') or 'unknown'})")
        else:
            lines.append("  AOC: none given (--aoc): addon-without-primary keeps the catalog's primaries")
        if self.malformed:
            lines.append("  skipped " + _malformed_text(self.malformed).replace("\n", "\n  "))
        lines.extend(f"  warning: {w}" for w in self.warnings)
        return "\n".join(lines) + "\n"


def import_ncci(ptp_files: Iterable[str | Path], mue_file: str | Path, into: str | Path | None = None,
                *, keep_all: bool = False, quarter: str | None = None, skip_malformed: bool = False,
                known_codes: set[str] | None = None, aoc_file: str | Path | None = None) -> ImportReport:
    """Validate CMS's practitioner PTP, MUE and (optionally) add-on code edit files, as text,
    .xlsx or the .zip archives CMS publishes, and store them where checks read them."""
    ptp_paths = [Path(p) for p in ptp_files]
    mue_path = Path(mue_file)
    aoc_path = Path(aoc_file) if aoc_file is not None else None
    if not ptp_paths:
        raise PainAspError("import-ncci: expected at least one PTP file (--ptp)")
    for path in [*ptp_paths, mue_path, *([aoc_path] if aoc_path else [])]:
        if not path.is_file():
            raise PainAspError(f"{path}: no such file")
    if quarter is not None and not re.fullmatch(r"20\d\dQ[1-4]", quarter):
        raise PainAspError(f"--quarter {quarter}: expected a quarter such as 2026Q1")
    warnings: list[str] = []
    version, version_quarter = _versions(ptp_paths, warnings)
    mue_quarter = _quarter_of_name(mue_path.name)
    if version_quarter and mue_quarter and version_quarter != mue_quarter:
        warnings.append(f"the PTP files are for {version_quarter} (NCCI version {version}) but the MUE "
                        f"file name says {mue_quarter}: check that both come from the same release")
    if quarter:
        chosen, chosen_from = quarter, "--quarter"
    elif version_quarter:
        chosen, chosen_from = version_quarter, f"the PTP file names (NCCI version {version})"
    elif mue_quarter:
        chosen, chosen_from = mue_quarter, "the MUE file name"
    else:
        chosen, chosen_from = None, "nowhere (name the quarter with --quarter)"
        warnings.append("no quarter found in the file names; name it with --quarter")

    if keep_all:
        known: set[str] | None = None
    elif known_codes is not None:
        known = set(known_codes)
    else:
        from .kb import code_catalog

        known = set(code_catalog())
    malformed: list[str] = []
    kept_ptp: list[PtpRow] = []
    ptp_info = []
    for path in ptp_paths:
        parsed = _parse(path, "ptp", known)
        malformed.extend(parsed.malformed)
        kept = [row for _, row in parsed.ptp]
        kept_ptp.extend(kept)
        ptp_info.append({"name": path.name, "sha256": _sha256(path), "rows": parsed.rows,
                         "kept": len(kept), "preamble_lines": parsed.preamble,
                         "tables": [label.split("!")[-1] for label in parsed.tables]})
    parsed_mue = _parse(mue_path, "mue")
    malformed.extend(parsed_mue.malformed)
    mue_rows = [row for _, row in parsed_mue.mue]
    kept_mue = [r for r in mue_rows if known is None or r.code in known]
    aoc_section, kept_aoc = None, None
    if aoc_path is not None:
        parsed_aoc = _parse(aoc_path, "aoc")
        malformed.extend(parsed_aoc.malformed)
        aoc_rows = [row for _, row in parsed_aoc.aoc]
        kept_aoc = [r for r in aoc_rows if known is None or r.addon in known]
        aoc_quarter = quarter or _quarter_of_name(aoc_path.name) or next(
            (q for q in (_quarter_of_name(t) for t in parsed_aoc.tables) if q), None) or chosen
        aoc_section = {"file": {"name": aoc_path.name, "sha256": _sha256(aoc_path), "rows": len(aoc_rows),
                                "kept": len(kept_aoc), "tables": [t.split("!")[-1] for t in parsed_aoc.tables]},
                       "rows": len(kept_aoc), "quarter": aoc_quarter}
    if malformed and not skip_malformed:
        raise PainAspError("import-ncci: nothing was imported; " + _malformed_text(malformed)
                           + "\n(fix the rows, or pass --skip-malformed to import the others)")
    if not kept_ptp and not kept_mue:
        raise PainAspError("import-ncci: no row touches a code of the knowledge base; nothing was "
                           "imported (pass --all to keep every row)")
    folder = Path(into) if into else default_dir()
    manifest = {
        "format": 1,
        "data_set": "CMS NCCI practitioner PTP edits and MUEs",
        "quarter": chosen,
        "quarter_from": chosen_from,
        "version": version,
        "imported": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "filter": "all rows" if known is None else f"rows touching the {len(known)} codes of the knowledge base catalog",
        "ptp": {"files": ptp_info, "rows": len(kept_ptp)},
        "mue": {"file": {"name": mue_path.name, "sha256": _sha256(mue_path), "rows": len(mue_rows),
                         "kept": len(kept_mue), "preamble_lines": parsed_mue.preamble,
                         "tables": [t.split("!")[-1] for t in parsed_mue.tables]},
                "rows": len(kept_mue)},
        "malformed_skipped": len(malformed),
    }
    if aoc_section is not None:
        manifest["aoc"] = aoc_section
    _write(folder, kept_ptp, kept_mue, manifest, kept_aoc)
    return ImportReport(folder, manifest, malformed, warnings)


def _versions(paths: list[Path], warnings: list[str]) -> tuple[str | None, str | None]:
    found = {}
    for path in paths:
        name = next((n for n in _names(path) if _VERSION.search(n)), path.name)
        match = _VERSION.search(name)
        if match and match.group(1).lower() == "oph":
            raise PainAspError(f"{path}: this is the hospital outpatient PTP file (ccioph); pain-asp "
                               "checks professional claims: import the practitioner file (ccipra-...)")
        info = ncci_version(name)
        if info is not None:
            found[path.name] = info
        else:
            warnings.append(f"{path.name}: not named like CMS's practitioner PTP files "
                            "(ccipra-v<version>r0-f<n>.txt); its version is unknown")
    versions = {v for v in found.values()}
    if len(versions) > 1:
        listed = ", ".join(f"{name} = {v[0]}" for name, v in sorted(found.items()))
        raise PainAspError(f"import-ncci: the PTP files come from different NCCI versions ({listed}); "
                           "import the files of one quarter together")
    if not versions:
        return None, None
    version, quarter = versions.pop()
    return version, quarter or None


def _names(path: Path) -> list[str]:
    """The file's name, and the names of its members when it is a .zip archive."""
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return [path.name] + [Path(n).name for n in archive.namelist()]
    except (OSError, zipfile.BadZipFile):
        pass
    return [path.name]


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write(folder: Path, ptp: list[PtpRow], mue: list[MueRow], manifest: dict[str, Any],
           aoc: list[AocRow] | None = None) -> None:
    """Write the tables and then the manifest, each through a temporary file and a rename."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MANIFEST).unlink(missing_ok=True)   # an interrupted import leaves no manifest
        ptp_rows = sorted(ptp, key=lambda r: (r.column1, r.column2, r.effective))
        ptp_text = [PTP_HEADER] + [
            "\t".join([r.column1, r.column2, "*" if r.prior_1996 else "", str(r.effective),
                       "*" if r.deletion == OPEN_END else str(r.deletion), str(r.indicator),
                       _clean(r.rationale)])
            for r in ptp_rows]
        mue_text = [MUE_HEADER] + [
            "\t".join([r.code, str(r.value), str(r.mai), _clean(r.rationale)])
            for r in sorted(mue, key=lambda r: r.code)]
        body = "\n".join(ptp_text) + "\n"
        ranges: dict[str, list[int]] = {}
        offset = len(ptp_text[0].encode("utf-8")) + 1
        for row, line in zip(ptp_rows, ptp_text[1:]):
            end = offset + len(line.encode("utf-8")) + 1
            ranges.setdefault(row.column1, [offset, end])[1] = end
            offset = end
        (folder / PTP_INDEX).unlink(missing_ok=True)
        _replace(folder / PTP_FILE, body)
        _replace(folder / PTP_INDEX, json.dumps({"ptp_size": len(body.encode("utf-8")), "rows": len(ptp_rows),
                                                 "codes": ranges}, separators=(",", ":")))
        _replace(folder / MUE_FILE, "\n".join(mue_text) + "\n")
        (folder / AOC_FILE).unlink(missing_ok=True)
        if aoc is not None:
            aoc_text = [AOC_HEADER] + [
                "\t".join([r.addon, "CCCCC" if r.primary == CONTRACTOR else r.primary, str(r.edit_type),
                           str(r.effective), "*" if r.deletion == OPEN_END else str(r.deletion)])
                for r in sorted(aoc, key=lambda r: (r.addon, r.primary, r.effective))]
            _replace(folder / AOC_FILE, "\n".join(aoc_text) + "\n")
        _replace(folder / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    except OSError as exc:
        raise PainAspError(f"{folder}: could not write the NCCI tables ({exc.strerror})") from None


def _clean(text: str) -> str:
    return " ".join(text.replace("\t", " ").split())


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------
# Status
# ---------------------------------------------------------------------------------------

_TABLE_WORDS = {"ptp": "PTP", "mue": "MUE", "aoc": "add-on code"}


def starter_notice(starter: list[str]) -> str:
    """One line saying which NCCI tables in use are not CMS's (empty when all are)."""
    if not starter:
        return ""
    names = ", ".join(_TABLE_WORDS[kind] for kind in starter)
    return (f"NCCI data: the {names} table(s) in use are not CMS's (starter rows shipped with pain-asp), "
            "so edits CMS would apply may be missing; import CMS's files with pain-asp data import-ncci "
            "(pain-asp data status tells what is missing)\n")

def status(directory: str | Path | None = None) -> dict[str, Any]:
    """Which NCCI data set a check uses (or the one in ``directory``), as a mapping."""
    folder = resolve_dir(directory)
    shipped = folder.resolve() == (kb_dir() / "data").resolve()
    if not (folder / PTP_FILE).is_file() or not (folder / MUE_FILE).is_file():
        raise PainAspError(f"{folder}: no NCCI tables ({PTP_FILE}, {MUE_FILE})")
    tables = load_tables(str(folder))
    manifest = tables.manifest or {}
    if shipped:
        kind = "shipped starter tables (rows from public secondary sources; unverified)"
    elif manifest:
        kind = "imported CMS data set"
    else:
        kind = "NCCI tables in CMS layout (no import manifest)"
    chosen = ("--ncci-dir" if directory else
              f"the imported data set (${DATA_ENV} or the user data folder)" if not shipped else
              "the tables shipped with pain-asp (no data set imported)")
    return {
        "folder": str(folder),
        "kind": kind,
        "chosen_by": chosen,
        "quarter": manifest.get("quarter"),
        "quarter_from": manifest.get("quarter_from"),
        "version": manifest.get("version") or _version_in_names(manifest),
        "imported": manifest.get("imported"),
        "filter": manifest.get("filter"),
        "ptp_rows": tables.ptp_count,
        "mue_rows": tables.mue_count,
        "sources": [f["name"] for f in manifest.get("ptp", {}).get("files", [])]
        + ([manifest["mue"]["file"]["name"]] if manifest.get("mue") else []),
        "malformed_skipped": manifest.get("malformed_skipped", 0),
        "tables": {kind: info["name"] for kind, info in tables.data_sets().items()},
        "missing": [f"CMS's {_TABLE_WORDS[kind]} table" for kind in tables.starter()],
    }


def _version_in_names(manifest: dict[str, Any]) -> str | None:
    for item in manifest.get("ptp", {}).get("files", []):
        info = ncci_version(item.get("name", ""))
        if info:
            return info[0]
    return None


def status_text(info: dict[str, Any]) -> str:
    """:func:`status` for people."""
    lines = [f"NCCI data in use: {info['kind']}", f"  folder: {info['folder']}",
             f"  chosen by: {info['chosen_by']}"]
    if info.get("quarter") or info.get("version"):
        lines.append(f"  quarter: {info.get('quarter') or 'unknown'}"
                     + (f" (NCCI version {info['version']})" if info.get("version") else "")
                     + (f"; from {info['quarter_from']}" if info.get("quarter_from") else ""))
    if info.get("imported"):
        lines.append(f"  imported: {info['imported']}")
    if info.get("filter"):
        lines.append(f"  filter: {info['filter']}")
    lines.append(f"  rows: {info['ptp_rows']} PTP, {info['mue_rows']} MUE")
    if info.get("sources"):
        lines.append("  from: " + ", ".join(info["sources"]))
    if info.get("malformed_skipped"):
        lines.append(f"  malformed rows skipped at import: {info['malformed_skipped']}")
    for kind, name in info.get("tables", {}).items():
        lines.append(f"  {_TABLE_WORDS[kind]} table: {name}")
    if info.get("missing"):
        lines.append("  missing: " + ", ".join(info["missing"]) + " (checks say so; --require-data fails them)")
    return "\n".join(lines) + "\n"
