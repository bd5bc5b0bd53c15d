"""Run claims through the knowledge base with clingo (docs/architecture.md, docs/scaling.md).

Claims are grounded in chunks (1,500 per clingo Control by default, facts keyed by the
claim's position K in the chunk): a fresh Control per claim is some sixty times slower.
The knowledge base files are read by clingo from the installed package; rule metadata,
payer policies and NCCI tables are loaded once per process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from .errors import PainAspError
from .facts import claim_facts, dx_facts
from .findings import Result, build_findings
from .inputs.records import Record
from .kb import main_file, read_predicates, rule_catalog
from .models import Claim, HistoryEntry
from .ncci import load_tables
from .payers import PayerRegistry, load_registry
from .program import program_text
from .resources import kb_dir
from .terms import parse_term

__all__ = ["Checker", "CheckOptions", "TimedOut", "grounded_control", "solve_within"]

HistoryProvider = Callable[[Claim], list[HistoryEntry]]

# A solve also ends when its claims' histories reach this many entries: each claim of a
# patient with many claims in a batch carries the others' services, so a chunk of them would
# hold their square (docs/scaling.md, "A patient with many claims"). A usual chunk holds far fewer.
HISTORY_PER_SOLVE = 10_000

# Claims per clingo Control when a caller checks a list of claims itself (a batch's workers get
# theirs from BatchOptions.chunk_size).
CHUNK_SIZE = 1500


class CheckOptions(msgspec.Struct):
    """Where the policy comes from and how the solver runs."""

    payer_dirs: list[str] = msgspec.field(default_factory=list)
    ncci_dir: str | None = None
    kb_dir: str | None = None
    chunk_size: int = CHUNK_SIZE
    timeout: float = 20.0


class Checker:
    """Checks claims; one instance serves a whole batch (state loaded once).

    ``keep_control``: keep the last clingo Control instead of freeing it after its solve
    (freeing a ground program costs about 10 ms): for a command that checks once and exits
    without tearing the interpreter down (``pain-asp check``).
    """

    keep_control = False

    def __init__(self, options: CheckOptions | None = None) -> None:
        self.options = options or CheckOptions()
        self.kb = Path(self.options.kb_dir) if self.options.kb_dir else kb_dir()
        self.rules = rule_catalog(self.options.kb_dir)
        self.reads = read_predicates(self.options.kb_dir)
        self.payers: PayerRegistry = load_registry(self.options.payer_dirs, set(self.rules), self.options.kb_dir)
        self.payers.validate(self.options.payer_dirs)
        self.tables = load_tables(self.options.ncci_dir)
        self.data = self.tables.data_sets()
        self._payer_facts: dict[str, str] = {}

    def known_payers(self) -> list[str]:
        """Ids of the payer files available."""
        return self.payers.ids()

    def check(self, records: Iterable[Record], history: HistoryProvider | None = None) -> Iterator[Result]:
        """Yield one result per record, in input order. Records are solved together up to
        ``chunk_size`` of them and :data:`HISTORY_PER_SOLVE` history entries (a claim whose
        history alone holds more is solved alone); each claim's history is asked for once,
        when the claim joins a solve."""
        chunk: list[Record] = []
        past: dict[int, list[HistoryEntry]] = {}
        entries = 0
        for record in records:
            claim = record.claim
            own = [] if claim is None else history(claim) if history else list(claim.history)
            if chunk and entries + len(own) > HISTORY_PER_SOLVE:
                yield from self._check_chunk(chunk, lambda claim: past[id(claim)])
                chunk, past, entries = [], {}, 0
            chunk.append(record)
            if claim is not None:
                past[id(claim)] = own
                entries += len(own)
            if len(chunk) >= self.options.chunk_size:
                yield from self._check_chunk(chunk, lambda claim: past[id(claim)])
                chunk, past, entries = [], {}, 0
        if chunk:
            yield from self._check_chunk(chunk, lambda claim: past[id(claim)])

    def check_claim(self, claim: Claim, file: str = "<claim>") -> Result:
        """Check one validated claim."""
        return next(self.check([Record(file, 1, claim=claim, claim_id=claim.claim_id)]))

    # -- internals ------------------------------------------------------------------------

    def _check_chunk(self, chunk: list[Record], history: HistoryProvider | None) -> list[Result]:
        results = [Result(r.file, r.position, r.claim_id, claim=r.claim,
                          payer=r.claim.payer if r.claim else None, data=self.data,
                          errors=[e.as_dict() for e in r.errors]) for r in chunk]
        valid = [i for i, r in enumerate(chunk) if r.claim is not None]
        if not valid:
            return results
        try:
            atoms, used = self._solve([chunk[i].claim for i in valid], history)  # type: ignore[misc]
        except TimedOut:
            atoms, used = {}, {}
            for n, i in enumerate(valid):
                try:
                    one, one_used = self._solve([chunk[i].claim], history)  # type: ignore[list-item]
                    atoms[n], used[n] = one.get(0, []), one_used.get(0, {})
                except TimedOut:
                    results[i].errors.append({
                        "file": chunk[i].file, "claim_id": chunk[i].claim_id, "field": "",
                        "value": "", "expected": f"a solve within {self.options.timeout:g} s",
                        "message": f"time-out: the solver did not finish within {self.options.timeout:g} s",
                    })
        for n, i in enumerate(valid):
            claim = chunk[i].claim
            assert claim is not None
            if results[i].errors:
                continue
            results[i].findings = build_findings(atoms.get(n, []), self.rules, claim, claim.payer,
                                                 self.payers.get(claim.payer), self.data, used.get(n))
        return results

    def facts(self, claims: list[Claim], history: HistoryProvider | None,
              more_codes: Iterable[str] = ()) -> str:
        """Every fact a solve over ``claims`` needs: claim K is ``claims[K]``.

        Claim facts (with each claim's history), the payer facts of the payers involved, the
        ICD-10-CM status of their diagnoses, and the NCCI rows touching their codes and
        ``more_codes`` (the codes a repair may write).
        """
        parts: list[str] = []
        codes: set[str] = set(more_codes)
        diagnoses: set[str] = set()
        for k, claim in enumerate(claims):
            past = history(claim) if history else list(claim.history)
            parts.extend(claim_facts(k, claim, claim.payer, past, self.reads))
            codes.update(line.code for line in claim.lines)
            codes.update(entry.code for entry in past)
            diagnoses.update(claim.diagnoses)
            if claim.payer not in self._payer_facts:
                self._payer_facts[claim.payer] = self.payers.get(claim.payer).facts()
        for payer in sorted({c.payer for c in claims}):
            parts.append(self._payer_facts[payer])
        parts.extend(dx_facts(diagnoses))
        parts.extend(self.tables.facts(codes))
        return "\n".join(parts)

    def _solve(self, claims: list[Claim], history: HistoryProvider | None
               ) -> tuple[dict[int, list], dict[int, dict[tuple[int, str], int]]]:
        """Per claim K: its finding atoms, and the payer parameter entries their rules read
        ((line, parameter) -> entry start, ``finding_param/4``)."""
        ctl = grounded_control([main_file(self.kb), self.kb / "show.lp"], self.facts(claims, history))
        if self.keep_control:
            self._kept_control = ctl
        found: dict[int, list] = {}
        used: dict[int, dict[tuple[int, str], int]] = {}

        def on_model(model: Any) -> None:
            # One call into clingo per atom: its printed form is read in Python (pain_asp.terms).
            for sym in model.symbols(shown=True):
                atom = parse_term(str(sym))
                if atom.name == "finding":
                    k, rule, line, why, severity = atom.args
                    found.setdefault(k, []).append((rule, line, why, severity.name))
                else:
                    k, line, name, start = atom.args
                    used.setdefault(k, {})[(line, name.name)] = start

        if not solve_within(ctl, self.options.timeout, on_model).satisfiable:
            raise PainAspError("the knowledge base has no answer for these claims (a rule "
                               "made the program unsatisfiable; rules must only derive findings)")
        return found, used


class TimedOut(Exception):
    """A solve did not finish within its time bound (it has been cancelled)."""


def grounded_control(files: Sequence[Path], facts: str, arguments: Sequence[str] = (),
                     what: str = "the knowledge base") -> Any:
    """A clingo Control with ``files`` and ``facts`` loaded and grounded (check, fix).

    The files are read as :func:`pain_asp.program.program_text` gives them (anonymous body
    variables named: the same answer, grounded faster). clingo's messages are kept, not
    printed; a file that does not load becomes a :class:`PainAspError` naming ``what`` with
    those messages.
    """
    import clingo

    messages: list[str] = []

    def logger(code: Any, message: str) -> None:
        messages.append(message)

    ctl = clingo.Control(["--warn=none", *arguments], logger=logger)
    try:
        ctl.add("base", [], program_text(files, logger))
        ctl.add("base", [], facts)
        ctl.ground([("base", [])])
    except RuntimeError:
        raise PainAspError(f"{what} failed to load:\n" + "\n".join(messages)) from None
    return ctl


def solve_within(ctl: Any, timeout: float, on_model: Callable[[Any], None],
                 assumptions: Sequence[int] = ()) -> Any:
    """Solve ``ctl`` (models to ``on_model``); the clingo SolveResult, or :class:`TimedOut`
    after ``timeout`` seconds (the search is cancelled first)."""
    with ctl.solve(on_model=on_model, async_=True, assumptions=list(assumptions)) as handle:
        if not handle.wait(timeout):
            handle.cancel()
            raise TimedOut()
        return handle.get()
