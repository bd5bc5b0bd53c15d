"""Render check results: text for people, JSON, JSON Lines and CSV for machines (docs/rules.md).

Output is deterministic: the same input gives byte-identical output. Claim text cannot take
over a terminal or a spreadsheet (docs/architecture.md): in text output every control character (line
breaks, carriage returns, ANSI escapes, bidirectional overrides) is shown as an escape
(:func:`visible`); a CSV cell that a spreadsheet would read as a formula gets a leading
single quote and a carriage return cannot split a row (:func:`csv_cell`, the OWASP
CSV-injection practice). JSON and JSON Lines keep
every value exact.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import unicodedata
from collections import Counter
from operator import attrgetter
from typing import Any, TextIO

from ..errors import PainAspError
from ..findings import Result
from ..vocabulary import FORMATS, STATUSES

__all__ = ["CSV_COLUMNS", "FORMATS", "JSON_SEPARATOR", "ResultWriter", "Style", "csv_cell", "csv_rows",
           "render_result", "result_text", "visible"]

CSV_COLUMNS = ["claim_id", "file", "position", "payer", "status", "rule", "severity", "lines",
                "codes", "carc", "rarc", "message", "source", "fix"]


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def visible(text: str) -> str:
    """``text`` with every control or format character written as an escape (``\\n``, ``\\x1b``,
    ``\\u202e``), so that claim text printed on a terminal is only ever text."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() or unicodedata.category(ch) == "Zs":  # spaces of every width stay
            out.append(ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}")
    return "".join(out)


def csv_cell(value: object) -> object:
    """A CSV cell that no spreadsheet reads as a formula: text starting with ``= + - @``, a tab or
    a carriage return gets a leading single quote. A carriage return inside becomes a line feed
    (the writer quotes a cell holding one; a bare carriage return would end the row for most
    readers). Other values are unchanged."""
    if not isinstance(value, str):
        return value
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    return "'" + text if value.startswith(_FORMULA_START) else text


class Style:
    """ANSI colour when writing to a terminal, plain text otherwise."""

    _CODES = {"deny": "31;1", "review": "33;1", "warn": "35", "info": "36", "clean": "32;1",
              "error": "31;1", "dim": "2", "bold": "1"}

    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def __call__(self, text: str, kind: str) -> str:
        """Wrap ``text`` in the colour for ``kind``."""
        if not self.colour or kind not in self._CODES:
            return text
        return f"\x1b[{self._CODES[kind]}m{text}\x1b[0m"


def csv_rows(result: Result) -> list[list[object]]:
    """The CSV rows of one result (one per finding or input error; one when clean)."""
    base = [result.claim_id or "", result.file, result.position, result.payer or "", result.status]
    if result.errors:
        rows = [base + ["input-error", "error", "", "", "", "", e["message"], "", ""] for e in result.errors]
    elif not result.findings:
        rows = [base + ["", "", "", "", "", "", "", "", ""]]
    else:
        rows = []
        for f in result.findings:
            source = "; ".join(s["document"] for s in f.source)
            rows.append(base + [f.rule, f.severity, " ".join(map(str, f.lines)), " ".join(f.codes),
                                f.carc or "", f.rarc or "", f.message, source, f.fix or ""])
    return [[csv_cell(cell) for cell in row] for row in rows]


def result_text(result: Result, style: Style) -> str:
    """The text block of one result."""
    head = f"{visible(result.claim_id or '(no claim id)')}  {style(result.status.upper(), result.status)}"
    where = style(visible(f"  {result.file} #{result.position}" + (f"  payer {result.payer}" if result.payer else "")),
                  "dim")
    lines = [head + where]
    for error in result.errors:
        lines.append(f"  {style('error', 'error')}   {visible(error['message'])}")
    width = max((len(f.rule) for f in result.findings), default=0)
    for f in result.findings:
        denial = "/".join(x for x in (f.carc and f"CARC {f.carc}", f.rarc and f"RARC {f.rarc}") if x)
        where_lines = "line " + ",".join(map(str, f.lines))
        lines.append(f"  {style(f.severity.ljust(6), f.severity)}  {f.rule.ljust(width)}  "
                     f"{where_lines}  {style(denial, 'dim')}")
        lines.append(f"          {visible(f.message)}")
        sources = "; ".join(s["document"] + (f" ({s['effective']})" if s["effective"] else "")
                            + f" [{s['confidence']}]" for s in f.source)
        lines.append(style(f"          source: {sources}", "dim"))
        if f.fix:
            lines.append(f"          fix: {visible(f.fix)}")
    return "\n".join(lines) + "\n\n"


def render_result(result: Result, fmt: str, colour: bool = False) -> str:
    """One result in ``fmt``, without the framing of the whole output.

    jsonl: the line with its newline; json: the object (the writer adds ``,`` and
    indentation); csv: its rows; text: its block. :class:`ResultWriter` puts them together
    into the whole output.
    """
    if fmt in ("jsonl", "json"):
        text = json.dumps(result.as_dict(), sort_keys=False, ensure_ascii=True)
        return text + "\n" if fmt == "jsonl" else text
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for row in csv_rows(result):
            writer.writerow(row)
        return buffer.getvalue()
    if fmt == "text":
        return result_text(result, Style(colour))
    raise PainAspError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")


# Between the entries of a JSON array, as every writer of results joins them (a worker's
# chunk is joined the same way: pain_asp.modes.batch_frames.checked_chunk).
JSON_SEPARATOR = ",\n  "


def _utf8_buffer(out: TextIO) -> Any:
    """The binary buffer under ``out`` when text written there is UTF-8 with ``\\n`` line ends
    as written (a file or standard output opened the usual way on this system), else None."""
    if not isinstance(out, io.TextIOWrapper) or os.linesep != "\n" or out.errors != "strict":
        return None
    return out.buffer if codecs.lookup(out.encoding).name == "utf-8" else None


class ResultWriter:
    """Writes rendered results (items with ``text``, from :func:`render_result`, and
    ``status``) with the framing of the whole output: the JSON brackets, the CSV header, the
    text summary."""

    def __init__(self, fmt: str, out: TextIO, colour: bool = False) -> None:
        if fmt not in FORMATS:
            raise PainAspError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
        self.fmt, self.out, self.colour = fmt, out, colour
        self.count = 0
        self.statuses: dict[str, int] = {}
        self._begun = False

    def begin(self) -> None:
        """Write what comes before the first result (done by the first write if not called)."""
        if self._begun:
            return
        self._begun = True
        if self.fmt == "json":
            self.out.write("[")
        elif self.fmt == "csv":
            csv.writer(self.out, lineterminator="\n").writerow(CSV_COLUMNS)

    def write(self, item: Any) -> None:
        """Write one result."""
        self.begin()
        if self.fmt == "json":
            self.out.write(("," if self.count else "") + "\n  " + item.text)
        else:
            self.out.write(item.text)
        self.count += 1
        self.statuses[item.status] = self.statuses.get(item.status, 0) + 1

    def write_all(self, items: list[Any]) -> None:
        """Write several results (a chunk's) with one write: the bytes of :meth:`write` on each."""
        if not items:
            return
        self.begin()
        texts = map(attrgetter("text"), items)  # no Python per result
        if self.fmt == "json":
            self.out.write(("," if self.count else "") + "\n  " + JSON_SEPARATOR.join(texts))
        else:
            self.out.write("".join(texts))
        self.count += len(items)
        statuses = self.statuses
        for status, count in Counter(map(attrgetter("status"), items)).items():
            statuses[status] = statuses.get(status, 0) + count

    def write_joined(self, text: bytes, count: int, statuses: dict[str, int]) -> None:
        """Write ``count`` results whose texts a worker joined as :meth:`write_all` joins them,
        UTF-8 encoded, with their ``statuses`` counted: the bytes go to the handle's binary
        buffer when it writes UTF-8 with this system's line ends, so they are not decoded and
        encoded again."""
        if not count:
            return
        self.begin()
        head = ("," if self.count else "") + "\n  " if self.fmt == "json" else ""
        raw = _utf8_buffer(self.out)
        if raw is None:
            self.out.write(head + text.decode("utf-8"))
        else:
            self.out.write(head)
            self.out.flush()
            raw.write(text)
        self.count += count
        for status, number in statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + number

    def end(self) -> None:
        """Write what comes after the last result (the JSON bracket, the text summary)."""
        self.begin()
        if self.fmt == "json":
            self.out.write("\n]\n")
        elif self.fmt == "text":
            style = Style(self.colour)
            parts = [f"{self.statuses[k]} {style(k, k)}" for k in STATUSES if k in self.statuses]
            self.out.write(f"{self.count} claim(s): " + ", ".join(parts) + "\n")
