"""CMS's NCCI downloads as they come: the tables inside .zip archives, .xlsx sheets, text.

:func:`table_texts` turns one file given to ``pain-asp data import-ncci`` into the text of the
tables it holds, one ``(label, text)`` pair per table: a .zip archive is opened and the
members of the asked kind chosen (PTP: the ``ccipra-...txt`` files; MUE: the .csv, else the
.xlsx; add-on codes: the .xlsx, else a delimited text file); an .xlsx sheet becomes
tab-separated lines. :func:`guess_kind` reads a table's column header to tell a file given
under the wrong option (the MUE table as ``--ptp``) before any row is judged.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import PainAspError

if TYPE_CHECKING:  # zipfile itself is imported where a file starts like an archive
    import zipfile

__all__ = ["KINDS", "table_texts", "guess_kind", "wrong_kind"]

KINDS = {"ptp": "PTP", "mue": "MUE", "aoc": "add-on code (AOC)"}
_OPTION = {"ptp": "--ptp", "mue": "--mue", "aoc": "--aoc"}
# Preferred member types in a CMS archive, best first.
_PREFERRED = {"ptp": (".txt", ".xlsx", ".csv"), "mue": (".csv", ".xlsx", ".txt"), "aoc": (".xlsx", ".txt", ".csv")}
_MAX_MEMBER = 1 << 30   # 1 GiB: a full PTP text file is about 100 MB


def table_texts(path: Path, kind: str) -> list[tuple[str, str]]:
    """The tables of ``kind`` in ``path`` as ``(label, text)``; a wrong file raises PainAspError."""
    try:
        with open(path, "rb") as handle:
            archive = handle.read(2) == b"PK"   # a zip archive, or an .xlsx workbook (one too)
        if archive and _is_archive(path) and not _is_workbook(path):
            return _from_zip(path, kind)
        data = path.read_bytes()
    except OSError as exc:
        raise PainAspError(f"{path}: a readable file ({exc.strerror})") from None
    if path.suffix.lower() == ".xlsx" or data[:2] == b"PK":
        return [(str(path), _xlsx_text(data, str(path)))]
    return [(str(path), _decode(data, str(path)))]


def _is_archive(path: Path) -> bool:
    """A zip archive (zipfile is imported only for a file that starts like one: the tables a
    check reads are text, and importing zipfile cost every check about 3 ms)."""
    import zipfile

    return zipfile.is_zipfile(path)


def _is_workbook(path: Path) -> bool:
    """An .xlsx workbook is a zip archive too: it holds xl/workbook.xml."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return "xl/workbook.xml" in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def _from_zip(path: Path, kind: str) -> list[tuple[str, str]]:
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir() and "__MACOSX" not in m.filename]
            chosen = _choose(members, kind)
            if not chosen:
                listed = ", ".join(Path(m.filename).name for m in members) or "nothing"
                raise PainAspError(f"{path}: a .zip archive holding no {KINDS[kind]} table "
                                   f"(it holds {listed}); is it the right download for {_OPTION[kind]}?")
            out = []
            for member in chosen:
                if member.file_size > _MAX_MEMBER:
                    raise PainAspError(f"{path}: {member.filename} is larger than 1 GiB unpacked")
                label = f"{path}!{member.filename}"
                data = archive.read(member)
                text = _xlsx_text(data, label) if member.filename.lower().endswith(".xlsx") else _decode(data, label)
                out.append((label, text))
            return out
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise PainAspError(f"{path}: a damaged .zip archive ({exc})") from None


def _choose(members: list[zipfile.ZipInfo], kind: str) -> list[zipfile.ZipInfo]:
    """The members holding the table: every PTP text file; one MUE or AOC table, by type."""
    tables = [m for m in members if Path(m.filename).suffix.lower() in _PREFERRED[kind]
              and "readme" not in m.filename.lower()]
    for suffix in _PREFERRED[kind]:
        found = sorted((m for m in tables if m.filename.lower().endswith(suffix)), key=lambda m: m.filename)
        if found:
            return found if kind == "ptp" else found[:1]
    return []


def _decode(data: bytes, label: str) -> str:
    if b"\x00" in data[:4096] or data[:5] == b"%PDF-":
        raise PainAspError(f"{label}: not a text table (a binary file: give the .txt, .csv, .xlsx or "
                           "the .zip archive CMS publishes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # CMS's text files are Windows-1252/Latin-1


def _xlsx_text(data: bytes, label: str) -> str:
    """The first sheet of a workbook as tab-separated lines (dates as YYYYMMDD)."""
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds on a damaged or foreign file
        raise PainAspError(f"{label}: not a readable .xlsx workbook ({type(exc).__name__})") from None
    try:
        sheet = book.worksheets[0]
        lines = ["\t".join(_cell(value) for value in row) for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.strftime("%Y%m%d")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return " ".join(str(value).split())


def guess_kind(text: str) -> str | None:
    """``ptp``, ``mue`` or ``aoc`` from a table's column header in its first lines, else None."""
    for line in text.splitlines()[:60]:
        names = line.lower().replace('"', "")
        if "column 1" in names and "column 2" in names:
            return "ptp"
        if "add-on code" in names or "add on code" in names:
            return "aoc"
        if "mue" in names and ("value" in names or "adjudication" in names):
            return "mue"
    return None


def wrong_kind(label: str, text: str, kind: str) -> None:
    """Raise PainAspError when ``text``'s header says it is another kind of table than ``kind``."""
    guess = guess_kind(text)
    if guess is not None and guess != kind:
        raise PainAspError(f"{label}: this is the {KINDS[guess]} table (its column header says so), "
                           f"given as {_OPTION[kind]}: give it as {_OPTION[guess]}")
