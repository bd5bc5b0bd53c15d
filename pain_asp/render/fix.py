"""The text of ``pain-asp fix`` (its JSON is each fix's ``as_dict``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..modes.fix import FixResult, claim_dict
from .results import visible

__all__ = ["format_fix_report"]


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
