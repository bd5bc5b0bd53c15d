"""Payer policy files (docs/payers.md): load, validate, resolve ``extends``, write facts.

A payer file sets parameters for the generic rules and per-rule severity or ``off``. It
never contains ASP. Values may be date-indexed (a list of ``{since: DATE, value: ...}``);
the one in force on a line's date of service applies, so each value becomes a fact with a
validity window ``From..To`` (YYYYMMDD). Every value carries a ``source``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import msgspec

from .errors import PayerError
from .kb import parameter_catalog
from .payer_schema import ParamSpec, encode_value, lookup_key
from .resources import payers_dir
from .vocabulary import CONFIDENCE_LEVELS, SEVERITIES

__all__ = ["Payer", "PayerRegistry", "load_registry", "Dated", "Row", "PAYER_ID_RE", "UNDATED"]

PAYER_ID_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
_TOP_KEYS = ("id", "name", "description", "extends", "example", "sources", "rules", "parameters")
_SOURCE_KEYS = ("document", "url", "confidence", "effective", "note")
_OPEN = dt.date(9999, 12, 31)
UNDATED = dt.date(1900, 1, 1)   # the start of a value given without `since`
# The field types a claim line is matched on to find the row of a value a finding is about.
_LINE_KEYS = ("code", "family", "family_or_code", "pos")


class Row(msgspec.Struct, frozen=True):
    """One row of a records or mapping value: the fields that identify it, as ``(type, ASP
    term)`` pairs of the types a claim line is matched on, and its own source (None: the
    entry's)."""

    keys: tuple[tuple[str, str], ...]
    source: dict[str, str] | None

    @property
    def label(self) -> str:
        """The row's identifying values as written in YAML (``64615, 19``)."""
        return ", ".join(value.strip('"') for _, value in self.keys)


class Dated(msgspec.Struct):
    """One value of a parameter (or rule setting) with its validity window and source; ``rows``
    are the rows of a records or mapping value (docs/payers.md, "A row's own source")."""

    since: dt.date
    until: dt.date
    value: Any
    source: dict[str, Any]
    rows: list[Row] = msgspec.field(default_factory=list)

    def row_source(self, code: str, family: str | None, pos: str) -> dict[str, Any]:
        """The source a finding on a line with ``code``, ``family`` and place of service ``pos``
        cites: the own source of the row the line finds (a row keyed by the code wins over one
        keyed by the family, a row of the line's own place of service over pos 0), else the
        entry's."""
        own = {"code": {f'"{code}"'}, "family": {family}, "family_or_code": {f'"{code}"', family},
               "pos": {str(int(pos)), "0"}}
        exact = {f'"{code}"', str(int(pos))}
        found = [(sum(value in exact for _, value in row.keys), row) for row in self.rows
                 if row.keys and all(value in own[kind] for kind, value in row.keys)]
        best = max((score for score, _ in found), default=0)
        sources = {repr(row.source): row.source for score, row in found if score == best}
        chosen = next(iter(sources.values())) if len(sources) == 1 else None
        return chosen or self.source

    @property
    def start(self) -> str | None:
        """The date the value took effect (YYYY-MM-DD), or None for a value given without one."""
        return None if self.since == UNDATED else self.since.isoformat()

    @property
    def end(self) -> str | None:
        """The last date the value is in force (YYYY-MM-DD), or None when no later entry ends it."""
        return None if self.until == _OPEN else self.until.isoformat()


class Payer(msgspec.Struct):
    """A resolved payer policy (after ``extends``)."""

    id: str
    name: str
    file: str
    description: str = ""
    example: bool = False
    extends: str | None = None
    sources: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    parameters: dict[str, list[Dated]] = msgspec.field(default_factory=dict)
    rule_severity: dict[str, list[Dated]] = msgspec.field(default_factory=dict)
    rule_off: dict[str, list[Dated]] = msgspec.field(default_factory=dict)
    specs: dict[str, ParamSpec] = msgspec.field(default_factory=dict)   # the declarations it was read with

    def in_force(self, name: str, on: dt.date) -> Dated | None:
        """The value of parameter ``name`` in force on ``on``."""
        for dated in self.parameters.get(name, []):
            if dated.since <= on <= dated.until:
                return dated
        return None

    def entry(self, name: str, start: int) -> Dated:
        """The entry of parameter ``name`` that starts on ``start`` (YYYYMMDD, as the solve
        names it in ``finding_param/4``)."""
        day = dt.date(start // 10000, start // 100 % 100, start % 100)
        return next(d for d in self.parameters[name] if d.since == day)

    def facts(self) -> str:
        """The policy as ASP facts (``payer_param/5``, ``payer_severity/5``, ``payer_rule_off/4``)."""
        return _facts(self)


class PayerRegistry:
    """All payer files of a directory (plus the shipped ones), loaded lazily and validated."""

    def __init__(self, directories: list[Path], known_rules: set[str] | None = None,
                 kb_dir: str | None = None) -> None:
        self.files: dict[str, Path] = {}
        for directory in directories:
            for path in sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml")):
                self.files[path.stem] = path
        self.known_rules = known_rules
        self.kb_dir = kb_dir   # whose parameter declarations the files are read against
        self._loaded: dict[str, Payer] = {}

    def ids(self) -> list[str]:
        """Ids of every payer file found."""
        return sorted(self.files)

    def validate(self, directories: list[str]) -> None:
        """Load every payer file of ``directories`` now, raising PayerError (file, line, key,
        expectation) for the first broken one: a run fails up front on a broken file of the
        user's instead of passing it over, or failing half-way when a claim uses it. The
        shipped files are checked by the test suite and ``rules lint``."""
        folders = {Path(d).resolve() for d in directories}
        for payer_id, path in sorted(self.files.items()):
            if path.resolve().parent in folders:
                self.get(payer_id)

    def get(self, payer_id: str) -> Payer:
        """Load and resolve one payer (raises PayerError with file and line)."""
        if payer_id not in self._loaded:
            self._loaded[payer_id] = self._load(payer_id, ())
        return self._loaded[payer_id]

    def _load(self, payer_id: str, chain: tuple[str, ...]) -> Payer:
        path = self.files.get(payer_id)
        if path is None:
            raise PayerError(chain[-1] if chain else payer_id, None, "extends",
                             f"a known payer id ({', '.join(self.ids())})")
        if payer_id in chain:
            raise PayerError(str(path), None, "extends", "no cycle (" + " -> ".join(chain + (payer_id,)) + ")")
        raw, lines = _read_yaml(path)
        parent = None
        if raw.get("extends") is not None:
            parent = self._load(str(raw["extends"]), chain + (payer_id,))
        return _resolve(raw, lines, path, parent, self.known_rules, parameter_catalog(self.kb_dir))


@lru_cache(maxsize=8)
def _registry(extra: tuple[str, ...], known: frozenset[str] | None, kb_dir: str | None) -> PayerRegistry:
    dirs = [payers_dir()] + [Path(d) for d in extra]
    return PayerRegistry(dirs, set(known) if known is not None else None, kb_dir)


def load_registry(extra_dirs: list[str] | None = None, known_rules: set[str] | None = None,
                  kb_dir: str | None = None) -> PayerRegistry:
    """The registry of shipped payers plus those in ``extra_dirs`` (later ones win), read
    against the parameters declared in the knowledge base ``kb_dir`` (default: the shipped one)."""
    return _registry(tuple(extra_dirs or ()), frozenset(known_rules) if known_rules is not None else None, kb_dir)


# --- reading ---------------------------------------------------------------------------

def _read_yaml(path: Path) -> tuple[dict[str, Any], Callable[[], dict[tuple[Any, ...], int]]]:
    """The file's data, and a function that maps key paths to line numbers (built on demand)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PayerError(str(path), None, "", f"a readable UTF-8 file ({exc})") from None
    data = _cached_load(path, text)
    if not isinstance(data, dict):
        raise PayerError(str(path), 1, "", "a mapping with id, name and parameters")

    def lines() -> dict[tuple[Any, ...], int]:
        from .inputs.yamlsafe import compose

        found: dict[tuple[Any, ...], int] = {}
        _index_lines(compose(text), (), found)
        return found

    return data, lines


def _cached_load(path: Path, text: str) -> Any:
    """The YAML data of a payer file; the data of a file read before comes from the user cache
    (:mod:`pain_asp.cache`) as JSON, which a one-claim check reads some 10 ms faster. The
    whole text is the cache's stamp, so any edit is a miss; data that JSON does not carry
    unchanged (keys that are not text, NaN) is not cached."""
    import json

    from .cache import read_cached, stamp_key, write_cached

    stamp = f"{path.resolve()}\n{text}"
    name = f"payer-{stamp_key(stamp)}.json"
    cached = read_cached(name, stamp)
    if cached is not None:
        try:
            return json.loads(cached)
        except ValueError:
            pass
    from .inputs.yamlsafe import YAMLError, expectation, safe_load

    try:
        data = safe_load(text)
    except YAMLError as exc:
        expected, line = expectation(exc, text)
        raise PayerError(str(path), line, "", expected) from None
    encoded = json.dumps(data)
    if json.loads(encoded) == data:
        write_cached(name, stamp, encoded)
    return data


def _index_lines(node: Any, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> None:
    import yaml

    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[path + (key,)] = key_node.start_mark.line + 1
            _index_lines(value_node, path + (key,), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            _index_lines(item, path + (i,), lines)


class _Where:
    """Error helper: the file and a key path, turned into file:line messages."""

    def __init__(self, path: Path, lines: Callable[[], dict[tuple[Any, ...], int]]) -> None:
        self.path, self.lines = path, lines

    def error(self, keys: tuple[Any, ...], expected: str) -> PayerError:
        line = None
        known = self.lines()
        for n in range(len(keys), 0, -1):
            if keys[:n] in known:
                line = known[keys[:n]]
                break
        shown = ".".join(str(k) for k in keys)
        return PayerError(str(self.path), line, shown, expected)


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _resolve(raw: dict[str, Any], lines: Callable[[], dict[tuple[Any, ...], int]], path: Path,
             parent: Payer | None, known_rules: set[str] | None, specs: dict[str, ParamSpec]) -> Payer:
    where = _Where(path, lines)
    for key in raw:
        if key not in _TOP_KEYS:
            raise where.error((key,), "a known key (" + ", ".join(_TOP_KEYS) + ")" + _suggest(key, list(_TOP_KEYS)))
    payer_id = raw.get("id")
    if payer_id != path.stem or not isinstance(payer_id, str) or not PAYER_ID_RE.match(payer_id):
        raise where.error(("id",), f"the file name without .yaml ({path.stem!r}), lower case letters, digits, - and _")
    if not isinstance(raw.get("name"), str):
        raise where.error(("name",), "a display name")
    payer = Payer(id=payer_id, name=raw["name"], file=str(path),
                  description=str(raw.get("description") or ""),
                  example=bool(raw.get("example", False)), extends=raw.get("extends"), specs=specs)
    if parent is not None:
        payer.sources = dict(parent.sources)
        payer.parameters = dict(parent.parameters)
        payer.rule_severity = dict(parent.rule_severity)
        payer.rule_off = dict(parent.rule_off)
    sources = raw.get("sources") or {}
    if not isinstance(sources, dict):
        raise where.error(("sources",), "a mapping of document id to {title, url, effective, confidence}")
    for doc_id, info in sources.items():
        if not isinstance(info, dict) or "url" not in info and "title" not in info:
            raise where.error(("sources", doc_id), "a mapping with at least title or url")
        payer.sources[str(doc_id)] = {k: str(v) for k, v in info.items()}
    _read_rules(raw.get("rules") or {}, payer, where, known_rules)
    _read_parameters(raw.get("parameters") or {}, payer, where)
    return payer


def _read_rules(rules: Any, payer: Payer, where: _Where, known_rules: set[str] | None) -> None:
    if not isinstance(rules, dict):
        raise where.error(("rules",), "a mapping of rule id to {severity, off, source}")
    for rule_id, setting in rules.items():
        keys = ("rules", rule_id)
        if not isinstance(rule_id, str) or not re.match(r"^[a-z0-9][a-z0-9-]*$", rule_id):
            raise where.error(keys, "a rule id such as imaging-included")
        if known_rules is not None and rule_id not in known_rules:
            raise where.error(keys, "a known rule id" + _suggest(rule_id, sorted(known_rules)))
        entries = _dated_entries(setting, keys, where, value_keys=("severity", "off"))
        severities, offs = [], []
        for dated, raw in entries:
            if "severity" in raw:
                if raw["severity"] not in SEVERITIES:
                    raise where.error(keys + ("severity",), "one of " + ", ".join(SEVERITIES))
                severities.append(Dated(dated.since, dated.until, raw["severity"], dated.source))
            if raw.get("off") is True:
                offs.append(Dated(dated.since, dated.until, True, dated.source))
        payer.rule_severity[rule_id] = severities
        payer.rule_off[rule_id] = offs


def _read_parameters(params: Any, payer: Payer, where: _Where) -> None:
    if not isinstance(params, dict):
        raise where.error(("parameters",), "a mapping of parameter name to value")
    for name, setting in params.items():
        keys = ("parameters", name)
        spec = payer.specs.get(name)
        if spec is None:
            raise where.error(keys, "a known parameter" + _suggest(name, sorted(payer.specs)))
        entries = _dated_entries(setting, keys, where, value_keys=("value",))
        values = []
        for dated, raw in entries:
            if "value" not in raw:
                raise where.error(keys, "a value")
            dated.value = _check_value(spec, raw["value"], keys + ("value",), where, dated.rows)
            values.append(dated)
        payer.parameters[name] = values


def _dated_entries(setting: Any, keys: tuple[Any, ...], where: _Where,
                   value_keys: tuple[str, ...]) -> list[tuple[Dated, dict[str, Any]]]:
    """Read a setting that is either one mapping or a list of ``{since: DATE, ...}`` mappings."""
    items = setting if isinstance(setting, list) else [setting]
    allowed = set(value_keys) | {"since", "source"}
    parsed: list[tuple[dt.date, dict[str, Any], tuple[Any, ...]]] = []
    for i, item in enumerate(items):
        item_keys = keys + ((i,) if isinstance(setting, list) else ())
        if not isinstance(item, dict):
            raise where.error(item_keys, "a mapping with " + ", ".join(sorted(allowed)))
        for key in item:
            if key not in allowed:
                raise where.error(item_keys + (key,), "one of " + ", ".join(sorted(allowed)) + _suggest(key, sorted(allowed)))
        since = item.get("since", UNDATED)
        if isinstance(since, str):
            try:
                since = dt.date.fromisoformat(since)
            except ValueError:
                real = re.match(r"^\d{4}-\d{2}-\d{2}$", since)
                raise where.error(item_keys + ("since",),
                                  "a real calendar date (YYYY-MM-DD)" if real else "a date YYYY-MM-DD") from None
        if not isinstance(since, dt.date):
            raise where.error(item_keys + ("since",), "a date YYYY-MM-DD")
        if "source" not in item:
            raise where.error(item_keys, "a source: {document, url, confidence}")
        parsed.append((since, item, item_keys))
    parsed.sort(key=lambda p: p[0])
    out = []
    for n, (since, item, item_keys) in enumerate(parsed):
        if n + 1 < len(parsed) and parsed[n + 1][0] == since:
            raise where.error(item_keys + ("since",), "a date different from the other entries")
        until = parsed[n + 1][0] - dt.timedelta(days=1) if n + 1 < len(parsed) else _OPEN
        source = _check_source(item["source"], item_keys + ("source",), where)
        out.append((Dated(since, until, None, source), item))
    return out


def _check_source(source: Any, keys: tuple[Any, ...], where: _Where) -> dict[str, Any]:
    if not isinstance(source, dict) or "document" not in source or "confidence" not in source:
        raise where.error(keys, "a mapping with document and confidence (and url where there is one)")
    for key in source:
        if key not in _SOURCE_KEYS:
            raise where.error(keys + (key,), "one of " + ", ".join(_SOURCE_KEYS) + _suggest(key, list(_SOURCE_KEYS)))
    if source["confidence"] not in CONFIDENCE_LEVELS:
        raise where.error(keys + ("confidence",), "one of " + ", ".join(CONFIDENCE_LEVELS))
    return {k: str(v) for k, v in source.items()}


def _check_value(spec: ParamSpec, value: Any, keys: tuple[Any, ...], where: _Where, found: list[Row]) -> Any:
    """The value as ASP terms; each row of a records or mapping value is appended to ``found``
    with its own ``source`` when it has one."""
    def item(kind: str, v: Any, k: tuple[Any, ...]) -> str:
        try:
            return encode_value(kind, v)
        except ValueError as exc:
            raise where.error(k, str(exc)) from None

    def own_source(row: dict[str, Any], k: tuple[Any, ...]) -> dict[str, str] | None:
        return _check_source(row["source"], k + ("source",), where) if "source" in row else None

    if spec.kind in ("int",):
        return item("int", value, keys)
    if spec.kind == "choice":
        return item("choice:" + "|".join(spec.choices), value, keys)
    if spec.kind == "list":
        if not isinstance(value, list):
            raise where.error(keys, "a list")
        return [item(spec.item, v, keys + (i,)) for i, v in enumerate(value)]
    if spec.kind in ("record", "records"):
        rows = value if spec.kind == "records" else [value]
        if spec.kind == "records" and not isinstance(value, list):
            raise where.error(keys, "a list of mappings with " + ", ".join(f for f, _ in spec.fields))
        out = []
        names = [f for f, _ in spec.fields]
        allowed = names + (["source"] if spec.kind == "records" else [])
        identifying = spec.row_key or names[:1]
        for i, row in enumerate(rows):
            row_keys = keys + ((i,) if spec.kind == "records" else ())
            if not isinstance(row, dict):
                raise where.error(row_keys, "a mapping with " + ", ".join(names))
            for key in row:
                if key not in allowed:
                    raise where.error(row_keys + (key,), "one of " + ", ".join(allowed) + _suggest(key, allowed))
            missing = [f for f in names if f not in row]
            if missing:
                raise where.error(row_keys, "also " + ", ".join(missing))
            terms = {f: item(kind, row[f], row_keys + (f,)) for f, kind in spec.fields}
            out.append("(" + ", ".join(terms.values()) + ")")
            if spec.kind == "records":
                found.append(Row(tuple((kind, terms[f]) for f, kind in spec.fields
                                      if f in identifying and kind in _LINE_KEYS), own_source(row, row_keys)))
        return out if spec.kind == "records" else out[0]
    if spec.kind == "mapping":
        if not isinstance(value, dict):
            raise where.error(keys, f"a mapping of {spec.key} to a list")
        out = []
        for key, items in value.items():
            k = item(spec.key, key, keys + (key,))
            row_keys = keys + (key,)
            source = None
            if isinstance(items, dict):   # {value: [...], source: {...}}: a row with its own source
                for name in items:
                    if name not in ("value", "source"):
                        raise where.error(row_keys + (name,), "value or source" + _suggest(name, ["value", "source"]))
                if "value" not in items or "source" not in items:
                    raise where.error(row_keys, "a list, or a mapping with value (the list) and source")
                source = own_source(items, row_keys)
                items, row_keys = items["value"], row_keys + ("value",)
            if not isinstance(items, list):
                raise where.error(row_keys, "a list")
            out.extend(f"({k}, {item(spec.item, v, row_keys + (i,))})" for i, v in enumerate(items))
            found.append(Row(((spec.key, k),) if spec.key in _LINE_KEYS else (), source))
        return out
    raise where.error(keys, f"(internal) unknown parameter kind {spec.kind}")


def _ymd(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


def _facts(payer: Payer) -> str:
    """``payer_entry/4`` for each dated entry of a parameter (kb/payer.lp decides which is in
    force on a date), ``payer_param/5`` for each of its values (with the entry's window), and
    ``payer_value/4`` (looked up as a whole) or ``payer_keyed/5`` (looked up by the line's
    family or code; see kb/payer.lp); values name their entry by its start."""
    pid = f'"{payer.id}"'
    out = []
    for name, values in sorted(payer.parameters.items()):
        keyed = lookup_key(payer.specs[name]) is not None
        for dated in values:
            start = _ymd(dated.since)
            out.append(f"payer_entry({pid}, {name}, {start}, {_ymd(dated.until)}).")
            terms = dated.value if isinstance(dated.value, list) else [dated.value]
            for term in terms:
                out.append(f"payer_param({pid}, {name}, {term}, {start}, {_ymd(dated.until)}).")
                if keyed:
                    key = term[1:-1].split(", ", 1)[0] if term.startswith("(") else term
                    out.append(f"payer_keyed({pid}, {name}, {key}, {term}, {start}).")
                else:
                    out.append(f"payer_value({pid}, {name}, {term}, {start}).")
    for rule_id, values in sorted(payer.rule_severity.items()):
        for dated in values:
            out.append(f'payer_severity({pid}, "{rule_id}", {dated.value}, {_ymd(dated.since)}, {_ymd(dated.until)}).')
    for rule_id, values in sorted(payer.rule_off.items()):
        for dated in values:
            out.append(f'payer_rule_off({pid}, "{rule_id}", {_ymd(dated.since)}, {_ymd(dated.until)}).')
    return "\n".join(out) + "\n"
