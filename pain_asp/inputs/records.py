"""Validate a parsed claim into a :class:`Record`: the claim model, or the input errors that say
which field of which claim, on which line, should have been what (docs/claim-format.md, docs/architecture.md).

The readers (:mod:`pain_asp.inputs.readers`, :mod:`pain_asp.inputs.x12`) parse files and hand each
claim's mapping here; the batch check validates in its workers with the same functions.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from ..errors import InputError, describe
from ..models import EXPECTED, MAX_ID_LENGTH, ORIGINAL, Claim, ValidationError, parse_claim

__all__ = ["Record", "Unsplittable", "cross_check", "json_problem", "load_json", "validate_claim", "validate_record"]

BOM = "\ufeff"

# A JSON escape of half a surrogate pair (\ud800 to \udfff without its other half) decodes
# to a code point that is no character: it cannot be written as UTF-8 (a text result, a claim
# id hashed for a batch's index), so the claim is refused. (YAML's scanner refuses it itself.)
_UNICODE_TEXT = "Unicode text (an escape of half a surrogate pair, \\uD800 to \\uDFFF alone, is no character)"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # such an escape may be in JSON text
# Python's JSON reader stops near 1,000 levels of nesting, sooner the deeper its caller's
# stack: JSON deeper than this is refused whatever the stack, so that every path reading a
# claim (the command, a worker, report) gives it the same record.
_READ_DEPTH = 500


class Record(msgspec.Struct):
    """One input claim: where it came from, and the claim or its errors."""

    file: str
    position: int
    claim: Claim | None = None
    errors: list[InputError] = msgspec.field(default_factory=list)
    claim_id: str | None = None
    source: Any = None  # for writing the claim back: the mapping read (JSON, YAML) or its X12Context
    line_at: Callable[[list[Any]], int | None] | None = None  # key path -> line, while reading

    @property
    def ok(self) -> bool:
        """True when the claim validated."""
        return self.claim is not None


class Unsplittable(Exception):
    """A JSON or 837P file whose claims cannot be cut apart unparsed, or a part of one that
    does not parse on its own (or a YAML file a batch's workers could not read): the batch is
    read by :func:`pain_asp.inputs.readers.read_claims` instead, which gives the error records
    of the whole file."""


def validate_claim(
    raw: Any, file: str, position: int, known_payers: Iterable[str] | None = None
) -> Record:
    """Validate one raw mapping (already parsed from JSON or YAML) into a record."""
    record = validate_record(raw, file, position)
    if record.claim is not None:
        payers = set(known_payers) if known_payers is not None else None
        cross_check(record, payers, {})
    return record


class _DuplicateKey(ValueError):
    """A JSON object that names a key twice (json keeps the last one silently)."""


class _HalfSurrogate(ValueError):
    """JSON text with an escape of half a surrogate pair (see :data:`_UNICODE_TEXT`)."""


def _holds_half_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")  # refuses exactly the surrogates: no character may be half a pair
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_holds_half_surrogate(k) or _holds_half_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(map(_holds_half_surrogate, value))
    return False


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping = dict(pairs)
    if len(mapping) < len(pairs):
        raise _DuplicateKey
    return mapping


def load_json(text: str) -> Any:
    """Parse JSON text (a leading UTF-8 BOM is skipped), refusing an object that repeats a key,
    half a surrogate pair and nesting past :data:`_READ_DEPTH` levels; raises ValueError or
    RecursionError, which :func:`json_problem` puts in words."""
    value = json.loads(text.removeprefix(BOM), object_pairs_hook=_object)
    if _SURROGATE_ESCAPE.search(text) is not None and _holds_half_surrogate(value):  # rare: looked for only then
        raise _HalfSurrogate
    if text.count("[") + text.count("{") > _READ_DEPTH and _deeper_than(value, _READ_DEPTH):  # counted fast
        raise RecursionError
    return value


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
    if isinstance(exc, _HalfSurrogate):
        return _UNICODE_TEXT
    return "numbers of at most 4,300 digits"  # int() refuses longer ones (sys.get_int_max_str_digits)


def validate_record(raw: Any, file: str, position: int,
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


def cross_check(record: Record, payers: set[str] | None, seen_ids: dict[str, str]) -> None:
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
