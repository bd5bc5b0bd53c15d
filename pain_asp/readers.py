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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .models import EXPECTED, ORIGINAL, Claim, ValidationError, parse_claim

__all__ = ["Record", "read_claims", "records_from_text", "validate_claim", "CLAIM_SUFFIXES", "is_x12"]

X12_SUFFIXES = {".837", ".x12", ".edi"}  # X12 837P, read by pain_asp/x12.py
CLAIM_SUFFIXES = {".json", ".jsonl", ".ndjson", ".yaml", ".yml"} | X12_SUFFIXES
_PHI_FIELDS = ("patient",)


@dataclass
class Record:
    """One input claim: where it came from, and the claim or its errors."""

    file: str
    position: int
    claim: Claim | None = None
    errors: list[InputError] = field(default_factory=list)
    claim_id: str | None = None
    source: Any = None  # for writing the claim back: the mapping read (JSON, YAML) or its X12Context

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
    else:
        try:
            records = _validated(_parse(text, "." + kind), name)
        except ValueError as exc:
            records = [Record(name, 1, errors=[InputError(name, None, "", "", str(exc))])]
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
        try:
            text = handle.read().decode("utf-8")
        except UnicodeDecodeError:
            yield Record(name, 1, errors=[InputError(name, None, "", "", "UTF-8 text")])
            return
    try:
        documents = _parse(text, suffix)
    except ValueError as exc:
        yield Record(name, 1, errors=[InputError(name, None, "", "", str(exc))])
        return
    yield from _validated(documents, name)


def _validated(documents: list[Any], name: str) -> Iterator[Record]:
    """A record per claim of parsed documents (each a claim or a list of claims)."""
    position = 0
    for document in documents:
        items = document if isinstance(document, list) else [document]
        for raw in items:
            position += 1
            yield _validate(raw, name, position)


def _read_json_lines(name: str, handle: Any) -> Iterator[Record]:
    """One record per non-blank line of a binary handle; a bad line is an error record."""
    position = 0
    for number, data in enumerate(handle, start=1):
        if not data.strip():
            continue
        position += 1
        try:
            raw = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError:
            yield Record(name, position,
                         errors=[InputError(f"{name}:{number}", None, "", "", "UTF-8 text")])
            continue
        except json.JSONDecodeError as exc:
            yield Record(
                name, position,
                errors=[InputError(f"{name}:{number}", None, "", "", f"a JSON object ({exc.msg})")],
            )
            continue
        yield _validate(raw, name, position)


def _parse(text: str, suffix: str) -> list[Any]:
    if suffix == ".json":
        try:
            return [json.loads(text)]
        except json.JSONDecodeError as exc:
            raise ValueError(f"valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    from .yamlsafe import YAMLError, safe_load_all

    try:
        return [doc for doc in safe_load_all(text) if doc is not None]
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ValueError(f"valid YAML{where}: {problem}") from None


def _validate(raw: Any, file: str, position: int) -> Record:
    claim_id = _claim_id_of(raw)
    record = Record(file, position, claim_id=claim_id, source=raw)
    if not isinstance(raw, dict):
        record.errors.append(
            InputError(file, claim_id, "", _show(raw), f"a claim mapping (claim {position} in the file)")
        )
        return record
    try:
        record.claim = parse_claim(raw)
    except ValidationError as exc:
        record.errors.append(_input_error(str(exc), raw, file, claim_id))
    return record


def _claim_id_of(raw: Any) -> str | None:
    if isinstance(raw, dict):
        value = raw.get("claim_id")
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
    return None


def _cross_checks(record: Record, payers: set[str] | None, seen_ids: dict[str, str]) -> None:
    claim = record.claim
    assert claim is not None
    errors: list[InputError] = []
    for number, line in enumerate(claim.lines, start=1):
        for pointer in line.dx:
            if pointer > len(claim.diagnoses):
                errors.append(InputError(
                    record.file, claim.claim_id, f"lines[{number}].dx", str(pointer),
                    f"a pointer into the diagnosis list (1-{len(claim.diagnoses)})"
                    if claim.diagnoses else "a pointer into the diagnosis list, which is empty",
                ))
    if payers is not None and claim.payer not in payers:
        suggestion = _did_you_mean(claim.payer, payers)
        errors.append(InputError(
            record.file, claim.claim_id, "payer", _show(claim.payer),
            f"a payer policy id ({', '.join(sorted(payers))}){suggestion}",
        ))
    first = seen_ids.get(claim.claim_id)
    if first is not None and claim.frequency == ORIGINAL:
        errors.append(InputError(
            record.file, claim.claim_id, "claim_id", claim.claim_id,
            f"a claim id unique in the batch (already used in {first})",
        ))
    else:
        seen_ids[claim.claim_id] = f"{record.file} claim {record.position}"
    if errors:
        record.claim = None
        record.errors.extend(errors)


_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_STEP = re.compile(r"\.(\w+)|\[(\d+)\]")


def _input_error(text: str, raw: Any, file: str, claim_id: str | None) -> InputError:
    """Turn one msgspec validation message into an InputError naming field, value, expectation."""
    match = _AT.match(text)
    message = match.group("message") if match else text
    keys: list[Any] = []
    for name, index in _STEP.findall(match.group("path") or "" if match else ""):
        keys.append(name if name else int(index))
    missing = re.match(r"Object missing required field `(\w+)`", message)
    unknown = re.match(r"Object contains unknown field `(.+)`", message)
    ours = re.match(r"^(\w+)(\[\d+\])?: (.*)$", message, re.S)
    if missing:
        keys.append(missing.group(1))
        return InputError(file, claim_id, _path(keys), "", "a value (this field is required)")
    if unknown:
        key = unknown.group(1)
        known = _fields_at(keys)
        keys.append(key)
        expected = "no such key; known keys: " + ", ".join(known) + _did_you_mean(key, known)
        return InputError(file, claim_id, _path(keys), "", expected)
    if ours:
        keys.append(ours.group(1))
        if ours.group(2):
            keys.append(int(ours.group(2)[1:-1]) - 1)
        expected = ours.group(3)
    else:
        expected = _expected(message, keys)
    if keys and keys[0] in _PHI_FIELDS:
        value = "(not shown: patient data)"
    else:
        value = _show(_lookup(raw, keys))
    return InputError(file, claim_id, _path(keys), value, expected)


def _expected(message: str, keys: list[Any]) -> str:
    field = next((k for k in reversed(keys) if isinstance(k, str)), "")
    length = re.search(r"of length ([<>]=) (\d+)", message)
    if length:
        return ("at most " if length.group(1) == "<=" else "at least ") + f"{length.group(2)} item(s)"
    if message.startswith("Invalid enum value"):
        choices = _choices_at(keys)
        return "one of " + ", ".join(repr(c) for c in choices) if choices else message
    if field in EXPECTED and not isinstance(keys[-1], int):
        return EXPECTED[field]
    bound = re.search(r"Expected `(\w+)` ([<>]=) (\S+)", message)
    if bound:
        return f"a number {bound.group(2)} {bound.group(3)}"
    if "date" in message.lower():
        return "a date as YYYY-MM-DD"
    return message[0].lower() + message[1:] if message else "a valid value"


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


def _show(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=True)
    return text if len(text) <= 60 else text[:57] + "..."
