"""Smallest corrections of claims (SPEC §8): the engine behind ``pain-asp fix``.

clingo chooses edits of a claim's lines and minimises their cost over the very rules that
``check`` uses: the knowledge base (``kb/main.lp``) is loaded with the repair layer
(``kb/repair/main.lp``), whose chosen ``edit/3`` atoms the claim view (``kb/claim_view.lp``)
applies before any rule reads the claim. Many independent claims are optimised in one solve
(core-guided optimisation, ``--opt-strategy=usc``); the objective is a sum over claims, so
the batch optimum is every claim's own optimum, and each result says whether optimality was
proven.

API
---
``Repairer(options: RepairOptions | None = None, checker: Checker | None = None)``
    One instance serves a batch (knowledge base, payers and NCCI tables loaded once).

``Repairer.fix(records, history=None) -> list[FixResult]``
    One result per :class:`~pain_asp.readers.Record`, in input order. ``history`` is the
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
    ``corrected``: the corrected claim as a dict in the input format (SPEC §3), or None;
    ``action_items``: list of :class:`ActionItem` (findings of the corrected claim that no
    edit clears: deny findings of non-correctable rules, and review findings, each with
    the rule's ``action`` or fix hint: document X, appeal, obtain authorization, ABN);
    ``remaining``: the correctable deny findings the corrected claim still has;
    ``cost``: dict with ``unresolved``, ``unpriced_units_removed``, ``revenue_removed_cents``,
    ``edits``, ``minor_findings``, ``tie_break`` (see below);
    ``before`` / ``after``: the findings of the billed and of the corrected claim;
    ``optimal``: the solver proved the edits optimal; ``errors``: input or solver errors.

Cost (kb/repair/optimise.lp), compared in this order, smaller first (money first):
    1. correctable deny findings left (0 whenever an edit set can make the claim clean);
    2. units of service removed from lines without a charge (a dropped line's units, units
       taken off): a service of unknown value counts above any charge, so it is never
       removed in favour of services whose charges are known;
    3. billed revenue removed, in cents: the charge of a dropped line, and the share of the
       charge of units taken off a line without modifier 50 (``charge - charge * new_units
       // billed_units``; a 50 line is one bilateral service and keeps its charge, see
       :func:`removes_units`). The solver counts it in the claim's money unit
       (:func:`pain_asp.facts.money_unit`: cents, coarser only for a claim whose charges add
       up past 21,474,836.47), and claims are solved together only while their charges add
       up within clingo's integers, so no claim's cost overflows or depends on the claims
       beside it;
    4. number of edits;
    5. review and warn findings of the corrected claim;
    6. tie-break: per edit, ``rank * 100 + (0 if a rule flagged the line else 50) + 50 - line``
       with the kind ranks replace_modifier 1, add_modifier 2, remove_modifier 3, repoint_dx 4,
       set_units 5, split_bilateral 6, merge_bilateral 7, replace_code 8, drop_line 9 (least
       intrusive kind first, then the line a correctable deny finding names, then the later
       line).

Never (kb/repair/candidates.lp): a service that was not billed (units only go down; a code
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

``bench_fix(n, seed)`` measures fix throughput on generated claims with deny findings.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .engine import Checker, CheckOptions, TimedOut, grounded_control, solve_within
from .facts import CLINGO_INT_MAX, charge_cents, claim_money, money_unit
from .findings import Finding, Result, build_findings, record_header
from .kb import main_file
from .models import Claim, HistoryEntry, as_dict, parse_claim
from .readers import Record

__all__ = [
    "ActionItem",
    "Edit",
    "EDIT_KINDS",
    "FixResult",
    "RepairOptions",
    "Repairer",
    "apply_edits",
    "bench_fix",
    "candidate_edits",
    "edit_cost",
    "format_fix_report",
    "unpriced_units_removed",
]

HistoryProvider = Callable[[Claim], list[HistoryEntry]]

# ASP edit term name -> (kind shown to users, tie-break rank)
EDIT_KINDS: dict[str, tuple[str, int]] = {
    "replace_mod": ("replace_modifier", 1),
    "add_mod": ("add_modifier", 2),
    "remove_mod": ("remove_modifier", 3),
    "repoint": ("repoint_dx", 4),
    "set_units": ("set_units", 5),
    "split": ("split_bilateral", 6),
    "merge": ("merge_bilateral", 7),
    "replace_code": ("replace_code", 8),
    "drop": ("drop_line", 9),
}
SETTLE_ROUNDS = 4  # rounds of fixing claims again against the history their correction gives (Repairer._settle)
_SPLIT_OFFSET = 100  # a split copy of line L is line L + 100 in the claim view


# --- results ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class RawEdit:
    """One ``edit(K, L, Term)`` atom: ``op`` is the term's name, ``args`` its arguments.

    Strings stay strings (modifiers, codes), numbers stay ints (units, pointers, lines) and
    constants become their names (split formats).
    """

    line: int
    op: str
    args: tuple[Any, ...] = ()

    @property
    def rank(self) -> int:
        """Tie-break rank of the edit kind."""
        return EDIT_KINDS[self.op][1]

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
    check_chunk_size: int = CheckOptions.chunk_size   # claims per Control of the check before fixing
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
        of service (SPEC §7), so a correction can change what the rules see: an edit to one
        claim of a patient changes the history of the patient's other claims of the batch (a
        side modifier put on an earlier session, a dropped duplicate), and dropping a claim's
        earliest line moves its own first day, letting later services in. Each round
        re-checks every corrected claim that may be affected (claims of a patient with an
        edited claim in the batch, and edited claims whose first day moved) with the history
        of its corrected form beside the corrected batch; a claim whose findings differ from
        its result's is fixed again, from its billed form, against that history (its
        ``before`` is then the billed claim judged with that history), one claim at a time.
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
            for i in stale:
                window = _history_of(as_corrected(), fixed[i].corrected_claim)  # type: ignore[arg-type]
                billed = list(self.checker.check([record(i, results[i].claim)], history=window))
                fixed[i] = self._fix_each(billed, window)[0]
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
        files = [main_file(self.kb), self.kb / "repair" / "main.lp", self.kb / "repair" / "show.lp"]
        facts = self.checker.facts(claims, history) + "\n" + "\n".join(before)
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
            message = ("the repair program has no answer (a constraint of kb/repair/ excludes even "
                       "the unedited claim)")
            return [_failed(r, [_solver_message(r, message)]) for r in chunk]
        symbols, proven, cost = solved
        edits, atoms, used = _split_model(symbols, len(chunk))
        resolved_without: dict[tuple[int, int], set] = {}
        if self.options.attribute:
            resolved_without = self._replay(ctl, chunk, edits)
        fixed = [self._result(chunk[k], edits[k], atoms[k], used[k], proven, resolved_without, k)
                 for k in range(len(chunk))]
        levels = ("unresolved", "unpriced_units_removed", "revenue_removed_cents", "edits",
                  "minor_findings", "tie_break")
        counted = [sum(f.cost.get(name, 0) for f in fixed) for name in levels]
        counted[2] = sum(edit_cost(e, claim, money_unit(claim))  # type: ignore[arg-type]
                         for claim, mine in zip(claims, edits) for e in mine)  # in money units
        solver = [cost.get(priority, 0) for priority in (5, 4, 3, 2, 1, 0)]
        if counted != solver:
            for f in fixed:  # the Python account of the edits disagrees with the solver's
                f.optimal = False
                f.errors.append({"file": f.file, "claim_id": f.claim_id, "field": "", "value": "",
                                 "expected": "the solver's cost", "message": f"internal: solver cost "
                                 f"{solver} is not the cost of the edits {counted}"})
        return fixed

    def _replay(self, ctl: Any, chunk: list[Result], edits: list[list[RawEdit]]) -> dict[tuple[int, int], set]:
        """For edit position r of claim k: the finding keys of k's edit set without that edit.

        Replays run on the ground program of the optimisation, with every edit atom fixed by
        an assumption and optimisation off: one solve per edit position for the whole batch
        (claims are independent). A replay the constraints of kb/repair/test.lp reject is
        retried claim by claim; a claim whose part is rejected keeps no replay (its findings
        are then attributed by line).
        """
        if all(len(e) < 2 for e in edits):
            return {}
        ctl.configuration.solve.opt_mode = "ignore"
        chosen = {f"edit({k},{e.line},{e.term()})" for k, es in enumerate(edits) for e in es}
        atoms = [(a.literal, str(a.symbol)) for a in ctl.symbolic_atoms.by_signature("edit", 3)]

        def assumptions(left_out: set[str]) -> list[int]:
            return [lit if text in chosen and text not in left_out else -lit for lit, text in atoms]

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
                    _, found, _ = _split_model(symbols, len(chunk), set(group))
                    for k in group:
                        out[(k, r)] = {(rule, sev, _facts_key(why, facts_of)) for rule, _, why, sev in found[k]}
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
        return FixResult(
            claim_id=result.claim_id, file=result.file, position=result.position, payer=result.payer,
            status="actions_only" if actions else "clean", corrected=claim_dict(claim),
            action_items=actions, remaining=[], before=list(result.findings),
            after=list(result.findings), cost=_cost(claim, [], result.findings, set()), claim=claim,
            corrected_claim=claim)

    def _result(self, result: Result, raw: list[RawEdit], atoms: list, used: dict[tuple[int, str], int], proven: bool,
                resolved_without: dict[tuple[int, int], set], k: int) -> FixResult:
        claim = result.claim
        assert claim is not None
        corrected, view_to_new = apply_edits(claim, raw)
        try:
            fixed_claim = parse_claim(corrected) if raw else claim
        except Exception as exc:  # noqa: BLE001  (an internal inconsistency, reported per claim)
            return _failed(result, [_solver_message(result, f"the corrected claim does not validate: {exc}")])
        mapped = [(rule, view_to_new[line], why, sev) for rule, line, why, sev in atoms if line in view_to_new]
        used_after = {(view_to_new[line], name): start for (line, name), start in used.items() if line in view_to_new}
        after = build_findings(mapped, self.rules, fixed_claim, claim.payer, self._payer(claim.payer),
                               self.checker.data, used_after)
        after_keys = {_key(f) for f in after}
        edits = [_describe(e, claim, view_to_new) for e in raw]
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
            cost=_cost(claim, raw, after, _flagged(result)), before=list(result.findings), after=after,
            optimal=proven, claim=claim, corrected_claim=fixed_claim)


# --- helpers: model, keys, costs ---------------------------------------------------------------

def _raw_edit(symbol: Any) -> RawEdit:
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
    return RawEdit(line, term.name, tuple(args))


def _split_model(symbols: list, n: int, only: set[int] | None = None
                 ) -> tuple[list[list[RawEdit]], list[list], list[dict[tuple[int, str], int]]]:
    """The edits, the finding atoms and the payer parameter entries the findings' rules read
    ((view line, parameter) -> entry start) of each claim of a model (of the claims ``only``)."""
    edits: list[list[RawEdit]] = [[] for _ in range(n)]
    atoms: list[list] = [[] for _ in range(n)]
    used: list[dict[tuple[int, str], int]] = [{} for _ in range(n)]
    for sym in symbols:
        args = sym.arguments
        k = args[0].number
        if only is not None and k not in only:
            continue
        if len(args) == 3:
            edits[k].append(_raw_edit(sym))
        elif len(args) == 4:
            used[k][(args[1].number, args[2].name)] = args[3].number
        else:
            atoms[k].append((args[1].string, args[2].number, args[3], str(args[4])))
    for es in edits:
        es.sort(key=lambda e: (e.line, e.rank, e.term()))
    return edits, atoms, used


def _origin_line(line: int) -> int:
    return line - _SPLIT_OFFSET if line > _SPLIT_OFFSET else line


def _key(f: Finding) -> tuple[str, str, str]:
    """What tells one finding from another: rule, severity and the facts of its Why."""
    return (f.rule, f.severity, json.dumps(f.facts, sort_keys=True, default=str))


def _facts_key(why: Any, cache: dict[str, str]) -> str:
    """The facts part of :func:`_key` straight from a Why term (no message is built)."""
    text = str(why)
    if text not in cache:
        from .findings import _why_dict

        cache[text] = json.dumps(_why_dict(why), sort_keys=True, default=str)
    return cache[text]


def _touches(edit: RawEdit, lines: list[int]) -> bool:
    if edit.line in lines:
        return True
    return edit.op == "merge" and edit.args[0] in lines


def removes_units(edit: RawEdit, claim: Claim) -> bool:
    """The edit lowers the units of a one-side line, taking services off. On a line billed
    with modifier 50 the units were a reporting error: the line is one bilateral service and
    its charge is the charge for both sides (CMS IOM 100-04 ch. 12 §40.7), so lowering them
    removes nothing (kb/repair/optimise.lp, ``repair_units_removed``)."""
    return edit.op == "set_units" and "50" not in claim.lines[edit.line - 1].modifiers


def edit_cost(edit: RawEdit, claim: Claim, unit: int = 1) -> int:
    """Billed revenue the edit removes, in cents, or with ``unit`` (the claim's
    :func:`~pain_asp.facts.money_unit`) in money units as kb/repair/optimise.lp counts it."""
    cents = charge_cents(claim, edit.line)
    if cents is None:
        return 0
    value = cents // unit
    if edit.op == "drop":
        return value
    if removes_units(edit, claim):
        billed = claim.lines[edit.line - 1].units
        return value - value * edit.args[0] // billed
    return 0


def _flagged(result: Result) -> set[int]:
    """The billed lines with a correctable deny finding (the tie-break prefers editing them)."""
    return {n for f in result.findings if f.severity == "deny" and f.correctable for n in f.lines}


def unpriced_units_removed(edit: RawEdit, claim: Claim) -> int:
    """Units of service of a line without a charge the edit removes (kb/repair/optimise.lp)."""
    if claim.lines[edit.line - 1].charge is not None:
        return 0
    units = claim.lines[edit.line - 1].units
    if edit.op == "drop":
        return units
    if removes_units(edit, claim):
        return units - edit.args[0]
    return 0


def _cost(claim: Claim, raw: list[RawEdit], after: list[Finding], flagged: set[int]) -> dict[str, int]:
    """The objective of kb/repair/optimise.lp for one claim, level by level."""
    return {
        "unresolved": sum(1 for f in after if f.severity == "deny" and f.correctable),
        "unpriced_units_removed": sum(unpriced_units_removed(e, claim) for e in raw),
        "revenue_removed_cents": sum(edit_cost(e, claim) for e in raw),
        "edits": len(raw),
        "minor_findings": sum(1 for f in after if f.severity in ("review", "warn")),
        "tie_break": sum(e.rank * 100 + (0 if e.line in flagged else 50) + 50 - e.line for e in raw),
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


def _history_of(provider: HistoryProvider, claim: Claim) -> HistoryProvider:
    """A provider giving whatever claim it is asked about the history ``provider`` gives
    ``claim`` (the billed claim fixed against the history of its corrected form)."""
    return lambda _asked: provider(claim)


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


# --- applying edits in Python (mirrors kb/claim_view.lp) --------------------------------------

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


def apply_edits(claim: Claim, edits: Iterable[RawEdit]) -> tuple[dict[str, Any], dict[int, int]]:
    """The corrected claim (input format) and the map from claim-view line numbers to its lines.

    The same semantics as kb/claim_view.lp: a split copy of line L (view line L + 100) comes
    right after L; a merge keeps the lower line with 50 and the partner's documentation
    where the lower line has none (levels united, side bilateral).
    """
    raw = as_dict(claim)
    by_line: dict[int, list[RawEdit]] = {}
    for e in edits:
        by_line.setdefault(e.line, []).append(e)
    merged_away = {e.args[0] for es in by_line.values() for e in es if e.op == "merge"}
    lines_out: list[dict[str, Any]] = []
    view_to_new: dict[int, int] = {}
    for n, line in enumerate(raw["lines"], start=1):
        mine = by_line.get(n, [])
        ops = {e.op for e in mine}
        if "drop" in ops or n in merged_away:
            continue
        new, copy = _edit_line(claim, n, dict(line), mine, raw["lines"])
        lines_out.append(new)
        view_to_new[n] = len(lines_out)
        if copy is not None:
            lines_out.append(copy)
            view_to_new[n + _SPLIT_OFFSET] = len(lines_out)
    raw["lines"] = lines_out
    return _clean(raw), view_to_new


def _edit_line(claim: Claim, n: int, line: dict[str, Any], mine: list[RawEdit],
               all_lines: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    billed_units = line["units"]
    cents = None if line.get("charge") is None else int(Decimal(line["charge"]) * 100)
    removed: set[str] = set()
    replaced: dict[str, str] = {}
    added: list[str] = []
    layout: list[str] = []
    split = merge = None
    pointers = list(dict.fromkeys(line.get("dx") or []))
    for e in mine:
        if e.op == "replace_code":
            line["code"] = e.args[0]
        elif e.op == "set_units":
            line["units"] = e.args[0]
            if cents is not None and removes_units(e, claim):
                cents = cents * e.args[0] // billed_units
        elif e.op == "remove_mod":
            removed.add(e.args[0])
        elif e.op == "replace_mod":
            replaced[e.args[0]] = e.args[1]
        elif e.op == "add_mod":
            added.append(e.args[0])
        elif e.op == "repoint":
            old, new = e.args
            pointers = [new] if old == 0 else [new if p == old else p for p in pointers]
        elif e.op == "split":
            split = e.args[0]
            removed.add("50")
            if split == "two_lines_rt_lt":
                layout.append("RT")
        elif e.op == "merge":
            merge = e.args[0]
            removed.update(("RT", "LT"))
            layout.append("50")
    mods: list[str] = []
    for m in dict.fromkeys(line.get("modifiers") or []):
        if m in replaced:
            mods.append(replaced[m])
        elif m not in removed:
            mods.append(m)
    for m in added + layout:
        if m not in mods:
            mods.append(m)
    line["modifiers"] = mods
    line["dx"] = list(dict.fromkeys(pointers))
    if merge is not None:
        partner = all_lines[merge - 1]
        if partner.get("charge") is not None:
            cents = (cents or 0) + int(Decimal(partner["charge"]) * 100)
        line["documented"] = _merged_documentation(line.get("documented"), partner.get("documented"))
    copy = None
    if split is not None:
        copy = dict(line)
        if split == "two_lines_rt_lt":
            copy["modifiers"] = [m for m in mods if m != "RT"] + ["LT"]
        else:
            copy["modifiers"] = mods + ["50"]
        copy["dx"] = list(line["dx"])
        if cents is not None:
            copy["charge"] = _money(cents // 2)
            cents -= cents // 2
    if cents is not None:
        line["charge"] = _money(cents)
    return line, copy


def _merged_documentation(first: dict[str, Any] | None, second: dict[str, Any] | None) -> dict[str, Any] | None:
    if first is None and second is None:
        return None
    a = {k: v for k, v in (first or {}).items() if v is not None}
    b = {k: v for k, v in (second or {}).items() if v is not None}
    out = dict(a)
    for name, value in b.items():
        if name in ("side", "levels"):
            continue
        out.setdefault(name, value)
    if "side" in a or "side" in b:
        out["side"] = "bilateral"
    from .tokens import parse_level

    levels = list(a.get("levels") or [])
    seen = {parse_level(x) for x in levels}
    for text in b.get("levels") or []:
        if parse_level(text) not in seen:
            levels.append(text)
            seen.add(parse_level(text))
    if levels:
        out["levels"] = levels
    return out


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


def _describe(e: RawEdit, claim: Claim, view_to_new: dict[int, int]) -> Edit:
    line = claim.lines[e.line - 1]
    code = line.code
    kind = EDIT_KINDS[e.op][0]
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
        if not removes_units(e, claim):
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
        details.update({"format": e.args[0], "new_line": view_to_new.get(e.line + _SPLIT_OFFSET)})
        shape = "an RT line and an LT line" if e.args[0] == "two_lines_rt_lt" else \
            "a line without modifier and a line with 50"
        text = f"split bilateral line {e.line} ({code}-50) into {shape}"
    else:  # merge
        details.update({"with_line": e.args[0]})
        text = f"merge lines {e.line} and {e.args[0]} ({code}) into one line with modifier 50"
    return Edit(kind=kind, line=e.line, details=details, description=text, raw=e)


# --- candidates (for tests and kb checks) --------------------------------------------------------

def candidate_edits(repairer: Repairer, result: Result, history: HistoryProvider | None = None) -> list[RawEdit]:
    """Every edit the repair layer may choose for the claim of ``result`` (its ground choices)."""
    assert result.claim is not None
    ctl = repairer._control([result.claim], [result], history)
    out = [_raw_edit(a.symbol) for a in ctl.symbolic_atoms.by_signature("edit", 3)]
    return sorted(out, key=lambda e: (e.line, e.rank, e.term()))


# --- text report -------------------------------------------------------------------------------

def _line_text(number: int, line: dict[str, Any]) -> str:
    mods = "-".join(line.get("modifiers") or [])
    code = line["code"] + (f"-{mods}" if mods else "")
    units = line.get("units", 1)
    dx = ",".join(map(str, line.get("dx") or [])) or "-"
    charge = f"  {line['charge']:.2f}" if line.get("charge") is not None else ""
    return f"{number:>4}  {code:<18} {units} unit{'s' if units != 1 else ' '}  {line['date']}  dx {dx}{charge}"


def format_fix_report(results: Sequence[FixResult]) -> str:
    """The fixes as text for a person: before/after lines, each edit with what it resolves
    (claim text with control characters escaped)."""
    from .render import visible

    out: list[str] = []
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
        head = visible(f"{r.claim_id or '(no claim id)'}  {r.status.upper()}  {r.file} #{r.position}"
                       + (f"  payer {r.payer}" if r.payer else ""))
        if r.cost and r.edits:
            head += (f"  ({r.cost['edits']} edit{'s' if r.cost['edits'] != 1 else ''}, "
                     f"{r.cost['revenue_removed_cents'] / 100:.2f} removed"
                     + ("" if r.optimal else ", optimality not proven") + ")")
        out.append(head)
        for error in r.errors:
            out.append(f"  error   {visible(str(error.get('message')))}")
        if r.status in ("error",) or r.claim is None:
            out.append("")
            continue
        if r.edits:
            before = claim_dict(r.claim)
            out.append("  before:")
            out.extend("  " + _line_text(n, line) for n, line in enumerate(before["lines"], 1))
            out.append("  edits:")
            for e in r.edits:
                out.append(f"    {e.kind:<17} {e.description}")
                if e.details.get("supported_by"):
                    out.append(f"                      because {e.details['supported_by']}")
                for f in e.resolves:
                    out.append(f"      resolves {f.rule} [{f.severity}] line {','.join(map(str, f.lines))}: "
                               f"{visible(f.message)}")
            if r.corrected is not None:
                out.append("  after:")
                out.extend("  " + _line_text(n, line) for n, line in enumerate(r.corrected["lines"], 1))
        for f in r.remaining:
            out.append(f"  left     {f.rule} [deny] line {','.join(map(str, f.lines))}: {visible(f.message)}")
        if r.action_items:
            out.append("  action items:")
            for a in r.action_items:
                out.append(f"    {a.rule} [{a.severity}] line {','.join(map(str, a.lines))}: {visible(a.message)}")
                out.append(f"      to do: {a.action}")
        out.append("")
    order = ["clean", "fixed", "actions_only", "unfixable", "timeout", "error"]
    out.append(f"{len(results)} claim(s): " + ", ".join(f"{counts[k]} {k}" for k in order if k in counts))
    return "\n".join(out) + "\n"


# --- benchmark ---------------------------------------------------------------------------------

def bench_fix(n: int, seed: int, *, claims_per_solve: int = 100, workers: int = 1,
              timeout: float = 20.0, attribute: bool = True) -> dict[str, Any]:
    """Fix throughput on ``n`` generated claims that have deny findings (SPEC §12).

    Claims come from :func:`pain_asp.generate.generate_claims` (``seed``), in order; a first,
    untimed check keeps the first ``n`` with at least one deny finding (correctable or not).
    Each claim is judged with its own ``history`` (no batch history, so that the selection
    and the timed run see the same facts). The timed part is what ``pain-asp fix`` does
    after reading: loading the knowledge base, validation, the check, the repair solves
    (``claims_per_solve`` claims per clingo Control), the replays that attribute findings
    to edits, and the corrected claims with their findings. With ``workers > 1`` the claims
    are split into that many contiguous parts, each fixed by its own process. A result is
    counted as optimal only when the solver proved it.
    """
    import os
    import platform

    import clingo

    from .generate import generate_claims
    from .readers import validate_claim

    if n < 1 or workers < 1 or claims_per_solve < 1:
        raise ValueError("n, workers and claims_per_solve must be >= 1")
    options = RepairOptions(claims_per_solve=claims_per_solve, timeout=timeout, attribute=attribute)
    repairer = Repairer(options)
    payers = repairer.known_payers()
    chosen: list[dict[str, Any]] = []
    produced = 0
    stream = generate_claims(10 * n + 1000, seed)
    while len(chosen) < n:
        batch = [raw for _, raw in zip(range(2000), stream)]
        if not batch:
            break
        produced += len(batch)
        records = [validate_claim(raw, "bench", i, payers) for i, raw in enumerate(batch, 1)]
        for raw, result in zip(batch, repairer.checker.check(records)):
            if any(f.severity == "deny" for f in result.findings) and len(chosen) < n:
                chosen.append(raw)
    import resource

    start = time.perf_counter()
    cpu_self = resource.getrusage(resource.RUSAGE_SELF)
    cpu_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if workers == 1:
        summaries = _bench_part(chosen, options)
    else:
        from concurrent.futures import ProcessPoolExecutor

        size = -(-len(chosen) // workers)
        parts = [chosen[i:i + size] for i in range(0, len(chosen), size)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            summaries = [s for part in pool.map(_bench_part, parts, [options] * len(parts)) for s in part]
    elapsed = time.perf_counter() - start
    cpu = 0.0
    for who, before in ((resource.RUSAGE_SELF, cpu_self), (resource.RUSAGE_CHILDREN, cpu_children)):
        now = resource.getrusage(who)
        cpu += (now.ru_utime - before.ru_utime) + (now.ru_stime - before.ru_stime)
    statuses: dict[str, int] = {}
    for status, _, _ in summaries:
        statuses[status] = statuses.get(status, 0) + 1
    solved = [s for s in summaries if s[0] not in ("error", "timeout")]
    edits = [s[2] for s in solved]
    return {
        "claims": len(chosen), "generated": produced, "seed": seed, "workers": workers,
        "claims_per_solve": claims_per_solve, "seconds": round(elapsed, 3),
        "claims_per_s": round(len(chosen) / elapsed, 1) if elapsed else None,
        "cpu_seconds": round(cpu, 3), "claims_per_cpu_s": round(len(chosen) / cpu, 1) if cpu else None,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "optimal": sum(1 for s in solved if s[1]), "not_proven": sum(1 for s in solved if not s[1]),
        "statuses": dict(sorted(statuses.items())),
        "edits_total": sum(edits), "edits_max": max(edits, default=0),
        "cpus": os.cpu_count(), "python": platform.python_version(), "clingo": clingo.__version__,
        "command": f"python -m pain_asp.repair --claims {n} --seed {seed} --per-solve {claims_per_solve} "
                   f"--workers {workers}",
    }


def _bench_part(raws: list[dict[str, Any]], options: RepairOptions) -> list[tuple[str, bool, int]]:
    from .readers import validate_claim

    repairer = Repairer(options)
    payers = repairer.known_payers()
    records = [validate_claim(raw, "bench", i, payers) for i, raw in enumerate(raws, 1)]
    return [(f.status, f.optimal, len(f.edits)) for f in repairer.fix(records)]


def main(argv: list[str] | None = None) -> int:
    """``python -m pain_asp.repair``: the fix benchmark (figures as text, or JSON)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pain_asp.repair",
                                     description="Fix throughput on generated claims with deny findings.")
    parser.add_argument("--claims", type=int, default=2000, help="claims with deny findings to fix")
    parser.add_argument("--seed", type=int, default=1, help="generator seed")
    parser.add_argument("--per-solve", type=int, default=100, help="claims per clingo Control")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = bench_fix(args.claims, args.seed, claims_per_solve=args.per_solve, workers=args.workers)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"pain-asp fix bench: {figures['claims']:,} claims with deny findings "
              f"(of {figures['generated']:,} generated, seed {figures['seed']}), "
              f"{figures['claims_per_solve']} per solve, {figures['workers']} process(es)")
        print(f"  {figures['claims_per_s']:,.1f} claims/s ({figures['seconds']:.2f} s wall); target >= 500")
        print(f"  {figures['claims_per_cpu_s']:,.1f} claims per CPU second ({figures['cpu_seconds']:.2f} s CPU); "
              f"load average at the end {figures['load_average']}")
        print(f"  optimal (proven): {figures['optimal']:,}; not proven: {figures['not_proven']:,}; "
              f"statuses: {figures['statuses']}")
        print(f"  edits: {figures['edits_total']:,} in all, at most {figures['edits_max']} on a claim")
        print(f"  machine: {figures['cpus']} CPUs, Python {figures['python']}, clingo {figures['clingo']}")
        print(f"  reproduce: {figures['command']}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
