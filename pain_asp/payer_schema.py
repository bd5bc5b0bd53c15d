"""What a payer parameter's value looks like, and how each value becomes ASP terms.

The parameters themselves are declared in kb/, beside the rules that read them
(``parameter/3``, ``parameter_field/4`` ...; kb/payer.lp documents the predicates): this module
turns those declarations into :class:`ParamSpec` objects and knows the generic kinds and item
types, never a parameter's name. Rules read the values through ``param/4`` (kb/payer.lp).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from .tokens import CODE_RE, normalise_dx

__all__ = ["ParamSpec", "encode_value", "value_text", "specs_from_symbols", "spec_from_dict"]

_CONST_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class ParamSpec(msgspec.Struct, frozen=True):
    """What a parameter holds.

    kind:
      ``int``       a whole number;
      ``choice``    one of ``choices``;
      ``list``      a list of items of ``item`` type (one fact per item);
      ``record``    a mapping with exactly ``fields`` (one tuple fact, fields in order);
      ``records``   a list of such mappings (one tuple fact each);
      ``mapping``   key -> list of items (one (key, item) fact per item).
    Item and field types: ``family`` (a catalog family), ``code`` (CPT/HCPCS), ``dx``
    (ICD-10-CM code or family), ``int``, ``pos`` (place of service), ``choice:a|b``.

    bounds: ``(field, lowest, highest, what a lower value does, what a higher value does)``
    for the numbers that let the rule both fire and pass (field None: the value itself);
    row_key: the fields that identify a row of a ``records`` value (two rows with the same
    key must agree); conflicts: ``(field, other parameter, why)``: a row whose field is an
    item of the other parameter contradicts it (``pain-asp kb check``).
    """

    kind: str
    help: str
    item: str = "family"
    choices: tuple[str, ...] = ()
    fields: tuple[tuple[str, str], ...] = ()
    key: str = "family"
    default: str | None = None   # what the rules do when a payer does not set it
    bounds: tuple[tuple[str | None, int | None, int | None, str, str], ...] = ()
    row_key: tuple[str, ...] = ()
    conflicts: tuple[tuple[str, str, str], ...] = ()

    def bound(self, field_name: str | None) -> tuple[int | None, int | None, str, str] | None:
        """(lowest, highest, below, above) for a field (None: the value itself), if declared."""
        for name, low, high, below, above in self.bounds:
            if name == field_name:
                return low, high, below, above
        return None


def _type_text(symbol: Any) -> str:
    """An item or field type as declared in kb/ (``code``, ``choice(a, b)``) in its text form."""
    if symbol.name == "choice" and symbol.arguments:
        return "choice:" + "|".join(str(a) for a in symbol.arguments)
    return str(symbol)


def specs_from_symbols(symbols: list[Any]) -> dict[str, ParamSpec]:
    """The parameter declarations among the knowledge base's metadata atoms, by name (sorted)."""
    found: dict[str, dict[str, Any]] = {}
    by_name: dict[str, list[Any]] = {}
    for sym in symbols:
        if sym.name == "parameter":
            name = str(sym.arguments[0])
            found[name] = {"kind": str(sym.arguments[1]), "help": sym.arguments[2].string}
        elif sym.name.startswith("parameter_"):
            by_name.setdefault(str(sym.arguments[0]), []).append(sym)
    for name, spec in found.items():
        fields: list[tuple[int, str, str]] = []
        bounds: dict[str | None, list[Any]] = {}
        for sym in by_name.get(name, []):
            args = sym.arguments[1:]
            if sym.name == "parameter_item":
                item = _type_text(args[0])
                if spec["kind"] == "choice":
                    spec["choices"] = tuple(item.split(":", 1)[1].split("|"))
                else:
                    spec["item"] = item
            elif sym.name == "parameter_key":
                spec["key"] = _type_text(args[0])
            elif sym.name == "parameter_field":
                fields.append((args[0].number, str(args[1]), _type_text(args[2])))
            elif sym.name == "parameter_default":
                spec["default"] = str(args[0])
            elif sym.name in ("parameter_min", "parameter_max"):
                field_name = str(args[0]) if len(args) == 3 else None
                low_high = bounds.setdefault(field_name, [None, None, "", ""])
                at = 0 if sym.name == "parameter_min" else 1
                low_high[at], low_high[at + 2] = args[-2].number, args[-1].string
            elif sym.name == "parameter_row_key":
                spec.setdefault("row_key", []).append(str(args[0]))
            elif sym.name == "parameter_conflict":
                spec.setdefault("conflicts", []).append((str(args[0]), str(args[1]), args[2].string))
        fields.sort()
        order = [f for _, f, _ in fields]
        spec["fields"] = tuple((f, kind) for _, f, kind in fields)
        spec["bounds"] = tuple((f, *b) for f, b in sorted(
            bounds.items(), key=lambda fb: order.index(fb[0]) if fb[0] in order else -1))
        spec["row_key"] = tuple(sorted(spec.get("row_key", []), key=order.index))
        spec["conflicts"] = tuple(sorted(spec.get("conflicts", [])))
    return {name: ParamSpec(**found[name]) for name in sorted(found)}


def spec_from_dict(data: dict[str, Any]) -> ParamSpec:
    """A :class:`ParamSpec` from its JSON form (``msgspec.structs.asdict``, through JSON: lists become tuples)."""
    def frozen(value: Any) -> Any:
        return tuple(frozen(v) for v in value) if isinstance(value, list) else value

    return ParamSpec(**{k: frozen(v) for k, v in data.items()})



def lookup_key(spec: ParamSpec) -> str | None:
    """How rules look a set-valued parameter up: by the line's ``family``, ``code`` or either.

    Such parameters become ``payer_keyed(Payer, Name, Key, Value, From)`` facts as well,
    so kb/payer.lp joins each line only with the entries for its own family or code instead of
    copying every entry onto every line (grounding cost, docs/scaling.md). None: looked up as a whole.
    """
    keyed = ("family", "code", "family_or_code")
    if spec.kind == "list" and spec.item in keyed:
        return spec.item
    if spec.kind == "mapping" and spec.key in keyed:
        return spec.key
    if spec.kind == "records" and spec.fields and spec.fields[0][1] in keyed:
        return spec.fields[0][1]
    return None


def encode_value(kind: str, value: object) -> str:
    """Write one validated item as an ASP term, or raise ValueError saying what is expected."""
    if kind.startswith("choice:"):
        options = kind.split(":", 1)[1].split("|")
        if value not in options:
            raise ValueError("one of " + ", ".join(options))
        return str(value)
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("a whole number")
        return str(value)
    if kind == "family":
        if not isinstance(value, str) or not _CONST_RE.match(value):
            raise ValueError("a code family name such as esi_transforaminal")
        return value
    if kind == "code":
        text = str(value).upper() if isinstance(value, (str, int)) else ""
        if not CODE_RE.match(text):
            raise ValueError("a CPT or HCPCS code")
        return f'"{text}"'
    if kind == "family_or_code":
        if isinstance(value, (str, int)) and CODE_RE.match(str(value).upper()):
            return f'"{str(value).upper()}"'
        return encode_value("family", value)
    if kind == "dx":
        if isinstance(value, str) and _CONST_RE.match(value):
            return value
        code = normalise_dx(value) if isinstance(value, str) else None
        if code is None:
            raise ValueError("an ICD-10-CM code or a diagnosis family such as radiculopathy")
        return f'"{code}"'
    if kind == "pos":
        text = str(value).zfill(2) if isinstance(value, (str, int)) else ""
        if not (text.isascii() and text.isdigit() and len(text) == 2):
            raise ValueError("a two-digit place-of-service code")
        return str(int(text))
    raise ValueError(f"unknown item kind {kind}")


def value_text(spec: ParamSpec, value: Any) -> str:
    """A payer parameter value (as ASP terms) written back in the YAML shape it came from."""
    def term(text: str) -> str:
        return text.strip().strip('"')

    def record(text: str) -> str:
        parts = [term(p) for p in text.strip()[1:-1].split(",")]
        return "{" + ", ".join(f"{name}: {part}" for (name, _), part in zip(spec.fields, parts)) + "}"

    if spec.kind in ("int", "choice"):
        return term(str(value))
    if spec.kind == "list":
        return "[" + ", ".join(term(v) for v in value) + "]"
    if spec.kind == "record":
        return record(value)
    if spec.kind == "records":
        return "[" + ", ".join(record(v) for v in value) + "]"
    if spec.kind == "mapping":
        grouped: dict[str, list[str]] = {}
        for pair in value:
            key, item = pair.strip()[1:-1].split(",", 1)
            grouped.setdefault(term(key), []).append(term(item))
        return "{" + "; ".join(f"{k}: [{', '.join(v)}]" for k, v in grouped.items()) + "}"
    return str(value)
