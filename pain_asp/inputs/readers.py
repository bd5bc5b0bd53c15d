"""Read claims from JSON, YAML and JSON Lines files into validated models (docs/claim-format.md, docs/architecture.md).

A file holds one claim, a list of claims, or JSON Lines (one claim per line). Reading is
streamed: every claim comes back as a :class:`Record`, in input order, either with a valid
:class:`~pain_asp.models.Claim` or with the errors that explain why it is not one. A bad
claim never stops the others.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError
from .files import CLAIM_SUFFIXES, is_x12
from .records import BOM, Record, Unsplittable, cross_check, json_problem, load_json, validate_record

__all__ = ["WHOLE_FILE", "file_records", "read_claims", "record_from_line", "records_from_text", "split_claims",
           "splittable"]

# Input limits (docs/claim-format.md, "Input limits"). A claim is a few kilobytes; a JSON or
# YAML file is read whole, so batches beyond this size belong in JSON Lines, read as a stream.
MAX_FILE_BYTES = 64 << 20
MAX_LINE_BYTES = 1 << 20
_BLOCK_BYTES = 1 << 20  # JSON Lines are read this much at a time


def read_claims(
    paths: Iterable[str | Path], known_payers: Iterable[str] | None = None
) -> Iterator[Record]:
    """Yield a record for every claim in ``paths``, in order; directories are walked sorted."""
    payers = set(known_payers) if known_payers is not None else None
    seen_ids: dict[str, str] = {}
    for path in _expand(paths):
        for record in file_records(path):
            if record.claim is not None:
                cross_check(record, payers, seen_ids)
            record.line_at = None
            yield record


def file_records(path: Path) -> Iterator[Record]:
    """The records of one file as :func:`read_claims` reads it, before the batch's checks
    (:func:`pain_asp.inputs.records.cross_check`); a batch's worker reads a YAML file with it."""
    read = 0
    for record in _read_file(path):
        read += 1
        yield record
    if not read:  # nothing is silently empty (docs/architecture.md)
        yield Record(str(path), 1, errors=[InputError(str(path), None, "", "", _NO_CLAIMS)])


def records_from_text(
    text: str, name: str, kind: str, known_payers: Iterable[str] | None = None
) -> Iterator[Record]:
    """Yield a record for every claim of ``text`` held in memory (an HTTP request body), as
    :func:`read_claims` reads a file of that ``kind``: json, jsonl, yaml or x12 (an 837P)."""
    payers = set(known_payers) if known_payers is not None else None
    seen_ids: dict[str, str] = {}
    if kind == "x12":
        from .x12 import records_from_text as x12_records

        records: Iterable[Record] = x12_records(text, name)
    elif kind == "jsonl":
        records = _read_json_lines(name, io.BytesIO(text.encode("utf-8")))
    elif kind == "json":
        records = _read_json(name, text.removeprefix(BOM))
    else:
        records = _read_yaml(name, text.removeprefix(BOM))
    for record in records:
        if record.claim is not None:
            cross_check(record, payers, seen_ids)
        yield record


_NO_CLAIMS = "at least one claim: no claim was read from it"
_NOT_CLAIMS = ("not a claim file: neither an X12 837P (an ISA segment at the start) nor named "
               ".json, .jsonl, .ndjson, .yaml or .yml")


def _expand(paths: Iterable[str | Path]) -> Iterator[Path]:
    """The files to read; a folder's files sorted, each file it skips named on stderr, and the
    folder itself when it has no claim file (reading it then says so)."""
    for item in paths:
        path = Path(item)
        if not path.is_dir():
            yield path
            continue
        found = False
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            if file.suffix.lower() in CLAIM_SUFFIXES or is_x12(file):
                found = True
                yield file
            else:
                from ..render.results import visible  # a file name may hold terminal control

                sys.stderr.write(f"pain-asp: skipped {visible(str(file))}: {_NOT_CLAIMS}\n")
        if not found:
            yield path


def _read_file(path: Path) -> Iterator[Record]:
    name = str(path)
    suffix = path.suffix.lower()
    if path.is_dir():
        yield Record(name, 1, errors=[InputError(
            name, None, "", "", "a folder with at least one claim file (X12 837P, .json, .jsonl, "
            ".ndjson, .yaml or .yml); it has none")])
        return
    try:
        if path.stat().st_size == 0:
            return  # read_claims says no claim was read
    except OSError:
        pass  # opening it below names the problem
    if is_x12(path):
        from .x12 import read_x12

        yield from read_x12(path)
        return
    try:
        handle = path.open("rb")
    except OSError as exc:
        yield Record(name, 1, errors=[InputError(name, None, "", "", f"a readable file ({exc.strerror})")])
        return
    with handle:
        if suffix not in CLAIM_SUFFIXES:
            yield Record(name, 1, errors=[InputError(name, None, "", "", _NOT_CLAIMS)])
            return
        if suffix in (".jsonl", ".ndjson"):
            yield from _read_json_lines(name, handle)
            return
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        yield Record(name, 1, errors=[InputError(
            name, None, "", "", f"a file of at most {MAX_FILE_BYTES:,} bytes (use JSON Lines for "
            "larger batches: one claim per line, read as a stream)")])
        return
    try:
        text = data.decode("utf-8").removeprefix(BOM)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        yield Record(name, 1, errors=[InputError(name, None, "", "", "UTF-8 text", line=line)])
        return
    yield from (_read_json if suffix == ".json" else _read_yaml)(name, text)


def _read_json(name: str, text: str) -> Iterator[Record]:
    try:
        document = load_json(text)
    except (ValueError, RecursionError) as exc:
        yield from _each_claim(name, text, exc)
        return
    items = document if isinstance(document, list) else [document]
    for position, raw in enumerate(items, start=1):
        yield validate_record(raw, name, position)


def _each_claim(name: str, text: str, exc: Exception) -> list[Record]:
    """The records of a JSON file that :func:`load_json` refused (``exc``): when it is an array
    of valid JSON whose trouble is inside a claim (a repeated key, a number too long), each
    claim on its own, so that one bad claim does not stop the others; else the error of the
    whole file (invalid JSON; nesting too deep, where Python's reader stops depends on its
    stack; half a surrogate pair, which msgspec does not cut apart)."""
    elements = None if isinstance(exc, (json.JSONDecodeError, RecursionError)) else _array_elements(
        text.encode("utf-8", "surrogatepass"))
    if elements:
        try:
            return [record_from_line(name, position, 0, element)
                    for position, element in enumerate(elements, start=1)]
        except Unsplittable:  # an element that Python's reader refuses, or nests too deep
            pass
    return [Record(name, 1, errors=[InputError(name, None, "", "", json_problem(exc))])]


def _read_yaml(name: str, text: str) -> Iterator[Record]:
    """One record per claim; a claim that breaks a limit or repeats a key is that claim's error."""
    from .yamlsafe import YAMLError, check_limits, compose_all, construct, expectation, line_of

    try:
        documents = list(compose_all(text))
    except YAMLError as exc:
        expected, line = expectation(exc, text)
        yield Record(name, 1, errors=[InputError(name, None, "", "", expected, line=line)])
        return
    position = 0
    for document in documents:
        if document.tag.endswith(":null"):
            continue
        items = document.value if document.tag.endswith(":seq") else [document]
        for item in items:
            position += 1
            try:
                check_limits(item)
                raw = construct(item)
            except YAMLError as exc:
                expected, line = expectation(exc, text)
                yield Record(name, position, errors=[InputError(
                    name, None, "", "", expected, line=line or item.start_mark.line + 1)])
                continue
            yield validate_record(raw, name, position, lambda keys, item=item: line_of(item, keys))


def _read_json_lines(name: str, handle: Any) -> Iterator[Record]:
    """One record per non-blank line of a binary handle; a bad line is an error record."""
    for item in _json_lines(name, handle):
        yield item if isinstance(item, Record) else record_from_line(*item)


def splittable(paths: Iterable[str | Path]) -> bool:
    """True when every path is a regular claim file (JSON Lines, JSON, YAML or X12 837P):
    :func:`split_claims` gives its claims, or for YAML the file whole, without parsing them."""
    for item in paths:
        path = Path(item)
        if not path.is_file() or path.suffix.lower() not in CLAIM_SUFFIXES and not is_x12(path):
            return False
    return True


# A YAML file is read whole by one worker (its anchors and aliases may reach across claims):
# split_claims gives it as a piece with this line number, and an estimate of its claims.
WHOLE_FILE = -1
_YAML_BYTES_PER_CLAIM = 500  # the estimate's divisor: a claim of a few lines is some 400-900 bytes


def split_claims(paths: Iterable[str | Path]) -> Iterator[tuple[Any, ...] | Record]:
    """The claims of JSON Lines, JSON, YAML and 837P files (:func:`splittable`), unparsed and
    in order: each as ``(file, position, line number, bytes)`` for :func:`record_from_line`
    (line number 0 for an element of a JSON array, whose records name no line), an 837P's
    transaction sets as ``(file, first claim's position, ST's segment number, bytes, [],
    claims)`` for :func:`pain_asp.inputs.x12.records_from_piece`, a YAML file as ``(file, 1,
    WHOLE_FILE, b"", [], an estimate of its claims)`` for :func:`file_records`, or, where
    :func:`read_claims` gives an error record without parsing anything (a file that cannot be
    opened or holds no claim, an over-long line), that record. Raises :class:`Unsplittable`
    for a JSON file that is not an array of claims of valid JSON text, or an 837P that does
    not cut apart cleanly (:func:`pain_asp.inputs.x12.split_x12`)."""
    for path in paths:
        name = str(path)
        if is_x12(Path(path)):
            from .x12 import split_x12

            for name, first, st_position, text, claims in split_x12(path):
                yield name, first, st_position, text, [], claims
            continue
        if Path(path).suffix.lower() in (".yaml", ".yml"):
            yield name, 1, WHOLE_FILE, b"", [], max(1, Path(path).stat().st_size // _YAML_BYTES_PER_CLAIM)
            continue
        read = 0
        try:
            handle = Path(path).open("rb")
        except OSError as exc:
            yield Record(name, 1, errors=[InputError(name, None, "", "", f"a readable file ({exc.strerror})")])
            continue
        with handle:
            items = _json_lines(name, handle) if Path(path).suffix.lower() != ".json" else _json_array(name, handle)
            for item in items:
                read += 1
                yield item
        if not read:
            yield Record(name, 1, errors=[InputError(name, None, "", "", _NO_CLAIMS)])


def _json_array(name: str, handle: Any) -> Iterator[tuple[str, int, int, bytes]]:
    """The elements of a JSON file holding an array, each as its JSON text, cut apart by
    msgspec (which checks the syntax without building the values)."""
    data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES or data.startswith(BOM.encode("utf-8")):
        raise Unsplittable(name)
    items = _array_elements(data)
    if not items:
        raise Unsplittable(name)
    for position, item in enumerate(items, start=1):
        yield name, position, 0, item


def _array_elements(data: bytes) -> list[bytes] | None:
    """The elements of a JSON array as their JSON text, cut apart by msgspec (which checks the
    syntax without building the values); None when ``data`` is not an array of valid JSON."""
    import msgspec

    try:
        return [bytes(item) for item in msgspec.json.decode(data, type=list[msgspec.Raw])]
    except (msgspec.DecodeError, RecursionError):  # not an array, not JSON as msgspec reads it, too deep
        return None


def _json_lines(name: str, handle: Any) -> Iterator[tuple[str, int, int, bytes] | Record]:
    """Each non-blank line of a binary handle as ``(file, position, line number, bytes)``,
    the bytes with their line end (as ``readline`` gives them); a line of more than
    :data:`MAX_LINE_BYTES` is an error record, and is never held whole. Read in blocks
    (one ``readline`` per claim costs more than the rest of the command's work on it)."""
    position = number = 0
    buffer, start = b"", 0
    while True:
        end = buffer.find(b"\n", start)
        if end < 0 and len(buffer) - start <= MAX_LINE_BYTES:
            block = handle.read(_BLOCK_BYTES)
            if block:
                buffer, start = buffer[start:] + block, 0
                continue
            end = len(buffer) - 1  # the last line, without a line end
            if end < start:
                return
        if end < 0 or end - start > MAX_LINE_BYTES:  # longer than a claim: skip to its end
            number += 1
            position += 1
            yield Record(name, position, errors=[InputError(
                name, None, "", "", f"a line of at most {MAX_LINE_BYTES:,} bytes (one claim)", line=number)])
            while end < 0:
                buffer, start = handle.read(_BLOCK_BYTES), 0
                if not buffer:
                    return
                end = buffer.find(b"\n")
            start = end + 1
            continue
        data = buffer[start:end + 1]
        start = end + 1
        number += 1
        if not data.strip():
            continue
        position += 1
        yield name, position, number, data


def record_from_line(name: str, position: int, number: int, data: bytes) -> Record:
    """Parse and validate one JSON Lines line (``number`` in file ``name``); a bad line is an
    error record. Number 0: an element of a JSON array (:func:`split_claims`), parsed inside
    brackets so that it nests as deep as in its file, validated as :func:`read_claims` does;
    one that does not parse raises :class:`Unsplittable`."""
    if not number:
        try:
            return validate_record(load_json("[" + data.decode("utf-8") + "]")[0], name, position)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise Unsplittable(name) from None
        except ValueError as exc:  # valid JSON: a repeated key, a number too long, half a surrogate pair
            return Record(name, position, errors=[InputError(name, None, "", "", json_problem(exc))])
    try:
        raw = load_json(data.decode("utf-8"))
    except UnicodeDecodeError:
        return Record(name, position, errors=[InputError(name, None, "", "", "UTF-8 text", line=number)])
    except json.JSONDecodeError as exc:
        return Record(name, position, errors=[InputError(
            name, None, "", "", f"a JSON object ({exc.msg}, column {exc.colno})", line=number)])
    except (ValueError, RecursionError) as exc:
        return Record(name, position, errors=[InputError(name, None, "", "", json_problem(exc), line=number)])
    return validate_record(raw, name, position, lambda keys, number=number: number)
