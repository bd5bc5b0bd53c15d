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


def test_bilateral_indicators_read_in_the_cy2026_relative_value_file() -> None:
    """The MPFS bilateral surgery indicators the catalog holds for these codes are those of the CMS
    CY2026 PFS relative value file (RVU26C, PPRRVU2026_Jul_nonQPP, read 2026-12-05): 64615 is 2
    (its descriptor is already bilateral), the midline plexus blocks 64517 and 64530 are 0."""
    read = {"64510": 1, "64520": 1, "64517": 0, "64530": 0, "64615": 2, "62263": 0, "62264": 0, "27279": 1}
    atoms = _catalog_atoms("#show bilateral_indicator/2.")
    held = {str(a.arguments[0]).strip('"'): a.arguments[1].number for a in atoms
            if str(a.arguments[0]).strip('"') in read}
    assert held == read
