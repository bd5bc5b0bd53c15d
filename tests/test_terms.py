"""pain_asp.terms reads clingo's printed terms exactly as the Symbol API would see them."""

from __future__ import annotations

import datetime as dt

import clingo
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pain_asp.findings import why_facts, render_value
from pain_asp.terms import Fn, parse_term, show_term

_names = st.from_regex(r"[a-z_][a-zA-Z0-9_']{0,8}", fullmatch=True)
_strings = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF) | st.sampled_from('"\\\n'),
                   max_size=12)


def _symbols(depth: int = 3) -> st.SearchStrategy[clingo.Symbol]:
    leaves = st.one_of(
        st.integers(-(2**31) + 1, 2**31 - 1).map(clingo.Number),
        _strings.map(clingo.String),
        _names.map(lambda n: clingo.Function(n)),
    )
    return st.recursive(leaves, lambda inner: st.one_of(
        st.tuples(_names, st.lists(inner, min_size=1, max_size=4)).map(lambda t: clingo.Function(t[0], t[1])),
        st.lists(inner, max_size=4).map(lambda a: clingo.Tuple_(a)),
    ), max_leaves=12)


def _value(sym: clingo.Symbol):
    """The expected Python value, through the Symbol API."""
    if sym.type == clingo.SymbolType.Number:
        return sym.number
    if sym.type == clingo.SymbolType.String:
        return sym.string
    if sym.name == "":
        return tuple(_value(a) for a in sym.arguments)
    return Fn(sym.name, tuple(_value(a) for a in sym.arguments))


@given(_symbols())
def test_parse_term_agrees_with_the_symbol_api(sym: clingo.Symbol) -> None:
    value = parse_term(str(sym))
    assert value == _value(sym)
    assert show_term(value) == str(sym)


@given(_symbols())
def test_why_dict_is_the_same_from_a_symbol_and_from_its_text(sym: clingo.Symbol) -> None:
    why = clingo.Tuple_([clingo.Function("facts", [sym]), clingo.Function("date", [clingo.Number(739000)])])
    assert why_facts(why) == why_facts(parse_term(str(why)))


def test_readable_values() -> None:
    day = dt.date(2024, 4, 2).toordinal()  # the knowledge base's day numbers are ordinals
    why = parse_term(f'(code("77003"),date({day}),side(bilateral),levels(3),pair("64483","64484"),flag)')
    assert why_facts(why) == {"code": "77003", "date": "2024-04-02", "side": "bilateral", "levels": 3,
                              "pair": ["64483", "64484"], "flag": True}
    assert render_value("earlier_date", parse_term(f"({day},{day + 1})")) == ["2024-04-02", "2024-04-03"]
    assert render_value("dates", parse_term("()")) == "()"
    assert render_value("source", parse_term("l(3)")) == "l(3)"


@pytest.mark.parametrize("text", ["", "(", "f(1", "1 2", "f(,)", ")"])
def test_malformed_text_is_an_error(text: str) -> None:
    with pytest.raises((ValueError, IndexError)):
        parse_term(text)
