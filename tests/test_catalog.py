"""The code catalog (kb/catalog/codes.lp): facts every code must carry."""

from __future__ import annotations

import clingo

from pain_asp.resources import kb_dir


def _catalog_atoms(program: str) -> list[clingo.Symbol]:
    ctl = clingo.Control(["--warn=none"])
    ctl.load(str(kb_dir() / "catalog" / "codes.lp"))
    ctl.add("base", [], program)
    ctl.ground([("base", [])])
    atoms: list[clingo.Symbol] = []
    ctl.solve(on_model=lambda m: atoms.extend(m.symbols(shown=True)))
    return atoms


def test_every_catalog_code_has_exactly_one_global_indicator() -> None:
    """Global surgery rules read global_days/2 for every billed code: a code without one (or
    with two) would be silently outside (or doubly inside) every global package."""
    atoms = _catalog_atoms("globals(C, N) :- code(C, _, _, _), N = #count { G : global_days(C, G) }.\n"
                           "#show globals/2.")
    assert len(atoms) > 100
    assert {str(a.arguments[0]): a.arguments[1].number for a in atoms if a.arguments[1].number != 1} == {}
