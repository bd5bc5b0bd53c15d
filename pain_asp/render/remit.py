"""The text and JSON of ``pain-asp remit``: what the payer did against what the check predicted."""

from __future__ import annotations

import json
from typing import Optional

from ..modes.remit import Comparison
from .results import visible

__all__ = ["comparison_json", "comparison_text"]


def comparison_json(comparison: Comparison) -> str:
    """The comparison as one JSON document."""
    return json.dumps(comparison.as_dict(), indent=2, ensure_ascii=False) + "\n"


def _pct(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def comparison_text(c: Comparison) -> str:
    """For a person: what the payer did against what the check predicted."""
    data = c.as_dict()
    lines = data["lines"]
    rates = data["rates"]
    out = [
        f"Remittances: {', '.join(c.remittance_files)}",
        f"Claims: {c.matched:,} matched, {c.remitted_only:,} remitted only, {c.checked_only:,} checked only, "
        f"{c.reversed:,} reversed or voided" + (f", {c.unchecked:,} matched but not checked (input errors)"
                                                if c.unchecked else ""),
        f"Lines: {lines['predicted_denied']:,} predicted denied, {lines['confirmed']:,} confirmed, "
        f"{lines['false_alarm']:,} false alarms, {lines['missed']:,} missed, {lines['paid']:,} paid"
        + (f", {c.unmatched_lines:,} remitted lines with no checked line" if c.unmatched_lines else ""),
        f"Clean-claim rate: predicted {_pct(rates['predicted_clean_rate'])}, actual {_pct(rates['actual_clean_rate'])}",
        f"Denial rate:      predicted {_pct(rates['predicted_denial_rate'])}, actual {_pct(rates['actual_denial_rate'])}",
    ]
    if c.by_order:
        out.append(f"Note: claims whose lines were matched in order (no claim file): {c.by_order:,}; give "
                   "the claim files with --against to match lines by control number, code and date.")
    if data["rules"]:
        out.append("")
        out.append("Rules (lines):")
        width = max(len(r["rule"]) for r in data["rules"])
        for r in data["rules"]:
            out.append(f"  {r['rule']:<{width}}  predicted {r['predicted']:>5,}  confirmed {r['confirmed']:>5,}  "
                       f"false alarm {r['false_alarm']:>5,}  precision {_pct(r['precision']):>8}  "
                       f"CARC agrees {_pct(r['carc_agreement']):>8}")
    if data["missed_by_reason"]:
        out.append("")
        out.append("Denials no rule predicted (write these next):")
        for m in data["missed_by_reason"]:
            reason = (m["carc"] or "(no CARC)") + (f"/{m['rarc']}" if m["rarc"] else "")
            out.append(f"  CARC {reason}: lines {m['lines']:,}, ${m['amount']:,.2f}, codes {', '.join(m['codes']) or '-'}")
    if data["by_payer"]:
        out.append("")
        out.append("By payer:")
        for p in data["by_payer"]:
            pl = p["lines"]
            out.append(f"  {p['payer']}: {p['claims']:,} claims; denial rate predicted "
                       f"{_pct(p['predicted_denial_rate'])}, actual {_pct(p['actual_denial_rate'])}; lines "
                       f"{pl['confirmed']:,} confirmed, {pl['false_alarm']:,} false alarms, {pl['missed']:,} missed")
    if c.errors:
        out.append("")
        out.append(f"Problems in the remittance files: {len(c.errors):,}")
        out.extend(f"  {e}" for e in c.errors[:50])
        if len(c.errors) > 50:
            out.append(f"  ... and {len(c.errors) - 50:,} more (--format json lists them all)")
    # ids and codes come from the payer's file: escaped like every claim text
    return "\n".join(visible(line) for line in out) + "\n"
