"""Smallest corrections of claims (docs/fix.md): the engine behind ``pain-asp fix``.

clingo chooses edits of a claim's lines and minimises their cost over the very rules that
``check`` uses: the knowledge base (``kb/check.lp``) is loaded with the repair layer
(``kb/fix/check.lp``), whose chosen ``edit/3`` atoms the claim view (``kb/claim_view.lp``)
applies before any rule reads the claim. Many independent claims are optimised in one solve
(core-guided optimisation, ``--opt-strategy=usc``); the objective is a sum over claims, so
the batch optimum is every claim's own optimum, and each result says whether optimality was
proven.

API
---
``Repairer(options: RepairOptions | None = None, checker: Checker | None = None)``
    One instance serves a batch (knowledge base, payers and NCCI tables loaded once).

``Repairer.fix(records, history=None) -> list[FixResult]``
    One result per :class:`~pain_asp.inputs.readers.Record`, in input order. ``history`` is the
    history provider given to :meth:`pain_asp.engine.Checker.check` (claim history, batch,
    store); the repair sees exactly the facts ``check`` sees. With a batch or store history
    (a provider with ``replacing``), claims whose correction changes the history they or
    their patient's other claims see are then fixed again until they agree (``_settle``).

``Repairer.fix_checked(results, history=None) -> list[FixResult]``
    The same from check :class:`~pain_asp.findings.Result` objects already computed.

``FixResult`` fields:
    ``claim_id``, ``file``, ``position``, ``payer``;
    ``status``: ``clean`` (no deny finding, nothing to do) | ``fixed`` (edits clear every
    correctable denial) | ``actions_only`` (no edit needed, but action items remain) |
    ``unfixable`` (some correctable deny finding no allowed edit can clear; the edits that
    help are still given) | ``timeout`` (no proven optimum within the time bound) |
    ``error`` (the claim could not be read or checked);
    ``edits``: list of :class:`Edit` (``kind``: drop_line, add_modifier, remove_modifier,
    replace_modifier, set_units, replace_code, split_bilateral, merge_bilateral,
    repoint_dx; ``line``: the billed line, numbered as in the input; ``details``: a dict;
    ``description``; ``resolves``: the findings of the billed claim the edit clears);
    ``corrected``: the corrected claim as a dict in the input format (docs/claim-format.md), or None;
    ``action_items``: list of :class:`ActionItem` (findings of the corrected claim that no
    edit clears: deny findings of non-correctable rules, and review findings, each with
    the rule's ``action`` or fix hint: document X, appeal, obtain authorization, ABN);
    ``remaining``: the correctable deny findings the corrected claim still has;
    ``cost``: dict with ``unresolved``, ``unpriced_units_removed``, ``revenue_removed_cents``,
    ``edits``, ``minor_findings``, ``tie_break`` (see below);
    ``before`` / ``after``: the findings of the billed and of the corrected claim;
    ``optimal``: the solver proved the edits optimal; ``errors``: input or solver errors.

Cost (kb/fix/optimise.lp), compared in this order, smaller first (money first):
    1. correctable deny findings left (0 whenever an edit set can make the claim clean);
    2. units of service removed from lines without a charge (a dropped line's units, units
       taken off): a service of unknown value counts above any charge, so it is never
       removed in favour of services whose charges are known;
    3. billed revenue removed, in cents: the charge of a dropped line, and the share of the
       charge of units taken off a line without modifier 50 (``charge - charge * new_units
       // billed_units``; a 50 line is one bilateral service and keeps its charge,
       ``repair_units_removed`` in kb/fix/optimise.lp). The solver counts it in the claim's money unit
       (:func:`pain_asp.facts.money_unit`: cents, coarser only for a claim whose charges add
       up past 21,474,836.47), and claims are solved together only while their charges add
       up within clingo's integers, so no claim's cost overflows or depends on the claims
       beside it;
    4. number of edits;
    5. review and warn findings of the corrected claim;
    6. tie-break: per edit, ``rank * 100 + (0 if a rule flagged the line else 50) + 50 - line``
       with the rank of its kind (``repair_edit_kind/3``: least intrusive kind first), then
       the line a correctable deny finding names, then the later line.

The edited claim is read from the solve: the claim view (kb/claim_view.lp) applies the
edits, and kb/fix/corrected.lp shows, once the optimum is known, each line of the edited
claim (where it comes from, code, units, modifiers and pointers with their places, charge, the
documentation of a merged line); :func:`_corrected` only writes them back in the claim
format. Edit kinds, their names and tie-break ranks are ``repair_edit_kind/3`` in
kb/fix/optimise.lp; each claim's costs are read from the solve as well.

Never (kb/fix/candidates.lp): a service that was not billed (units only go down; a code
is only replaced by a code for the same service; a split is the same service), a
diagnosis added (pointers only move inside the claim's list), a modifier the chart does not
support (25 needs ``em_separate_problem``, 57 ``em_decision_for_surgery``, 24
``em_unrelated_to_surgery``, 58/78/79 a documented ``global_relation``, 59/X{EPSU} a
documented ``distinct`` reason, KX a documented diagnostic purpose, RT/LT/50 the documented side), a correct side taken off (a
side modifier comes off only where it conflicts with another one, with the chart, or, for
50, with the code's bilateral indicator), and no edit brings a deny finding of a
non-correctable rule to a line that did not have it.

Each edit's ``resolves`` is found by replaying the chosen edit set without that edit on the
same ground program (one extra solve per edit position in a batch, no grounding): a finding
of the billed claim that the fix clears resolves to every edit whose removal brings it back
(when none does alone, to the edits on its lines, else to all edits).

``pain_asp.bench.fix.bench_fix(n, seed)`` measures fix throughput on generated claims with deny findings.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Optional

import msgspec

from ..engine import CHUNK_SIZE, Checker, CheckOptions, TimedOut, grounded_control, solve_within
from ..facts import CLINGO_INT_MAX, charge_cents, claim_money, muscle_count, nerve_facts
from ..findings import Finding, Result, build_findings, record_header
from ..inputs.records import Record
from ..kb import code_catalog, main_file
from ..models import Claim, Documentation, HistoryEntry, as_dict, parse_claim
from ..terms import Fn, parse_term
from ..tokens import parse_level

__all__ = [
    "ActionItem",
    "Edit",
    "FixResult",
    "RepairOptions",
    "Repairer",
    "candidate_edits",
    "edit_set_costs",
]

HistoryProvider = Callable[[Claim], list[HistoryEntry]]

SETTLE_ROUNDS = 4  # rounds of fixing claims again against the history their correction gives (Repairer._settle)


# --- results ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class RawEdit:
    """One ``edit(K, L, Term)`` atom: ``op`` is the term's name, ``args`` its arguments,
    ``kind`` and ``rank`` the name and tie-break rank of its kind (``repair_edit_kind/3``).

    Strings stay strings (modifiers, codes), numbers stay ints (units, pointers, lines) and
    constants become their names (split formats).
    """

    line: int
    op: str
    args: tuple[Any, ...]
    kind: str
    rank: int

    def term(self) -> str:
        """The ASP term as clingo prints it, e.g. ``replace_mod("59","XS")``."""
        if not self.args:
            return self.op
        parts = [f'"{a}"' if isinstance(a, str) and a not in _CONSTANTS else str(a) for a in self.args]
        return f"{self.op}({','.join(parts)})"


_CONSTANTS = {"two_lines_rt_lt", "line_plus_50"}


@dataclass
class Edit:
    """One edit of a claim, as reported."""

    kind: str
    line: int
    details: dict[str, Any]
    description: str
    resolves: list[Finding] = field(default_factory=list)
    raw: RawEdit | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"kind": self.kind, "line": self.line, "details": self.details,
                "description": self.description,
                "resolves": [_finding_ref(f) for f in self.resolves]}


@dataclass
class ActionItem:
    """A finding no edit clears, with what to do about it."""

    rule: str
    severity: str
    title: str
    lines: list[int]
    message: str
    action: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"rule": self.rule, "severity": self.severity, "title": self.title,
                "lines": self.lines, "message": self.message, "action": self.action}


@dataclass
class FixResult:
    """The outcome of ``fix`` for one input claim (see the module docstring)."""

    claim_id: str | None
    file: str
    position: int
    payer: str | None
    status: str
    edits: list[Edit] = field(default_factory=list)
    corrected: dict[str, Any] | None = None
    action_items: list[ActionItem] = field(default_factory=list)
    remaining: list[Finding] = field(default_factory=list)
    cost: dict[str, int] = field(default_factory=dict)
    before: list[Finding] = field(default_factory=list)
    after: list[Finding] = field(default_factory=list)
    optimal: bool = True
    errors: list[dict[str, Any]] = field(default_factory=list)
    claim: Claim | None = None
    corrected_claim: Claim | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: edits, corrected claim, action items, cost."""
        out = record_header(self.claim_id, self.file, self.position, self.payer, self.status, self.errors)
        if self.status == "error":
            return out
        out.update({
            "optimal": self.optimal,
            "cost": self.cost,
            "edits": [e.as_dict() for e in self.edits],
            "corrected": self.corrected,
            "action_items": [a.as_dict() for a in self.action_items],
            "remaining": [_finding_ref(f) for f in self.remaining],
            "findings_before": [_finding_ref(f) for f in self.before],
            "findings_after": [_finding_ref(f) for f in self.after],
        })
        return out


def _finding_ref(f: Finding) -> dict[str, Any]:
    return {"rule": f.rule, "severity": f.severity, "lines": f.lines, "message": f.message}


@dataclass
class RepairOptions:
    """Where the policy comes from and how the solver runs."""

    payer_dirs: list[str] = field(default_factory=list)
    ncci_dir: str | None = None
    kb_dir: str | None = None
    claims_per_solve: int = 100
    timeout: float = 20.0
    check_chunk_size: int = CHUNK_SIZE   # claims per Control of the check before fixing
    attribute: bool = True


# --- the repairer ----------------------------------------------------------------------------

class Repairer:
    """Computes the smallest corrections of claims (see the module docstring)."""

    def __init__(self, options: RepairOptions | None = None, checker: Checker | None = None) -> None:
        self.options = options or RepairOptions()
        o = self.options
        self.checker = checker or Checker(CheckOptions(
            payer_dirs=list(o.payer_dirs), ncci_dir=o.ncci_dir, kb_dir=o.kb_dir,
            chunk_size=o.check_chunk_size, timeout=o.timeout))
        self.kb = self.checker.kb
        self.rules = self.checker.rules
        # A code the repair writes (77003 -> 77002, a first-level code for its add-on ...) is
        # judged with its NCCI rows like a billed one: every catalog code's rows are in a solve.
        self._writable_codes = sorted(code_catalog(str(self.kb)))

    def known_payers(self) -> list[str]:
        """Ids of the payer files available."""
        return self.checker.known_payers()

    def fix(self, records: Iterable[Record], history: HistoryProvider | None = None) -> list[FixResult]:
        """Check and fix every record; one result per record, in input order."""
        return self.fix_checked(list(self.checker.check(records, history=history)), history)

    def fix_checked(self, results: Sequence[Result], history: HistoryProvider | None = None) -> list[FixResult]:
        """Fix claims whose check results are known (``results`` from the same options)."""
        return self._settle(results, self._fix_each(results, history), history)

    def _fix_each(self, results: Sequence[Result], history: HistoryProvider | None) -> list[FixResult]:
        """Every claim fixed against ``history`` as given."""
        out: list[FixResult | None] = [None] * len(results)
        todo: list[int] = []
        for i, result in enumerate(results):
            if result.errors or result.claim is None:
                out[i] = _failed(result, result.errors)
            elif any(f.severity == "deny" and f.correctable for f in result.findings):
                todo.append(i)
            else:
                out[i] = self._unchanged(result)
        for solve in self._solves(results, todo):
            chunk = [results[i] for i in solve]
            for i, fixed in zip(solve, self._repair_chunk(chunk, history)):
                out[i] = fixed
        return [r for r in out if r is not None]

    def _solves(self, results: Sequence[Result], todo: list[int]) -> list[list[int]]:
        """``todo`` in solves of at most ``claims_per_solve`` claims whose charges (in their
        money units) add up to at most :data:`~pain_asp.facts.CLINGO_INT_MAX`, so no sum of
        the objective overflows."""
        size = max(1, self.options.claims_per_solve)
        solves: list[list[int]] = []
        money = 0
        for i in todo:
            claim_total = claim_money(results[i].claim)  # type: ignore[arg-type]
            if not solves or len(solves[-1]) == size or money + claim_total > CLINGO_INT_MAX:
                solves.append([])
                money = 0
            solves[-1].append(i)
            money += claim_total
        return solves

    def _settle(self, results: Sequence[Result], fixed: list[FixResult],
                history: HistoryProvider | None) -> list[FixResult]:
        """Fix claims again against the history their corrected form has, until they agree.

        A claim's batch and store history are the services dated on or before its first date
        of service (docs/architecture.md), so a correction can change what the rules see: an edit to one
        claim of a patient changes the history of the patient's other claims of the batch (a
        side modifier put on an earlier session, a dropped duplicate), and dropping a claim's
        earliest line moves its own first day, letting later services in. Each round
        re-checks every corrected claim that may be affected (claims of a patient with an
        edited claim in the batch, and edited claims whose first day moved) with the history
        of its corrected form beside the corrected batch; a claim whose findings differ from
        its result's is fixed again, from its billed form, against that history (its
        ``before`` is then the billed claim judged with that history); the claims of a round
        are checked and fixed together (claims are independent in a solve).
        A round that finds no such claim ends it. A claim still unsettled after
        :data:`SETTLE_ROUNDS` rounds keeps its last result, marked not optimal.
        """
        replacing = getattr(history, "replacing", None)
        if replacing is None:
            return fixed
        by_patient: dict[str, list[int]] = {}
        for i, result in enumerate(results):
            if result.claim is not None and fixed[i].corrected_claim is not None:
                by_patient.setdefault(result.claim.patient.id, []).append(i)

        def affected() -> list[int]:
            out = set()
            for ids in by_patient.values():
                for i in ids:
                    corrected = fixed[i].corrected_claim
                    if fixed[i].edits and corrected is not None:
                        if len(ids) > 1:
                            out.update(ids)
                        elif corrected.first_day != results[i].claim.first_day:  # type: ignore[union-attr]
                            out.add(i)
            return sorted(i for i in out if fixed[i].corrected_claim is not None)

        def as_corrected() -> HistoryProvider:
            return replacing({id(results[i].claim): fixed[i].corrected_claim
                              for ids in by_patient.values() for i in ids if fixed[i].edits})

        def record(i: int, claim: Claim | None) -> Record:
            return Record(results[i].file, results[i].position, claim=claim, claim_id=results[i].claim_id)

        stale: list[int] = []
        for rounds in range(SETTLE_ROUNDS + 1):
            suspects = affected()
            again = self.checker.check([record(i, fixed[i].corrected_claim) for i in suspects],
                                       history=as_corrected())
            stale = [i for i, result in zip(suspects, again)
                     if {_key(f) for f in result.findings} != {_key(f) for f in fixed[i].after}]
            if not stale or rounds == SETTLE_ROUNDS:
                break
            window = _histories_of(as_corrected(), {id(results[i].claim): fixed[i].corrected_claim for i in stale})
            billed = list(self.checker.check([record(i, results[i].claim) for i in stale], history=window))
            for i, again in zip(stale, self._fix_each(billed, window)):
                fixed[i] = again
        for i in stale:
            fixed[i].optimal = False
            fixed[i].errors.append({
                "file": fixed[i].file, "claim_id": fixed[i].claim_id, "field": "", "value": "",
                "expected": "a correction that agrees with the history of the corrected claim",
                "message": f"the correction still changed the claim's history (or its patient's other "
                           f"claims) after {SETTLE_ROUNDS} rounds; run fix on the corrected claims again"})
        return fixed

    # -- one solve ------------------------------------------------------------------------

    def _repair_chunk(self, chunk: list[Result], history: HistoryProvider | None) -> list[FixResult]:
        try:
            return self._repair(chunk, history)
        except TimedOut:
            if len(chunk) == 1:
                return [_failed(chunk[0], [_solver_error(chunk[0], self.options.timeout)], "timeout")]
            return [fixed for one in chunk for fixed in self._repair_chunk([one], history)]

    def _control(self, claims: list[Claim], results: list[Result], history: HistoryProvider | None) -> Any:
        before = []
        for k, result in enumerate(results):
            for finding in result.findings:
                if finding.severity == "deny":
                    before.extend(f'repair_before_deny({k}, "{finding.rule}", {n}).' for n in finding.lines)
        files = [main_file(self.kb), self.kb / "fix.lp", self.kb / "fix" / "show.lp"]
        facts = self.checker.facts(claims, history, self._writable_codes) + "\n" + "\n".join(before)
        return grounded_control(files, facts, ["--opt-strategy=usc"], "the repair layer")

    def _solve(self, ctl: Any, assumptions: list | None = None) -> tuple[list, bool, dict[int, int]] | None:
        """Solve; the last model's symbols, whether it is proven optimal, and its cost by
        priority (None: no model)."""
        last: list = []
        cost: dict[int, int] = {}
        found = [False]

        def on_model(model: Any) -> None:
            last[:] = model.symbols(shown=True)
            cost.clear()
            cost.update(zip(model.priority, model.cost))
            found[0] = True

        result = solve_within(ctl, self.options.timeout, on_model, assumptions or [])
        if not found[0] or not result.satisfiable:
            return None
        return last, bool(result.exhausted), cost

    def _repair(self, chunk: list[Result], history: HistoryProvider | None) -> list[FixResult]:
        claims = [r.claim for r in chunk]
        assert all(c is not None for c in claims)
        ctl = self._control(claims, chunk, history)  # type: ignore[arg-type]
        solved = self._solve(ctl)
        if solved is None:
            message = ("the repair program has no answer (a constraint of kb/fix/ excludes even "
                       "the unedited claim)")
            return [_failed(r, [_solver_message(r, message)]) for r in chunk]
        symbols, proven, _ = solved
        answers = _split_model(symbols, len(chunk), _edit_kinds(ctl))
        atoms = _edit_atoms(ctl)
        resolved_without: dict[tuple[int, int], set] = {}
        if self.options.attribute:
            resolved_without = self._replay(ctl, chunk, [a.edits for a in answers], atoms)
        self._read_corrected(ctl, answers, atoms)
        return [self._result(chunk[k], answers[k], proven, resolved_without, k) for k in range(len(chunk))]

    def _read_corrected(self, ctl: Any, answers: list[_Answer], atoms: list[tuple[int, str]]) -> None:
        """The edited claims of the optimum, from the claim view: kb/fix/corrected.lp is
        loaded and grounded only now (any rule loaded before, even of a part grounded later,
        can lead the search to another of several equally good edit sets), and solved with the
        chosen edits fixed."""
        if not any(a.edits for a in answers):
            return
        ctl.load(str(self.kb / "fix" / "corrected.lp"))
        ctl.ground([("corrected", [])])
        chosen = {f"edit({k},{e.line},{e.term()})" for k, a in enumerate(answers) for e in a.edits}
        ctl.configuration.solve.opt_mode = "ignore"
        try:
            solved = self._solve(ctl, _assumptions(atoms, chosen))
        finally:
            ctl.configuration.solve.opt_mode = "opt"
        assert solved is not None, "the optimum's own edits are an answer"
        for symbol in solved[0]:
            if symbol.name not in ("edit", "finding"):
                _read_view_atom(parse_term(str(symbol)), answers)

    def _replay(self, ctl: Any, chunk: list[Result], edits: list[list[RawEdit]],
                atoms: list[tuple[int, str]]) -> dict[tuple[int, int], set]:
        """For edit position r of claim k: the finding keys of k's edit set without that edit.

        Replays run on the ground program of the optimisation, with every edit atom fixed by
        an assumption and optimisation off: one solve per edit position for the whole batch
        (claims are independent). A replay the constraints of kb/fix/test.lp reject is
        retried claim by claim; a claim whose part is rejected keeps no replay (its findings
        are then attributed by line).
        """
        if all(len(e) < 2 for e in edits):
            return {}
        ctl.configuration.solve.opt_mode = "ignore"
        chosen = {f"edit({k},{e.line},{e.term()})" for k, es in enumerate(edits) for e in es}

        def assumptions(left_out: set[str]) -> list[int]:
            return _assumptions(atoms, chosen - left_out)

        out: dict[tuple[int, int], set] = {}
        facts_of: dict[str, str] = {}
        try:
            for r in range(max(len(e) for e in edits)):
                takers = [k for k, es in enumerate(edits) if len(es) > r and len(es) > 1]
                if not takers:
                    continue
                left_out = {f"edit({k},{edits[k][r].line},{edits[k][r].term()})" for k in takers}
                solved = self._solve(ctl, assumptions(left_out))
                groups = [takers] if solved is not None else [[k] for k in takers]
                for group in groups:
                    if solved is None:
                        attempt = self._solve(ctl, assumptions(
                            {f"edit({k},{edits[k][r].line},{edits[k][r].term()})" for k in group}))
                        if attempt is None:
                            continue
                        symbols = attempt[0]
                    else:
                        symbols = solved[0]
                    found = _split_model(symbols, len(chunk), only=set(group))
                    for k in group:
                        out[(k, r)] = {(rule, sev, _facts_key(why, facts_of))
                                       for rule, _, why, sev in found[k].findings}
        except TimedOut:
            pass  # the edits are proven optimal already; the rest is attributed by line
        finally:
            ctl.configuration.solve.opt_mode = "opt"
        return out

    # -- results --------------------------------------------------------------------------

    def _payer(self, payer: str) -> Any:
        try:
            return self.checker.payers.get(payer)
        except Exception:  # noqa: BLE001  (an unknown payer has no parameters to cite)
            return None

    def _unchanged(self, result: Result) -> FixResult:
        claim = result.claim
        assert claim is not None
        actions = _action_items(result.findings, self.rules)
        corrected = claim_dict(claim)
        return FixResult(
            claim_id=result.claim_id, file=result.file, position=result.position, payer=result.payer,
            status="actions_only" if actions else "clean", corrected=corrected,
            action_items=actions, remaining=[], before=list(result.findings),
            after=list(result.findings), cost=_cost(claim, _Answer(), corrected, result.findings),
            claim=claim,
            corrected_claim=claim)

    def _result(self, result: Result, answer: _Answer, proven: bool,
                resolved_without: dict[tuple[int, int], set], k: int) -> FixResult:
        claim = result.claim
        assert claim is not None
        raw = answer.edits
        corrected, view_to_new = _corrected(claim, answer)
        try:
            fixed_claim = parse_claim(corrected) if raw else claim
        except Exception as exc:  # noqa: BLE001  (an internal inconsistency, reported per claim)
            return _failed(result, [_solver_message(result, f"the corrected claim does not validate: {exc}")])
        mapped = [(rule, view_to_new[line], why, sev) for rule, line, why, sev in answer.findings
                  if line in view_to_new]
        used_after = {(view_to_new[line], name): start for (line, name), start in answer.used.items()
                      if line in view_to_new}
        after = build_findings(mapped, self.rules, fixed_claim, claim.payer, self._payer(claim.payer),
                               self.checker.data, used_after)
        after_keys = {_key(f) for f in after}
        edits = [_describe(e, claim, answer, view_to_new) for e in raw]
        resolved = [f for f in result.findings if _key(f) not in after_keys]
        for f in resolved:
            key = _key(f)
            owners = [n for n in range(len(raw)) if key in resolved_without.get((k, n), set())]
            if len(raw) == 1:
                owners = [0]
            if not owners:
                owners = [n for n, e in enumerate(raw) if _touches(e, f.lines)]
            if not owners:
                owners = list(range(len(raw)))
            for n in owners:
                edits[n].resolves.append(f)
        remaining = [f for f in after if f.severity == "deny" and f.correctable]
        actions = _action_items(after, self.rules)
        if remaining:
            status = "unfixable"
        elif edits:
            status = "fixed"
        else:
            status = "actions_only" if actions else "clean"
        return FixResult(
            claim_id=result.claim_id, file=result.file, position=result.position, payer=result.payer,
            status=status, edits=edits, corrected=corrected, action_items=actions, remaining=remaining,
            cost=_cost(claim, answer, corrected, after), before=list(result.findings), after=after,
            optimal=proven, claim=claim, corrected_claim=fixed_claim)


# --- helpers: model, keys, costs ---------------------------------------------------------------

@dataclass
class _Answer:
    """What the solve shows of one claim: its edits and the findings of the edited claim
    (kb/fix/show.lp) and, when it has an edit, the edited claim (kb/fix/corrected.lp)."""

    edits: list[RawEdit] = field(default_factory=list)
    findings: list[tuple[str, int, Any, str]] = field(default_factory=list)
    used: dict[tuple[int, str], int] = field(default_factory=dict)  # (view line, parameter) -> entry start
    lines: list[tuple[int, int, str, int]] = field(default_factory=list)  # line, origin, code, units
    mods: dict[int, list[tuple[str, Any]]] = field(default_factory=dict)  # line -> (modifier, place)
    pointers: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # line -> (pointer, place)
    charges: dict[int, Fn] = field(default_factory=dict)
    merged: dict[int, int] = field(default_factory=dict)  # merged line -> the line merged into it
    chart: dict[int, list[Fn]] = field(default_factory=dict)  # merged line -> its documentation (without K, L)
    unpriced_units: int = 0
    units_removed: set[int] = field(default_factory=set)  # lines whose new units remove services
    tie_break: int = 0


def _raw_edit(symbol: Any, kinds: dict[str, tuple[str, int]]) -> RawEdit:
    import clingo

    line = symbol.arguments[1].number
    term = symbol.arguments[2]
    args: list[Any] = []
    for a in term.arguments:
        if a.type == clingo.SymbolType.Number:
            args.append(a.number)
        elif a.type == clingo.SymbolType.String:
            args.append(a.string)
        else:
            args.append(a.name)
    kind, rank = kinds[term.name]
    return RawEdit(line, term.name, tuple(args), kind, rank)


def _edit_kinds(ctl: Any) -> dict[str, tuple[str, int]]:
    """Edit term name -> (kind shown to users, tie-break rank): ``repair_edit_kind/3``."""
    return {a.symbol.arguments[0].name: (a.symbol.arguments[1].name, a.symbol.arguments[2].number)
            for a in ctl.symbolic_atoms.by_signature("repair_edit_kind", 3)}


def _edit_atoms(ctl: Any) -> list[tuple[int, str]]:
    """The literal and the text of every edit atom of the ground program."""
    return [(a.literal, str(a.symbol)) for a in ctl.symbolic_atoms.by_signature("edit", 3)]


def _assumptions(atoms: list[tuple[int, str]], chosen: set[str]) -> list[int]:
    """Every edit atom fixed: true when its text is in ``chosen``, else false."""
    return [lit if text in chosen else -lit for lit, text in atoms]


def _split_model(symbols: list, n: int, kinds: dict[str, tuple[str, int]] | None = None,
                 only: set[int] | None = None) -> list[_Answer]:
    """The edits (with ``kinds``) and the findings of each claim of a model (of the claims
    ``only``: their findings)."""
    answers = [_Answer() for _ in range(n)]
    for sym in symbols:
        args = sym.arguments
        k = args[0].number
        if only is not None and k not in only:
            continue
        if len(args) == 3:
            if kinds is not None:
                answers[k].edits.append(_raw_edit(sym, kinds))
        elif len(args) == 4:  # finding_param: the payer parameter entry a finding's rule read
            answers[k].used[(args[1].number, args[2].name)] = args[3].number
        else:
            answers[k].findings.append((args[1].string, args[2].number, args[3], str(args[4])))
    for answer in answers:
        answer.edits.sort(key=lambda e: (e.line, e.rank, e.term()))
    return answers


def _read_view_atom(atom: Fn, answers: list[_Answer]) -> None:
    """One shown atom of the edited claim or of its costs into its claim's answer."""
    k, line, *rest = atom.args
    answer = answers[k]
    if atom.name == "fixed_line":
        answer.lines.append((line, *rest))
    elif atom.name == "fixed_mod":
        answer.mods.setdefault(line, []).append((rest[0], rest[1]))
    elif atom.name == "fixed_ptr":
        answer.pointers.setdefault(line, []).append((rest[0], rest[1]))
    elif atom.name == "fixed_charge":
        answer.charges[line] = rest[0]
    elif atom.name == "view_merged":
        answer.merged[line] = rest[0]
    elif atom.name == "repair_unpriced_units":
        answer.unpriced_units += rest[1]
    elif atom.name == "repair_units_removed":
        answer.units_removed.add(line)
    elif atom.name == "repair_tie_break":
        answer.tie_break += rest[1]
    else:  # line_doc, line_relief, line_level, line_nerve, line_muscles of a merged line
        answer.chart.setdefault(line, []).append(Fn(atom.name, tuple(rest)))


def _key(f: Finding) -> tuple[str, str, str]:
    """What tells one finding from another: rule, severity and the facts of its Why."""
    return (f.rule, f.severity, json.dumps(f.facts, sort_keys=True, default=str))


def _facts_key(why: Any, cache: dict[str, str]) -> str:
    """The facts part of :func:`_key` straight from a Why term (no message is built)."""
    text = str(why)
    if text not in cache:
        from ..findings import why_facts

        cache[text] = json.dumps(why_facts(why), sort_keys=True, default=str)
    return cache[text]


def _touches(edit: RawEdit, lines: list[int]) -> bool:
    if edit.line in lines:
        return True
    return edit.op == "merge" and edit.args[0] in lines


def _cost(claim: Claim, answer: _Answer, corrected: dict[str, Any], after: list[Finding]) -> dict[str, int]:
    """The objective of kb/fix/optimise.lp for one claim, level by level, with the money
    in cents: the charges billed less the charges of the corrected claim."""
    billed = sum(charge_cents(claim, n) or 0 for n in range(1, len(claim.lines) + 1))
    kept = sum(round(Decimal(str(line["charge"])) * 100) for line in corrected["lines"] if "charge" in line)
    return {
        "unresolved": sum(1 for f in after if f.severity == "deny" and f.correctable),
        "unpriced_units_removed": answer.unpriced_units,
        "revenue_removed_cents": billed - kept,
        "edits": len(answer.edits),
        "minor_findings": sum(1 for f in after if f.severity in ("review", "warn")),
        "tie_break": answer.tie_break,
    }


def _action_items(findings: list[Finding], rules: dict[str, Any]) -> list[ActionItem]:
    items = []
    for f in findings:
        if f.severity == "deny" and not f.correctable or f.severity == "review":
            rule = rules.get(f.rule)
            action = (rule.meta.get("action") if rule is not None else None) or f.fix or \
                "Provide the documentation the rule needs, or appeal."
            items.append(ActionItem(f.rule, f.severity, f.title, list(f.lines), f.message, action))
        elif f.severity == "deny":
            items.append(ActionItem(f.rule, f.severity, f.title, list(f.lines), f.message,
                                    (f.fix or "Correct the claim by hand.") +
                                    " (No allowed edit clears this finding: clearing it would need "
                                    "a service or a diagnosis the claim does not carry, "
                                    "documentation, or the removal of every line.)"))
    return items


def _histories_of(provider: HistoryProvider, corrected: dict[int, Claim]) -> HistoryProvider:
    """A provider giving each billed claim it is asked about (``corrected`` maps its ``id``
    to its corrected form) the history ``provider`` gives the corrected form: the billed
    claims are fixed again, together, each against the history of its corrected form."""
    return lambda asked: provider(corrected[id(asked)])


def _failed(result: Result, errors: list[dict[str, Any]], status: str | None = None) -> FixResult:
    if status is None:
        status = "timeout" if any(str(e.get("message", "")).startswith("time-out") for e in errors) else "error"
    return FixResult(claim_id=result.claim_id, file=result.file, position=result.position,
                     payer=result.payer, status=status, errors=list(errors), optimal=False,
                     corrected=claim_dict(result.claim) if result.claim is not None else None,
                     before=list(result.findings), claim=result.claim)


def _solver_error(result: Result, timeout: float) -> dict[str, Any]:
    return {"file": result.file, "claim_id": result.claim_id, "field": "", "value": "",
            "expected": f"an optimal correction within {timeout:g} s",
            "message": f"time-out: no optimal correction was proven within {timeout:g} s"}


def _solver_message(result: Result, message: str) -> dict[str, Any]:
    return {"file": result.file, "claim_id": result.claim_id, "field": "", "value": "",
            "expected": "a correction", "message": message}


# --- the corrected claim in the claim format ----------------------------------------------------

def claim_dict(claim: Claim) -> dict[str, Any]:
    """``claim`` as a dict in the input format: no empty optional fields, charges as numbers."""
    return _clean(as_dict(claim))


def _clean(value: Any, key: str | None = None) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if v is None or (k == "history" and not v):
                continue
            out[k] = _clean(v, k)
        return out
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if key == "charge" and isinstance(value, str):
        return float(Decimal(value))
    return value


def _money(cents: int) -> float:
    return float(Decimal(cents) / 100)


def _corrected(claim: Claim, answer: _Answer) -> tuple[dict[str, Any], dict[int, int]]:
    """The edited claim the solve shows (kb/fix/corrected.lp), written in the claim format, and
    the map from its claim-view line numbers to the lines written.

    Lines come in the order of the billed lines they come from (a split copy right after its
    line); a line the rules cannot check is not in the view and is written as read. Each
    view line is its billed line with the view's code, units, modifiers and pointers (in the
    order of their places), charge and, for a merged line, documentation. A claim without an
    edit is the billed claim.
    """
    raw = as_dict(claim)
    if not answer.edits:
        return _clean(raw), {n: n for n in range(1, len(claim.lines) + 1)}
    rows = [(line, origin, code, units) for line, origin, code, units in answer.lines]
    rows += [(n, n, None, None) for n, line in enumerate(claim.lines, 1) if line.not_checked is not None]
    lines_out: list[dict[str, Any]] = []
    view_to_new: dict[int, int] = {}
    for line, origin, code, units in sorted(rows, key=lambda row: (row[1], row[0])):
        out = dict(raw["lines"][origin - 1])
        if code is not None:
            billed = claim.lines[origin - 1]
            out.update(code=code, units=units,
                       modifiers=_in_place(answer.mods.get(line, []), billed.modifiers),
                       dx=_in_place(answer.pointers.get(line, []), list(dict.fromkeys(billed.dx))))
            cents = _charge(answer.charges.get(line), claim)
            out["charge"] = None if cents is None else _money(cents)
            if line in answer.merged:
                out["documented"] = _merged_chart(claim, origin, answer.merged[line], answer.chart.get(line, []))
        lines_out.append(out)
        view_to_new[line] = len(lines_out)
    raw["lines"] = lines_out
    return _clean(raw), view_to_new


def _in_place(items: list[tuple[Any, Any]], billed: list[Any]) -> list[Any]:
    """Modifiers or pointers in the order of their places: where the billed item named by the
    place stood (a pointer's place 0: first), then ``added``, then ``layout``; an item with
    two places stands at the first."""
    def place(where: Any) -> tuple[int, Any]:
        if isinstance(where, Fn):
            if where.name == "billed":
                return (0, billed.index(where.args[0]))
            return (1 if where.name == "added" else 2, "")
        return (0, billed.index(where) if where else -1)

    first: dict[Any, tuple[int, Any]] = {}
    for item, where in items:
        key = place(where)
        if item not in first or key < first[item]:
            first[item] = key
    return sorted(first, key=lambda item: (first[item], item))


def _charge(term: Fn | None, claim: Claim) -> int | None:
    """A ``fixed_charge/3`` term (kb/fix/corrected.lp) in cents, from the billed charges."""
    if term is None:
        return None
    if term.name == "sum":
        return sum(c for c in (charge_cents(claim, n) for n in term.args) if c is not None)
    cents = charge_cents(claim, term.args[0])
    assert cents is not None
    if term.name == "share":
        return cents * term.args[1] // term.args[2]
    if term.name == "half":
        return cents // 2
    if term.name == "rest":
        return cents - cents // 2
    return cents  # billed


_CHART_ORDER = [name for name in Documentation.__struct_fields__ if name not in ("side", "levels")] + ["side", "levels"]


# Chart fields the claim format writes as true/false (the view has them as yes/no).
_CHART_FLAGS = frozenset(f.name for f in msgspec.structs.fields(Documentation) if f.type == Optional[bool])


def _merged_chart(claim: Claim, line: int, partner: int, atoms: list[Fn]) -> dict[str, Any] | None:
    """The documentation of merged line ``line`` as the view has it (``atoms``), written with
    the chart's own words (levels, nerves, muscles) taken from the two billed lines: the
    fields of the line first, as billed, then those it has from its partner."""
    charts = [claim.lines[n - 1].documented for n in (line, partner)]
    if charts == [None, None]:
        return None
    sources = [{k: v for k, v in as_dict(c).items() if v is not None} if c is not None else {} for c in charts]
    values: dict[str, Any] = {}
    levels: set[tuple[int, int]] = set()
    nerves: set[str] = set()
    nerve_count = muscles = None
    for atom in atoms:
        if atom.name == "line_doc":
            field_name, value = atom.args[0].name, atom.args[1]
            if field_name == "nerve_count":
                nerve_count = value
            elif field_name == "relief_months":
                values["relief_duration_months"] = value
            elif field_name in _CHART_FLAGS:
                values[field_name] = value.name == "yes"
            else:
                values[field_name] = value.name
        elif atom.name == "line_relief":
            values["relief_pct"] = atom.args[0]
        elif atom.name == "line_level":
            levels.add(atom.args)
        elif atom.name == "line_nerve":
            nerves.add(atom.args[0].name)
        else:  # line_muscles
            muscles = atom.args[0]
    taken: set[tuple[int, int]] = set()
    for source in sources:
        texts = [t for t in source.get("levels") or [] if parse_level(t) in levels - taken]
        if texts or source is sources[0] and "levels" in source:
            values["levels"] = values.get("levels", []) + texts
        taken |= {parse_level(t) for t in texts}
    for name, facts in (("nerves", (frozenset(nerves), nerve_count)), ("muscles", muscles)):
        for source in sources:
            if name in source and (nerve_facts(source[name]) if name == "nerves" else muscle_count(source[name])) == facts:
                values[name] = source[name]
                break
    order = [k for k in sources[0] if k in values] + [k for k in _CHART_ORDER if k in values and k not in sources[0]]
    return {k: values[k] for k in order}


# --- describing edits --------------------------------------------------------------------------

_SUPPORT = {
    "25": "the chart says the visit addressed a separate problem (em_separate_problem)",
    "57": "the chart says the visit made the decision for surgery (em_decision_for_surgery)",
    "24": "the chart says the visit was unrelated to the earlier surgery (em_unrelated_to_surgery)",
    "58": "the chart documents a staged or more extensive procedure (global_relation staged)",
    "78": "the chart documents a return to the room for a complication (global_relation complication)",
    "79": "the chart documents a procedure unrelated to the earlier one (global_relation unrelated)",
    "59": "the chart documents a distinct service",
    "XS": "the chart documents a separate structure",
    "XE": "the chart documents a separate encounter",
    "XP": "the chart documents a separate practitioner",
    "XU": "the chart documents an unusual, non-overlapping service",
    "KX": "the chart documents a diagnostic injection",
    "RT": "the chart documents the right side",
    "LT": "the chart documents the left side",
    "50": "the chart documents both sides",
}


def _describe(e: RawEdit, claim: Claim, answer: _Answer, view_to_new: dict[int, int]) -> Edit:
    line = claim.lines[e.line - 1]
    code = line.code
    details: dict[str, Any] = {"code": code}
    if e.op == "drop":
        charge = f", {line.charge:.2f} removed" if line.charge is not None else ""
        text = f"drop line {e.line} ({code}{charge})"
    elif e.op == "add_mod":
        details.update(modifier=e.args[0], supported_by=_SUPPORT.get(e.args[0]))
        text = f"add modifier {e.args[0]} to line {e.line} ({code})"
    elif e.op == "remove_mod":
        details.update(modifier=e.args[0])
        text = f"remove modifier {e.args[0]} from line {e.line} ({code})"
    elif e.op == "replace_mod":
        details.update({"from": e.args[0], "to": e.args[1], "supported_by": _SUPPORT.get(e.args[1])})
        text = f"replace modifier {e.args[0]} with {e.args[1]} on line {e.line} ({code})"
    elif e.op == "set_units":
        details.update({"from": line.units, "to": e.args[0]})
        text = f"set the units of line {e.line} ({code}) from {line.units} to {e.args[0]}"
        if e.line not in answer.units_removed:
            text += " (one bilateral service with 50: its charge, for both sides, is kept)"
    elif e.op == "replace_code":
        details.update({"from": code, "to": e.args[0]})
        text = f"replace {code} with {e.args[0]} on line {e.line}"
    elif e.op == "repoint":
        old, new = e.args
        details.update({"from": old or None, "to": new, "to_dx": claim.diagnoses[new - 1],
                        "from_dx": claim.diagnoses[old - 1] if old else None})
        if old:
            text = (f"point line {e.line} ({code}) to diagnosis {new} ({claim.diagnoses[new - 1]}) "
                    f"instead of {old} ({claim.diagnoses[old - 1]})")
        else:
            text = f"point line {e.line} ({code}) to diagnosis {new} ({claim.diagnoses[new - 1]})"
    elif e.op == "split":
        copy = next(n for n, origin, _, _ in answer.lines if origin == e.line and n != e.line)
        details.update({"format": e.args[0], "new_line": view_to_new[copy]})
        shape = "an RT line and an LT line" if e.args[0] == "two_lines_rt_lt" else \
            "a line without modifier and a line with 50"
        text = f"split bilateral line {e.line} ({code}-50) into {shape}"
    else:  # merge
        details.update({"with_line": e.args[0]})
        text = f"merge lines {e.line} and {e.args[0]} ({code}) into one line with modifier 50"
    return Edit(kind=e.kind, line=e.line, details=details, description=text, raw=e)


# --- candidates (for tests and kb checks) --------------------------------------------------------

def candidate_edits(repairer: Repairer, result: Result, history: HistoryProvider | None = None) -> list[RawEdit]:
    """Every edit the repair layer may choose for the claim of ``result`` (its ground choices)."""
    return _candidates(repairer._control([result.claim], [result], history))  # type: ignore[list-item]


def _candidates(ctl: Any) -> list[RawEdit]:
    kinds = _edit_kinds(ctl)
    out = [_raw_edit(a.symbol, kinds) for a in ctl.symbolic_atoms.by_signature("edit", 3)]
    return sorted(out, key=lambda e: (e.line, e.rank, e.term()))


def edit_set_costs(repairer: Repairer, result: Result, history: HistoryProvider | None = None,
                   limit: int = 10) -> list[tuple[int, ...]] | None:
    """The cost (priorities 5 to 1 of kb/fix/optimise.lp) of every subset of the candidate
    edits of the claim of ``result`` that the repair layer accepts (every answer of the repair
    program); None when there are more than ``limit`` candidates. Their least is the optimum
    fix must find (an exhaustive proof, for tests)."""
    ctl = repairer._control([result.claim], [result], history)  # type: ignore[list-item]
    candidates = _candidates(ctl)
    if len(candidates) > limit:
        return None
    ctl.configuration.solve.opt_mode = "enum"  # every answer (one per accepted edit set) with its cost
    ctl.configuration.solve.models = 0
    costs: list[tuple[int, ...]] = []

    def on_model(model: Any) -> None:
        cost = dict(zip(model.priority, model.cost))
        costs.append(tuple(cost.get(priority, 0) for priority in (5, 4, 3, 2, 1)))

    solve_within(ctl, repairer.options.timeout, on_model)
    return costs
