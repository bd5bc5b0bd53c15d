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


# Read by hand in the CMS CY2026 PFS relative value file (RVU26C, PPRRVU2026_Jul_nonQPP, released
# 2026-06-30, as copied in a public repository, read 2026-12-05): the GLOB DAYS and BILAT SURG
# columns of every catalog code the file lists (for radiology codes, the row without modifier).
# 0274T is listed with global YYY (the contractor sets the period; the catalog keeps its own
# 090, unverified); 0275T is not in the file. The office and home visits, care management and
# 99406/99407 were read there too, and G0260 (status E: excluded from the fee schedule by
# regulation; global XXX, bilateral 9), G0296, G0402, G0403, G0438, G0439, G0442; 90480, the
# other G-codes, J-codes and Q0091 were not.
RVU26C_GLOBAL = {
    "0213T": "xxx", "0214T": "zzz", "0215T": "zzz", "0216T": "xxx", "0217T": "zzz", "0218T": "zzz",
    "20552": "g000", "20553": "g000", "20600": "g000", "20604": "g000", "20605": "g000",
    "20606": "g000", "20610": "g000", "20611": "g000",
    "22510": "g010", "22511": "g010", "22512": "zzz", "22513": "g010", "22514": "g010", "22515": "zzz",
    "27096": "g000", "27278": "g090", "27279": "g090",
    "62263": "g010", "62264": "g010", "62320": "g000", "62321": "g000", "62322": "g000",
    "62323": "g000", "62324": "g000", "62325": "g000", "62326": "g000", "62327": "g000",
    "62350": "g010", "62351": "g090", "62355": "g010", "62360": "g010", "62361": "g010",
    "62362": "g010", "62365": "g010", "62367": "xxx", "62368": "xxx", "62369": "xxx", "62370": "xxx",
    "63650": "g010", "63655": "g090", "63661": "g010", "63662": "g090", "63663": "g010",
    "63664": "g090", "63685": "g010", "63688": "g010",
    "64400": "g000", "64405": "g000", "64418": "g000", "64425": "g000", "64445": "g000",
    "64450": "g000", "64451": "g000", "64454": "g000", "64479": "g000", "64480": "zzz",
    "64483": "g000", "64484": "zzz", "64490": "g000", "64491": "zzz", "64492": "zzz",
    "64493": "g000", "64494": "zzz", "64495": "zzz", "64510": "g000", "64517": "g000",
    "64520": "g000", "64530": "g000", "64555": "g010", "64561": "g010", "64575": "g090",
    "64585": "g010", "64590": "g010", "64595": "g010", "64596": "g010", "64597": "zzz",
    "64598": "g010", "64615": "g010", "64624": "g010", "64625": "g010", "64628": "g010",
    "64629": "zzz", "64633": "g010", "64634": "zzz", "64635": "g010", "64636": "zzz",
    "76881": "xxx", "76882": "xxx", "76942": "xxx", "77002": "zzz", "77003": "zzz", "77012": "xxx",
    "95970": "xxx", "95971": "xxx", "95972": "xxx", "95990": "xxx", "95991": "xxx",
    "99202": "xxx", "99203": "xxx", "99204": "xxx", "99205": "xxx", "99211": "xxx", "99212": "xxx",
    "99213": "xxx", "99214": "xxx", "99215": "xxx", "99341": "xxx", "99342": "xxx", "99344": "xxx",
    "99345": "xxx", "99347": "xxx", "99348": "xxx", "99349": "xxx", "99350": "xxx", "99406": "xxx",
    "99407": "xxx", "99424": "xxx", "99425": "zzz", "99426": "xxx", "99427": "zzz", "99437": "zzz",
    "99439": "zzz", "99453": "xxx", "99454": "xxx", "99457": "xxx", "99458": "zzz", "99484": "xxx",
    "99487": "xxx", "99489": "zzz", "99490": "xxx", "99491": "xxx",
    "G0260": "xxx", "G0296": "xxx", "G0402": "xxx", "G0403": "xxx", "G0438": "xxx", "G0439": "xxx",
    "G0442": "xxx",
}
# BILAT SURG of the same rows: 0 (50 not allowed), 1 (150% rule applies), 2 (the code is already
# bilateral), 9 (the concept does not apply: 62320-62327).
RVU26C_BILATERAL = {
    "0213T": 1, "0214T": 1, "0215T": 1, "0216T": 1, "0217T": 1, "0218T": 1, "0274T": 0,
    "20552": 0, "20553": 0, "20600": 1, "20604": 1, "20605": 1, "20606": 1, "20610": 1, "20611": 1,
    "22510": 0, "22511": 0, "22512": 0, "22513": 0, "22514": 0, "22515": 0,
    "27096": 1, "27278": 1, "27279": 1,
    "62263": 0, "62264": 0, "62320": 9, "62321": 9, "62322": 9, "62323": 9, "62324": 9,
    "62325": 9, "62326": 9, "62327": 9,
    "62350": 0, "62351": 0, "62355": 0, "62360": 0, "62361": 0, "62362": 0, "62365": 0,
    "62367": 0, "62368": 0, "62369": 0, "62370": 0,
    "63650": 0, "63655": 0, "63661": 0, "63662": 0, "63663": 0, "63664": 0, "63685": 0, "63688": 0,
    "64400": 1, "64405": 1, "64418": 1, "64425": 1, "64445": 1, "64450": 1, "64451": 1, "64454": 1,
    "64479": 1, "64480": 1, "64483": 1, "64484": 1, "64490": 1, "64491": 1, "64492": 1, "64493": 1,
    "64494": 1, "64495": 1, "64510": 1, "64517": 0, "64520": 1, "64530": 0, "64555": 0, "64561": 1,
    "64575": 0, "64585": 0, "64590": 0, "64595": 0, "64596": 0, "64597": 0, "64598": 0, "64615": 2,
    "64624": 1, "64625": 1, "64628": 0, "64629": 0, "64633": 1, "64634": 1, "64635": 1, "64636": 1,
    "76881": 0, "76882": 0, "76942": 0, "77002": 0, "77003": 0, "77012": 0,
    "95970": 0, "95971": 0, "95972": 0, "95990": 0, "95991": 0, "G0260": 9,
}

# PCTC IND of the same rows for the catalog codes where it is not 0.
RVU26C_PCTC = {"76881": 1, "76882": 1, "76942": 1, "77002": 1, "77003": 1, "77012": 1, "95990": 5}


def _held(show: str, read: dict) -> dict:
    atoms = _catalog_atoms(show)
    held: dict = {}
    for a in atoms:
        code = str(a.arguments[0]).strip('"')
        if code in read:
            value = a.arguments[1]
            held.setdefault(code, []).append(value.number if value.type == clingo.SymbolType.Number
                                             else value.name)
    return held


def test_global_days_read_in_the_cy2026_relative_value_file() -> None:
    """The global indicator the catalog holds for each code is the one the CMS CY2026 PFS
    relative value file lists (0213T and 0216T are XXX there, not 000)."""
    assert _held("#show global_days/2.", RVU26C_GLOBAL) == {c: [g] for c, g in RVU26C_GLOBAL.items()}


def test_bilateral_indicators_read_in_the_cy2026_relative_value_file() -> None:
    """The MPFS bilateral surgery indicators the catalog holds are those of the CMS CY2026 PFS
    relative value file: 64615 is 2 (its descriptor is already bilateral), the midline plexus
    blocks 64517 and 64530 are 0, the interlaminar epidurals 62320-62327 are 9 (not 0)."""
    assert _held("#show bilateral_indicator/2.", RVU26C_BILATERAL) == {c: [b] for c, b in RVU26C_BILATERAL.items()}


def test_pctc_indicators_read_in_the_cy2026_relative_value_file() -> None:
    """The imaging guidance and diagnostic ultrasound codes split into a professional (26) and a
    technical (TC) component in the CMS CY2026 PFS relative value file; no other catalog code
    carries a PC/TC indicator other than 0 there but 95990 (5, incident-to)."""
    held = {str(a.arguments[0]).strip('"'): a.arguments[1].number
            for a in _catalog_atoms("#show pctc_indicator/2.")}
    assert held == RVU26C_PCTC
