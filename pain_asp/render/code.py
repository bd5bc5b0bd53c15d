"""What ``pain-asp code`` prints: the text for a person, the JSON, or the claim alone."""

from __future__ import annotations

import json
from typing import Any

from ..inputs.encounter import device_phrases
from ..kb import code_catalog
from ..modes.code import CodeResult
from .results import Style

__all__ = ["coded_output", "render_code_text"]


def coded_output(coded: Any, reading: Any, fmt: str, colour: bool = False) -> str:
    """What ``pain-asp code --format fmt`` prints for a coded encounter (text, json or claim)."""
    if fmt == "claim":
        return json.dumps(coded.claim_dict(), indent=2) + "\n"
    if fmt == "json":
        out = coded.as_dict()
        if reading is not None:
            out = {"reading": {"text": reading.text,
                               "recognised": [r.as_dict() for r in reading.recognised],
                               "unrecognised": reading.unrecognised}, **out}
        return json.dumps(out, indent=2, default=str) + "\n"
    return render_code_text(coded, reading, colour)


def render_code_text(coded: CodeResult, reading: Any = None, colour: bool = False) -> str:
    """The coded lines, the encounter read, notes and findings, for a person."""
    style = Style(colour)
    enc = coded.encounter
    labels = code_catalog()
    out = [style("Encounter", "bold") + f"  {enc.payer}  place of service {enc.place_of_service}  "
           f"{enc.date.isoformat()}  diagnoses: {', '.join(enc.diagnoses) or 'none'}"]
    for n, proc in enumerate(enc.procedures, start=1):
        parts = [proc.procedure]
        for name in ("side", "guidance", "purpose"):
            value = getattr(proc, name)
            if value is not None:
                parts.append(f"{name} {value}")
        if proc.levels:
            parts.append("levels " + ", ".join(proc.levels))
        if proc.nerves:
            parts.append("nerves " + ", ".join(proc.nerves))
        if proc.muscles:
            parts.append("muscles " + ", ".join(proc.muscles))
        if proc.minutes is not None:
            parts.append(f"{proc.minutes} minutes")
        if proc.separate_problem is not None:
            parts.append("separate problem" if proc.separate_problem else "procedure decision only")
        parts.extend(device_phrases(proc))
        out.append(f"  {n}. " + "; ".join(parts))
    if reading is not None:
        out.append(style("Read from", "bold") + f"  {reading.text!r}")
        out.append("  recognised:     " + ("; ".join(f"{r.text!r} = {r.meaning}" for r in reading.recognised)
                                          or "nothing"))
        out.append("  not recognised: " + (", ".join(repr(w) for w in reading.unrecognised) or "none"))
    out.append("")
    out.append(style("Lines", "bold"))
    for n, line in enumerate(coded.claim.lines, start=1):
        mods = "-".join(line.modifiers)
        shown = line.code + (f"-{mods}" if mods else "")
        owner = coded.line_procedures[n - 1]
        label = labels[line.code].label if line.code in labels else ""
        pointers = ",".join(map(str, line.dx)) or "-"
        out.append(f"  {n:>2}  {shown:<16} x{line.units:<3} dx {pointers:<8} "
                   f"{'proc ' + str(owner) if owner else 'guidance'}  {label}")
    if coded.notes:
        out.append("")
        out.append(style("Notes", "bold"))
        out.extend(f"  - {note}" for note in coded.notes)
    out.append("")
    status = coded.status
    out.append(style("Check", "bold") + "  " + style(status.upper(), status))
    for f in coded.result.findings:
        denial = "/".join(x for x in (f.carc and f"CARC {f.carc}", f.rarc and f"RARC {f.rarc}") if x)
        out.append(f"  {style(f.severity.ljust(6), f.severity)}  {f.rule}  line {','.join(map(str, f.lines))}"
                   + (f"  {style(denial, 'dim')}" if denial else ""))
        out.append(f"          {f.message}")
        if f.fix:
            out.append(f"          fix: {f.fix}")
    return "\n".join(out) + "\n"
