"""CMS's Medicare Coverage Database download: the covered ICD-10-CM codes of billing articles.

:func:`read_article_lists` opens the "current articles" CSV download of the MCD
(``current_article_csv.zip``, the folder it unpacks to, or a zip that holds that zip) and
returns, for each article asked for, its list of covered diagnoses: the codes of
``article_x_icd10_covered.csv`` for the article's version in ``article.csv``, with the
article's title, version and effective date, and the covered groups whose asterisk note
(``article_x_icd10_covered_group.csv``) sets a condition pain-asp does not check (a code
reported only beside another, for instance).

Only what the tables say is read: ids and codes are checked against strict patterns, and a
row that does not fit names its file, line and column, never its content.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec

from ..errors import PainAspError
from ..tokens import normalise_dx

__all__ = ["ArticleList", "read_article_lists", "article_number"]

_ARTICLE_RE = re.compile(r"^A?([0-9]{4,6})$")
_TABLES = {"article": "article.csv", "covered": "article_x_icd10_covered.csv",
           "groups": "article_x_icd10_covered_group.csv"}
_NEEDED = {"article": ("article_id", "article_version", "title", "article_eff_date"),
           "covered": ("article_id", "article_version", "icd10_code_id", "icd10_covered_group"),
           "groups": ("article_id", "article_version", "icd10_covered_group")}
_MAX_MEMBER = 1 << 30   # 1 GiB: the covered-code table of every article is far smaller


class ArticleList(msgspec.Struct, frozen=True):
    """The covered diagnoses of one billing article, as the MCD download gives them."""

    article: str                 # display id, "A56876"
    version: int
    title: str
    effective: dt.date
    codes: tuple[str, ...]       # dotted ICD-10-CM codes, sorted, no duplicates
    groups: int                  # covered groups the codes come from
    conditional_groups: tuple[int, ...]   # groups with an asterisk note (a condition not checked)

    @property
    def url(self) -> str:
        return ("https://www.cms.gov/medicare-coverage-database/view/article.aspx?"
                f"articleId={self.article[1:]}&ver={self.version}")


def article_number(text: str) -> str | None:
    """The article number of ``A56876`` or ``56876`` ("56876"), or None if it is not an article id."""
    match = _ARTICLE_RE.match(text.strip().upper())
    return match.group(1) if match else None


def read_article_lists(source: Path, numbers: list[str], today: dt.date) -> dict[str, ArticleList]:
    """The covered lists of the articles ``numbers`` (as :func:`article_number` gives them) in
    the MCD download ``source``; an article missing from it, ended by ``today``, or listing no
    covered code raises PainAspError."""
    wanted = set(numbers)
    with _tables(source) as open_table:
        versions = _current_versions(open_table, wanted, today)
        codes: dict[str, set[str]] = {n: set() for n in wanted}
        groups: dict[str, set[int]] = {n: set() for n in wanted}
        for line, row in _rows(open_table, "covered"):
            number, version = row["article_id"], row["article_version"]
            if number in versions and version == str(versions[number][0]):
                code = normalise_dx(row["icd10_code_id"])
                if code is None:
                    raise _row_error("covered", line, "icd10_code_id", "an ICD-10-CM code")
                codes[number].add(code)
                groups[number].add(_int(row["icd10_covered_group"], "covered", line, "icd10_covered_group"))
        conditional: dict[str, set[int]] = {n: set() for n in wanted}
        for line, row in _rows(open_table, "groups", optional=True):
            number, version = row["article_id"], row["article_version"]
            if (number in versions and version == str(versions[number][0])
                    and (row.get("icd10_covered_ast") or "").strip()):
                conditional[number].add(_int(row["icd10_covered_group"], "groups", line, "icd10_covered_group"))
    out = {}
    for number in numbers:
        version, title, effective = versions[number]
        if not codes[number]:
            raise PainAspError(f"{source}: article A{number} (version {version}) lists no covered "
                               "ICD-10-CM code in article_x_icd10_covered.csv: there is no list to import")
        out[number] = ArticleList(f"A{number}", version, title, effective, tuple(sorted(codes[number])),
                                  len(groups[number]), tuple(sorted(conditional[number] & groups[number])))
    return out


def _current_versions(open_table, wanted: set[str], today: dt.date) -> dict[str, tuple[int, str, dt.date]]:  # noqa: ANN001
    """Each wanted article's newest version in article.csv: (version, title, effective date)."""
    found: dict[str, tuple[int, str, dt.date, dt.date | None]] = {}
    for line, row in _rows(open_table, "article"):
        number = row["article_id"]
        if number not in wanted:
            continue
        version = _int(row["article_version"], "article", line, "article_version")
        if number in found and found[number][0] >= version:
            continue
        effective = _date(row["article_eff_date"], line, "article_eff_date")
        end_text = (row.get("article_end_date") or "").strip()
        end = _date(end_text, line, "article_end_date") if end_text else None
        title = " ".join((row["title"] or "").split())[:200]
        found[number] = (version, title, effective, end)
    missing = sorted(wanted - set(found))
    if missing:
        raise PainAspError("the MCD download has no article " + ", ".join(f"A{n}" for n in missing)
                           + " in article.csv (check the id, and that the file is the current-articles download)")
    for number, (version, _, _, end) in found.items():
        if end is not None and end < today:
            raise PainAspError(f"article A{number} (version {version}) ended on {end.isoformat()}: "
                               "its list is no longer in force, so it is not imported")
    return {n: (v, t, e) for n, (v, t, e, _) in found.items()}


@contextmanager
def _tables(source: Path) -> Iterator:
    """A function opening a table of the download by kind, whatever its packing."""
    if source.is_dir():
        def open_dir(kind: str, optional: bool = False) -> io.TextIOBase | None:
            hits = sorted(source.rglob(_TABLES[kind]))
            if not hits:
                return _absent(source, kind, optional)
            return open(hits[0], encoding="utf-8-sig", errors="replace", newline="")
        yield open_dir
        return
    import zipfile

    try:
        archive = zipfile.ZipFile(source)
    except (OSError, zipfile.BadZipFile) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a zip archive"
        raise PainAspError(f"{source}: expected the MCD current-articles download "
                           f"(current_article_csv.zip) or the folder it unpacks to ({reason})") from None
    with archive:
        inner = [m for m in archive.infolist() if m.filename.lower().endswith("current_article_csv.zip")]
        if inner and not any(m.filename.rsplit("/", 1)[-1] == _TABLES["article"] for m in archive.infolist()):
            if inner[0].file_size > _MAX_MEMBER:
                raise PainAspError(f"{source}: the archive inside is larger than 1 GiB")
            with zipfile.ZipFile(io.BytesIO(archive.read(inner[0]))) as nested:
                yield _member_opener(source, nested)
            return
        yield _member_opener(source, archive)


def _member_opener(source: Path, archive):  # noqa: ANN001, ANN202
    members = {m.filename.rsplit("/", 1)[-1]: m for m in archive.infolist() if not m.is_dir()}

    def open_member(kind: str, optional: bool = False) -> io.TextIOBase | None:
        member = members.get(_TABLES[kind])
        if member is None:
            return _absent(source, kind, optional)
        if member.file_size > _MAX_MEMBER:
            raise PainAspError(f"{source}: {_TABLES[kind]} is larger than 1 GiB")
        return io.TextIOWrapper(archive.open(member), encoding="utf-8-sig", errors="replace", newline="")
    return open_member


def _absent(source: Path, kind: str, optional: bool) -> None:
    if optional:
        return None
    raise PainAspError(f"{source}: no {_TABLES[kind]} in it; expected the MCD current-articles "
                       "download (current_article_csv.zip) or the folder it unpacks to")


def _rows(open_table, kind: str, optional: bool = False) -> Iterator[tuple[int, dict[str, str]]]:  # noqa: ANN001
    """(line number, row) of a table, column names in lower case; a missing column is an error."""
    handle = open_table(kind, optional)
    if handle is None:
        return
    import zipfile

    line = 1
    try:
        with handle:
            reader = csv.reader(handle)
            header = [name.strip().lower() for name in next(reader, [])]
            missing = [name for name in _NEEDED[kind] if name not in header]
            if missing:
                raise PainAspError(f"{_TABLES[kind]}: no column " + ", ".join(missing)
                                   + " in its header line; expected the MCD current-articles layout")
            for line, values in enumerate(reader, start=2):
                if values:
                    row = dict(zip(header, (v.strip() for v in values)))
                    row["article_id"] = article_number(row.get("article_id", "")) or ""
                    yield line, row
    except csv.Error:
        raise PainAspError(f"{_TABLES[kind]}, line {line + 1}: not a readable CSV row "
                           "(expected comma-separated fields, quotes closed)") from None
    except (OSError, EOFError, zipfile.BadZipFile):
        raise PainAspError(f"{_TABLES[kind]}: the archive member cannot be read to its end "
                           "(a damaged or truncated download)") from None


def _int(text: str, kind: str, line: int, column: str) -> int:
    if text.isascii() and text.isdigit():
        return int(text)
    raise _row_error(kind, line, column, "a whole number")


def _date(text: str, line: int, column: str) -> dt.date:
    """A date written 2024-04-01, 2024-04-01 00:00:00 or 04/01/2024."""
    text = text.strip()
    try:
        if re.match(r"^\d{4}-\d{2}-\d{2}", text):
            return dt.date.fromisoformat(text[:10])
        if re.match(r"^\d{1,2}/\d{1,2}/\d{4}$", text):
            return dt.datetime.strptime(text, "%m/%d/%Y").date()
    except ValueError:
        pass
    raise _row_error("article", line, column, "a date (YYYY-MM-DD or MM/DD/YYYY)")


def _row_error(kind: str, line: int, column: str, expected: str) -> PainAspError:
    return PainAspError(f"{_TABLES[kind]}, line {line}, column {column}: expected {expected}")
