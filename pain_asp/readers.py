"""Read claims from JSON, YAML and JSON Lines files into validated models (SPEC §3, §11).

A file holds one claim, a list of claims, or JSON Lines (one claim per line). Reading is
streamed: every claim comes back as a :class:`Record`, in input order, either with a valid
:class:`~pain_asp.models.Claim` or with the errors that explain why it is not one. A bad
claim never stops the others.
"""

from __future__ import annotations

import difflib
import io
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError, describe
from .models import EXPECTED, MAX_ID_LENGTH, ORIGINAL, Claim, ValidationError, parse_claim

__all__ = ["Record", "read_claims", "records_from_text", "validate_claim", "load_json", "json_problem",
           "CLAIM_SUFFIXES", "is_x12"]

X12_SUFFIXES = {".837", ".x12", ".edi"}  # X12 837P, read by pain_asp/x12.py
CLAIM_SUFFIXES = {".json", ".jsonl", ".ndjson", ".yaml", ".yml"} | X12_SUFFIXES
# Input limits (docs/claim-format.md, "Input limits"). A claim is a few kilobytes; a JSON or
# YAML file is read whole, so batches beyond this size belong in JSON Lines, read as a stream.
MAX_FILE_BYTES = 64 << 20
MAX_LINE_BYTES = 1 << 20
_BOM = "\ufeff"


@dataclass
class Record:
    """One input claim: where it came from, and the claim or its errors."""

    file: str
    position: int
    claim: Claim | None = None
    errors: list[InputError] = field(default_factory=list)
    claim_id: str | None = None
    source: Any = None  # for writing the claim back: the mapping read (JSON, YAML) or its X12Context
    line_at: Callable[[list[Any]], int | None] | None = None  # key path -> line, while reading

    @property
    def ok(self) -> bool:
        """True when the claim validated."""
        return self.claim is not None


def read_claims(
    paths: Iterable[str | Path], known_payers: Iterable[str] | None = None
) -> Iterator[Record]:
    """Yield a record for every claim in ``paths``, in order; directories are walked sorted."""
    payers = set(known_payers) if known_payers is not None else None
    seen_ids: dict[str, str] = {}
    for path in _expand(paths):
        read = 0
        for record in _read_file(path):
            read += 1
            if record.claim is not None:
                _cross_checks(record, payers, seen_ids)
            record.line_at = None
            yield record
        if not read:  # nothing is silently empty (SPEC §11)
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
        records = _read_json(name, text.removeprefix(_BOM))
    else:
        records = _read_yaml(name, text.removeprefix(_BOM))
    for record in records:
        if record.claim is not None:
            _cross_checks(record, payers, seen_ids)
        yield record


def validate_claim(
    raw: Any, file: str, position: int, known_payers: Iterable[str] | None = None
) -> Record:
    """Validate one raw mapping (already parsed from JSON or YAML) into a record."""
    record = _validate(raw, file, position)
    if record.claim is not None:
        payers = set(known_payers) if known_payers is not None else None
        _cross_checks(record, payers, {})
    return record


_NO_CLAIMS = "at least one claim: no claim was read from it"
_NOT_CLAIMS = ("not a claim file: neither an X12 837P (an ISA segment at the start) nor named "
               ".json, .jsonl, .ndjson, .yaml or .yml")


def is_x12(path: Path) -> bool:
    """True when the file is read as X12: named .837, .x12 or .edi, or starting with an ISA
    segment (after a UTF-8 byte order mark or white space) whatever its name, as 837P
    exports are often named .txt or .dat."""
    if path.suffix.lower() in X12_SUFFIXES:
        return True
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    head = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    return head.startswith(b"ISA") and len(head) > 3 and not chr(head[3]).isalnum()


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
                sys.stderr.write(f"pain-asp: skipped {file}: {_NOT_CLAIMS}\n")
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
        text = data.decode("utf-8").removeprefix(_BOM)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        yield Record(name, 1, errors=[InputError(name, None, "", "", "UTF-8 text", line=line)])
        return
    yield from (_read_json if suffix == ".json" else _read_yaml)(name, text)


def _read_json(name: str, text: str) -> Iterator[Record]:
    try:
        document = load_json(text)
    except (ValueError, RecursionError) as exc:
        yield Record(name, 1, errors=[InputError(name, None, "", "", json_problem(exc))])
        return
    items = document if isinstance(document, list) else [document]
    for position, raw in enumerate(items, start=1):
        yield _validate(raw, name, position)


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
            yield _validate(raw, name, position, lambda keys, item=item: line_of(item, keys))


def _read_json_lines(name: str, handle: Any) -> Iterator[Record]:
    """One record per non-blank line of a binary handle; a bad line is an error record."""
    position = 0
    number = 0
    while True:
        data = handle.readline(MAX_LINE_BYTES + 1)
        if not data:
            return
        number += 1
        if len(data) > MAX_LINE_BYTES and not data.endswith(b"\n"):
            while data and not data.endswith(b"\n"):
                data = handle.readline(MAX_LINE_BYTES + 1)
            position += 1
            yield Record(name, position, errors=[InputError(
                name, None, "", "", f"a line of at most {MAX_LINE_BYTES:,} bytes (one claim)", line=number)])
            continue
        if not data.strip():
            continue
        position += 1
        try:
            raw = load_json(data.decode("utf-8"))
        except UnicodeDecodeError:
            yield Record(name, position, errors=[InputError(name, None, "", "", "UTF-8 text", line=number)])
            continue
        except json.JSONDecodeError as exc:
            yield Record(name, position, errors=[InputError(
                name, None, "", "", f"a JSON object ({exc.msg}, column {exc.colno})", line=number)])
            continue
        except (ValueError, RecursionError) as exc:
            yield Record(name, position, errors=[InputError(name, None, "", "", json_problem(exc), line=number)])
            continue
        yield _validate(raw, name, position, lambda keys, number=number: number)


class _DuplicateKey(ValueError):
    """A JSON object that names a key twice (json keeps the last one silently)."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping = dict(pairs)
    if len(mapping) < len(pairs):
        raise _DuplicateKey
    return mapping


def load_json(text: str) -> Any:
    """Parse JSON text (a leading UTF-8 BOM is skipped), refusing an object that repeats a key;
    raises ValueError or RecursionError, which :func:`json_problem` puts in words."""
    return json.loads(text.removeprefix(_BOM), object_pairs_hook=_object)


def _too_deep() -> str:
    from .yamlsafe import MAX_DEPTH  # the same bound as YAML's (yaml is imported only for YAML)

    return f"at most {MAX_DEPTH} levels of nesting (a claim needs 6)"


def json_problem(exc: Exception) -> str:
    """What the JSON text that raised ``exc`` in :func:`load_json` should have been."""
    if isinstance(exc, json.JSONDecodeError):
        return f"valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
    if isinstance(exc, RecursionError):
        return _too_deep()
    if isinstance(exc, _DuplicateKey):
        return "each key once in an object (a key is repeated)"
    return "numbers of at most 4,300 digits"  # int() refuses longer ones (sys.get_int_max_str_digits)


def _validate(raw: Any, file: str, position: int,
              line_at: Callable[[list[Any]], int | None] | None = None) -> Record:
    """Validate one parsed claim; ``line_at`` maps a field's key path to its line in the file."""
    claim_id = _claim_id_of(raw)
    record = Record(file, position, claim_id=claim_id, source=raw, line_at=line_at)
    if not isinstance(raw, dict):
        record.errors.append(InputError(file, claim_id, "", describe(raw),
                                        f"a claim mapping (claim {position} in the file)", line=_line(record, [])))
        return record
    try:
        record.claim = parse_claim(raw)
    except (ValidationError, RecursionError) as exc:
        # A claim that validates nests 6 levels at most, so depth is measured only for one
        # that does not (a valid claim is not walked twice).
        from .yamlsafe import MAX_DEPTH

        if isinstance(exc, RecursionError) or _deeper_than(raw, MAX_DEPTH):
            record.errors.append(InputError(file, claim_id, "", "", _too_deep(), line=_line(record, [])))
        else:
            record.errors.append(_input_error(str(exc), raw, record))
    return record


def _line(record: Record, keys: list[Any]) -> int | None:
    return record.line_at(keys) if record.line_at is not None else None


def _deeper_than(value: Any, limit: int) -> bool:
    """True when ``value`` nests lists and mappings more than ``limit`` levels deep."""
    stack = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        children = current.values() if isinstance(current, dict) else current
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _claim_id_of(raw: Any) -> str | None:
    if isinstance(raw, dict):
        value = raw.get("claim_id")
        if isinstance(value, (str, int)) and not isinstance(value, bool) and len(str(value)) <= MAX_ID_LENGTH:
            return str(value)
    return None


def _cross_checks(record: Record, payers: set[str] | None, seen_ids: dict[str, str]) -> None:
    claim = record.claim
    assert claim is not None
    errors: list[InputError] = []

    def error(keys: list[Any], value: str, expected: str) -> InputError:
        return InputError(record.file, claim.claim_id, _path(keys), value, expected, line=_line(record, keys))

    for number, line in enumerate(claim.lines, start=1):
        for pointer in line.dx:
            if pointer > len(claim.diagnoses):
                errors.append(error(
                    ["lines", number - 1, "dx"], str(pointer),
                    f"a pointer into the diagnosis list (1-{len(claim.diagnoses)})"
                    if claim.diagnoses else "a pointer into the diagnosis list, which is empty",
                ))
    if payers is not None and claim.payer not in payers:
        suggestion = _did_you_mean(claim.payer, payers)
        errors.append(error(["payer"], describe(claim.payer),
                            f"a payer policy id ({', '.join(sorted(payers))}){suggestion}"))
    first = seen_ids.get(claim.claim_id)
    if first is not None and claim.frequency == ORIGINAL:
        errors.append(error(["claim_id"], claim.claim_id, f"a claim id unique in the batch (already used in {first})"))
    else:
        seen_ids[claim.claim_id] = f"{record.file} claim {record.position}"
    if errors:
        record.claim = None
        record.errors.extend(errors)


_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_STEP = re.compile(r"\.(\w+)|\[(\d+)\]")
# A check of ours names its field path, 1-based (``lines[2].date: ...``, models.py).
_OURS = re.compile(r"^(\w+(?:\[\d+\])?(?:\.\w+(?:\[\d+\])?)*): (.*)$", re.S)
_OUR_STEP = re.compile(r"(\w+)|\[(\d+)\]")
_KEY_SHOWN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")
_DATE_SHAPE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TYPE_WORDS = {"int": "a whole number", "str": "text", "bool": "true or false", "float": "a number",
               "decimal": "a number", "array": "a list", "object": "a mapping", "null": "null",
               "date": "a date as YYYY-MM-DD"}


def _input_error(text: str, raw: Any, record: Record) -> InputError:
    """Turn one msgspec validation message into an InputError naming field, line, the bad
    value's shape and what is expected."""
    file, claim_id = record.file, record.claim_id
    key_at = re.match(r"^.* - at `key` in `\$([^`]*)`$", text, re.S)
    if key_at:
        keys = [name if name else int(index) for name, index in _STEP.findall(key_at.group(1))]
        return InputError(file, claim_id, _path(keys), "", "keys that are text (a key here is a number, "
                          "true/false or null)", line=_line(record, keys))
    match = _AT.match(text)
    message = match.group("message") if match else text
    keys: list[Any] = []
    for name, index in _STEP.findall(match.group("path") or "" if match else ""):
        keys.append(name if name else int(index))
    missing = re.match(r"Object missing required field `(\w+)`", message)
    unknown = re.match(r"Object contains unknown field `(.+)`", message, re.S)
    ours = _OURS.match(message)
    if missing:
        keys.append(missing.group(1))
        return InputError(file, claim_id, _path(keys), "", "a value (this field is required)",
                          line=_line(record, keys[:-1]))
    if unknown:
        key = unknown.group(1)
        known = _fields_at(keys)
        line = _line(record, keys + [key])
        if _KEY_SHOWN.match(key):
            keys.append(key)
            expected = "no such key; known keys: " + ", ".join(known) + _did_you_mean(key, known)
        else:
            expected = f"only known keys ({', '.join(known)}); got a key of {describe(key)}"
        return InputError(file, claim_id, _path(keys), "", expected, line=line)
    if ours:
        for name, index in _OUR_STEP.findall(ours.group(1)):
            keys.append(name if name else int(index) - 1)
        expected = ours.group(2)
    else:
        expected = _expected(message, keys)
    value = _lookup(raw, keys)
    if expected == EXPECTED.get("date") and isinstance(value, str) and _DATE_SHAPE.match(value):
        expected = "a real calendar date (YYYY-MM-DD; this day does not exist)"
    return InputError(file, claim_id, _path(keys), describe(value), expected, line=_line(record, keys))


def _expected(message: str, keys: list[Any]) -> str:
    field = next((k for k in reversed(keys) if isinstance(k, str)), "")
    length = re.search(r"(`str` )?of length ([<>]=) (\d+)", message)
    if length:
        unit = "characters" if length.group(1) else "item(s)"
        return ("at most " if length.group(2) == "<=" else "at least ") + f"{length.group(3)} {unit}"
    if message.startswith("Invalid enum value"):
        choices = _choices_at(keys)
        return "one of " + ", ".join(repr(c) for c in choices) if choices else "one of the documented values"
    if field in EXPECTED and not isinstance(keys[-1], int):
        return EXPECTED[field]
    bound = re.search(r"Expected `(\w+)` ([<>]=) (\S+)", message)
    if bound:
        return f"a number {bound.group(2)} {bound.group(3)}"
    kinds = re.match(r"Expected `([^`]+)`", message)
    if kinds:
        return " or ".join(_TYPE_WORDS.get(k.strip(), k.strip()) for k in kinds.group(1).split("|"))
    if "date" in message.lower():
        return EXPECTED["date"]
    return "a valid value"


def _lookup(raw: Any, keys: list[Any]) -> Any:
    value = raw
    for key in keys:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def _path(keys: list[Any]) -> str:
    """``['lines', 0, 'code']`` -> ``lines[1].code`` (list positions are 1-based)."""
    text = ""
    for key in keys:
        text += f"[{key + 1}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text


def _type_at(keys: list[Any]) -> Any:
    import typing

    current: Any = Claim
    for key in keys:
        if isinstance(key, int):
            continue
        current = _unwrap(current)
        if not (isinstance(current, type) and hasattr(current, "__struct_fields__")):
            return None
        current = typing.get_type_hints(current, include_extras=True).get(key)
    return current


def _unwrap(annotation: Any) -> Any:
    """Strip Optional, Annotated and list[...] down to the element type."""
    import typing

    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0] if len(args) == 1 else annotation
            if len(args) != 1:
                return annotation
        elif origin is list:
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation


def _fields_at(keys: list[Any]) -> list[str]:
    struct = _unwrap(_type_at(keys)) if keys else Claim
    return list(getattr(struct, "__struct_fields__", ()))


def _choices_at(keys: list[Any]) -> list[str]:
    import typing

    annotation = _unwrap(_type_at(keys))
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    return []


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
