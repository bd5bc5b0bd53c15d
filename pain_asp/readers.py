"""Read claims from JSON, YAML and JSON Lines files into validated models (SPEC §3, §11).

A file holds one claim, a list of claims, or JSON Lines (one claim per line). Reading is
streamed: every claim comes back as a :class:`Record`, in input order, either with a valid
:class:`~pain_asp.models.Claim` or with the errors that explain why it is not one. A bad
claim never stops the others.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import InputError
from .models import Claim

__all__ = ["Record", "read_claims", "validate_claim", "CLAIM_SUFFIXES"]

CLAIM_SUFFIXES = {".json", ".jsonl", ".ndjson", ".yaml", ".yml"}
_PHI_FIELDS = ("patient",)


@dataclass
class Record:
    """One input claim: where it came from, and the claim or its errors."""

    file: str
    position: int
    claim: Claim | None = None
    errors: list[InputError] = field(default_factory=list)
    claim_id: str | None = None

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
        for record in _read_file(path):
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


def _expand(paths: Iterable[str | Path]) -> Iterator[Path]:
    for item in paths:
        path = Path(item)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix.lower() in CLAIM_SUFFIXES)
        else:
            yield path


def _read_file(path: Path) -> Iterator[Record]:
    name = str(path)
    suffix = path.suffix.lower()
    try:
        handle = path.open("r", encoding="utf-8")
    except OSError as exc:
        yield Record(name, 1, errors=[InputError(name, None, "", "", f"a readable file ({exc.strerror})")])
        return
    with handle:
        if suffix in (".jsonl", ".ndjson"):
            yield from _read_json_lines(name, handle)
            return
        try:
            text = handle.read()
        except UnicodeDecodeError:
            yield Record(name, 1, errors=[InputError(name, None, "", "", "UTF-8 text")])
            return
    try:
        documents = _parse(text, suffix)
    except ValueError as exc:
        yield Record(name, 1, errors=[InputError(name, None, "", "", str(exc))])
        return
    position = 0
    for document in documents:
        items = document if isinstance(document, list) else [document]
        for raw in items:
            position += 1
            yield _validate(raw, name, position)


def _read_json_lines(name: str, handle: Any) -> Iterator[Record]:
    position = 0
    for number, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        position += 1
        try:
            raw = json.loads(text)
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
    import yaml

    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ValueError(f"valid YAML{where}: {problem}") from None


def _validate(raw: Any, file: str, position: int) -> Record:
    claim_id = _claim_id_of(raw)
    record = Record(file, position, claim_id=claim_id)
    if not isinstance(raw, dict):
        record.errors.append(
            InputError(file, claim_id, "", _show(raw), f"a claim mapping (claim {position} in the file)")
        )
        return record
    try:
        record.claim = Claim.model_validate(raw)
    except ValidationError as exc:
        record.errors.extend(_input_errors(exc, file, claim_id))
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
            record.file, claim.claim_id, "payer", claim.payer,
            f"a payer policy id ({', '.join(sorted(payers))}){suggestion}",
        ))
    first = seen_ids.get(claim.claim_id)
    if first is not None:
        errors.append(InputError(
            record.file, claim.claim_id, "claim_id", claim.claim_id,
            f"a claim id unique in the batch (already used in {first})",
        ))
    else:
        seen_ids[claim.claim_id] = f"{record.file} claim {record.position}"
    if errors:
        record.claim = None
        record.errors.extend(errors)


def _input_errors(exc: ValidationError, file: str, claim_id: str | None) -> list[InputError]:
    out = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        path = _path(loc)
        kind = error["type"]
        if kind == "extra_forbidden":
            key = str(loc[-1])
            known = _fields_at(loc[:-1])
            expected = "no such key; known keys: " + ", ".join(known) + _did_you_mean(key, known)
            out.append(InputError(file, claim_id, path, "", expected))
            continue
        value = "(not shown: patient data)" if loc and loc[0] in _PHI_FIELDS else _show(error.get("input"))
        if kind == "missing":
            value, expected = "", "a value (this field is required)"
        else:
            expected = _expected(error)
        out.append(InputError(file, claim_id, path, value, expected))
    return out


def _expected(error: dict[str, Any]) -> str:
    ctx = error.get("ctx") or {}
    kind = error["type"]
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    if kind == "literal_error" and "expected" in ctx:
        return "one of " + str(ctx["expected"])
    if kind == "too_long":
        return f"at most {ctx.get('max_length')} items"
    if kind == "too_short":
        return f"at least {ctx.get('min_length')} item(s)"
    if kind.startswith("date"):
        return "a date as YYYY-MM-DD"
    if kind == "greater_than_equal":
        return f"a number >= {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"a number <= {ctx.get('le')}"
    message = str(error.get("msg", "a valid value"))
    return message[0].lower() + message[1:]


def _path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1 if parts else 0:] = [f"{parts[-1] if parts else ''}[{item + 1}]"]
        else:
            parts.append(str(item))
    return ".".join(parts)


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = Claim
    for item in loc:
        if isinstance(item, int):
            continue
        info = model.model_fields.get(str(item))
        if info is None:
            return []
        nested = _model_in(info.annotation)
        if nested is None:
            return []
        model = nested
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _show(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=True)
    return text if len(text) <= 60 else text[:57] + "..."
