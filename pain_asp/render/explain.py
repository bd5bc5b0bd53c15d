"""The text of ``pain-asp explain`` (its JSON is the explanation itself)."""

from __future__ import annotations

from typing import Any

from .results import visible

__all__ = ["explanation_text"]


def explanation_text(explained: dict[str, Any]) -> str:
    """The explanation as text for a person (claim text with control characters escaped)."""
    out = [visible(f"claim {explained['claim_id']}: {explained['status']}  ({explained['file']})")]
    for error in explained["errors"]:
        out.append(f"  input error: {visible(error['message'])}")
    if not explained["explanations"] and not explained["errors"]:
        out.append("  no findings: every rule in force passed for this claim")
    for item in explained["explanations"]:
        out.append("")
        out.append(f"  {item['rule']} [{item['severity']}] {item['title']}")
        out.append(f"    why:      {visible(item['message'])}")
        denial = ", ".join(x for x in (item["carc"] and f"CARC {item['carc']}",
                                       item["rarc"] and f"RARC {item['rarc']}") if x)
        if denial:
            out.append(f"    denial:   {denial} (typical; the payer's own code may differ)")
        for line in item["triggered_by"]["lines"]:
            out.append(f"    fact:     {line}")
        for key, value in item["triggered_by"]["facts"].items():
            out.append(f"    fact:     {key} = {value}")
        for source in item["sources"]:
            eff = f", effective {source['effective']}" if source["effective"] else ""
            out.append(f"    source:   {source['document']}{eff} [{source['confidence']}]")
            if source["url"]:
                out.append(f"              {source['url']}")
        for param in item["payer_parameters"]:
            src = param["source"]
            out.append(f"    payer:    {item['payer']} {param['parameter']} = {param['value']} "
                       f"(since {param['since'] or 'the start'}; {src.get('document')} [{src.get('confidence')}])")
        out.append(f"    to pass:  {item['to_pass']}")
    passing = explained.get("what_would_make_it_pass")
    if passing and (passing["edits"] or passing["missing"]):
        out.append("")
        out.append(f"  what would make it pass ({passing['status']}):")
        for text in passing["edits"]:
            out.append(f"    edit:     {text}")
        for text in passing["missing"]:
            out.append(f"    needs:    {text}")
    return "\n".join(out) + "\n"
