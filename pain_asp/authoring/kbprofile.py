"""Where grounding time goes, rule by rule: ``pain-asp kb profile`` (docs/authoring.md, docs/scaling.md).

clingo reports no time per rule, so this measures it: generated claims (with history) are
checked once to get the whole model; a fresh Control then holds that model as facts and
every rule of the knowledge base in its own ``#program`` part, and each part is grounded
alone and timed. A rule's figure is what instantiating it costs against the finished
model (its body matches, the atoms it builds), minus the fixed cost of one ground call
(the time of the cheapest rule in the same run, which matches nothing). Rules run in their
file order; each is timed ``repeats`` times and the fastest run counts, so a busy machine
inflates the figures less. The figures rank rules; they do not add up exactly to a real
solve, which also parses the facts and derives the model in one pass.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["RuleCost", "Profile", "profile_kb"]


@dataclass
class RuleCost:
    """One rule: where it is, its text, and its ground time (seconds, fixed cost removed)."""

    file: str
    line: int
    text: str
    seconds: float


@dataclass
class Profile:
    """The per-rule ground times over ``claims`` generated claims."""

    claims: int
    model_atoms: int
    call_overhead: float
    rules: list[RuleCost] = field(default_factory=list)

    def by_file(self) -> list[tuple[str, float]]:
        """Each rule file's total, largest first."""
        totals: Counter[str] = Counter()
        for rule in self.rules:
            totals[rule.file] += rule.seconds
        return sorted(totals.items(), key=lambda item: (-item[1], item[0]))

    def total(self) -> float:
        """The sum over every rule."""
        return sum(rule.seconds for rule in self.rules)

    def text(self, top: int = 25) -> str:
        """A readable report: files, then the ``top`` rules."""
        total = self.total() or 1e-12
        per_claim = 1e6 / max(self.claims, 1)
        out = [f"pain-asp kb profile: {len(self.rules)} rules over {self.claims} generated claims "
               f"({self.model_atoms:,} atoms in the model); ground time per rule, fixed cost of a "
               f"ground call ({self.call_overhead * 1000:.2f} ms) removed", "", "by file:"]
        for file, seconds in self.by_file():
            out.append(f"  {100 * seconds / total:5.1f} %  {seconds * per_claim:7.2f} us/claim  {file}")
        out += ["", f"top {top} rules:"]
        for rule in sorted(self.rules, key=lambda r: (-r.seconds, r.file, r.line))[:top]:
            text = rule.text if len(rule.text) <= 110 else rule.text[:107] + "..."
            out.append(f"  {100 * rule.seconds / total:5.1f} %  {rule.seconds * per_claim:7.2f} us/claim  "
                       f"{rule.file}:{rule.line}  {text}")
        return "\n".join(out) + "\n"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"claims": self.claims, "model_atoms": self.model_atoms,
                "call_overhead_s": self.call_overhead,
                "files": [{"file": f, "seconds": s} for f, s in self.by_file()],
                "rules": [vars(r) for r in self.rules]}


def profile_kb(claims: int = 1000, seed: int = 1, repeats: int = 3, kb_dir: str | None = None) -> Profile:
    """Time the grounding of every rule of the knowledge base over ``claims`` generated claims."""
    import clingo
    from clingo import ast

    from ..bench.generate import generate_claims
    from ..engine import Checker, CheckOptions
    from ..history import batch_history
    from ..inputs.records import validate_claim
    from ..kb import main_file
    from ..program import named_anonymous, program_text

    checker = Checker(CheckOptions(kb_dir=kb_dir))
    payers = checker.known_payers()
    records = [validate_claim(raw, "profile", n, payers)
               for n, raw in enumerate(generate_claims(claims, seed), start=1)]
    valid = [r.claim for r in records if r.claim is not None]
    facts = checker.facts(valid, batch_history(valid))
    main = main_file(checker.kb)

    whole = clingo.Control(["--warn=none"])
    whole.add("base", [], program_text([main]))
    whole.add("base", [], facts)
    whole.ground([("base", [])])
    model = "\n".join(f"{atom.symbol}." for atom in whole.symbolic_atoms if atom.is_fact)
    atoms = len(whole.symbolic_atoms)
    del whole

    statements: list[Any] = []
    ast.parse_files([str(main)], statements.append)
    # Each rule as check grounds it (pain_asp/program.py): anonymous body variables named.
    rules = named_anonymous([s for s in statements if s.ast_type == ast.ASTType.Rule and len(s.body) > 0])
    root = Path(checker.kb).resolve()
    best = [float("inf")] * len(rules)
    for _ in range(max(1, repeats)):
        ctl = clingo.Control(["--warn=none"])
        ctl.add("base", [], model)
        with ast.ProgramBuilder(ctl) as builder:
            for i, rule in enumerate(rules):
                builder.add(ast.Program(rule.location, f"rule_{i}", []))
                builder.add(rule)
        ctl.ground([("base", [])])
        for i in range(len(rules)):
            start = time.process_time()
            ctl.ground([(f"rule_{i}", [])])
            best[i] = min(best[i], time.process_time() - start)
    overhead = min(best, default=0.0)
    out = Profile(claims=len(valid), model_atoms=atoms, call_overhead=overhead)
    for rule, seconds in zip(rules, best):
        where = Path(rule.location.begin.filename).resolve()
        try:
            name = str(where.relative_to(root))
        except ValueError:
            name = str(where)
        out.rules.append(RuleCost(name, rule.location.begin.line, " ".join(str(rule).split()),
                                  max(0.0, seconds - overhead)))
    return out
