"""The denial report: one self-contained HTML page for a checked batch (``pain-asp report``).

A billing manager wants to see where the money is lost. The report reads check results
(``pain-asp check --format jsonl`` or ``json`` output) or claim files (which it checks
first, with the batch machinery of :mod:`pain_asp.modes.check`), or both (results, plus the claim
files for the line charges), and writes one HTML file with:

* the clean-claim rate and the claims by status;
* findings by severity, by rule, by CARC (denials), by payer and by procedure code;
* charges at risk: the billed charges of the lines named by a ``deny`` finding (each line
  counted once per claim; per rule, a line denied by two rules counts for both);
* the most frequent fixes (the rule's fix hint, or the action for what no edit can fix);
* the claims to work first, and drill-down tables from each rule to its claims.

Charts are inline SVG; the page has no script, no external style sheet, font or image,
and no link that leaves the page, so it opens offline and can be mailed as one file. Only
claim ids, payer ids, codes and the findings' own messages appear: no patient id, name or
birth date (docs/architecture.md). The same input gives the same bytes.

Memory stays flat: results are aggregated as they are read; the drill-down tables keep at
most :data:`DRILL_ROWS` claims per rule and the work list :data:`WORK_ROWS` claims.
"""

from __future__ import annotations

import heapq
import html
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import msgspec

from ..inputs.records import json_problem, load_json
from ..vocabulary import SEVERITIES, SEVERITY_RANK, STATUSES

__all__ = ["ReportData", "build_report", "read_results", "is_results_file", "render_html",
           "DRILL_ROWS", "WORK_ROWS"]

DRILL_ROWS = 100     # claims listed under each rule
WORK_ROWS = 200      # claims in the "work first" list
ERROR_ROWS = 100     # input errors listed
CHART_ROWS = 15      # bars per chart

COLOURS = {"clean": "#2e7d32", "info": "#0288d1", "warn": "#8e24aa", "review": "#f9a825",
           "deny": "#c62828", "error": "#455a64"}

LineInfo = tuple[str, Optional[int]]   # (code, charge in cents or None)


@dataclass
class _Tally:
    """Counts for one rule, payer, code or CARC."""

    findings: int = 0
    claims: int = 0
    deny_lines: int = 0
    at_risk: int = 0           # cents
    severities: dict[str, int] = field(default_factory=dict)
    billed: int = 0            # cents (payers)
    clean: int = 0             # claims with no finding (payers)
    denied_claims: int = 0     # claims with a deny finding (payers)

    def count(self, key: str, seen_in_claim: set[str], severity: str | None = None) -> None:
        """Count one finding under ``key`` (its severity too, when given), and its claim once:
        ``seen_in_claim`` holds the keys already counted for the claim being read."""
        self.findings += 1
        if severity is not None:
            self.severities[severity] = self.severities.get(severity, 0) + 1
        if key not in seen_in_claim:
            self.claims += 1
            seen_in_claim.add(key)


@dataclass
class ReportData:
    """Everything the page shows, aggregated one result at a time (:meth:`add`)."""

    claims: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    severities: dict[str, int] = field(default_factory=dict)
    findings: int = 0
    charges_known: bool = False      # some claim's line charges were available
    billed: int = 0                  # cents, all lines with a charge
    at_risk: int = 0                 # cents, deny lines
    deny_lines: int = 0
    deny_lines_without_charge: int = 0
    rules: dict[str, _Tally] = field(default_factory=dict)
    rule_titles: dict[str, str] = field(default_factory=dict)
    payers: dict[str, _Tally] = field(default_factory=dict)
    codes: dict[str, _Tally] = field(default_factory=dict)
    carcs: dict[str, _Tally] = field(default_factory=dict)
    fix_examples: dict[str, str] = field(default_factory=dict)
    drill: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    work: list[tuple[Any, ...]] = field(default_factory=list)   # heap: the claims to work first
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0
    malformed: list[str] = field(default_factory=list)   # results records that are not results (first ERROR_ROWS)
    sources: list[str] = field(default_factory=list)
    not_cms_tables: set[str] = field(default_factory=set)   # NCCI tables in use that are not CMS's
    _order: int = 0

    def add(self, result: dict[str, Any], lines: Optional[list[LineInfo]] = None) -> None:
        """Count one check result (a ``check --format jsonl`` record); ``lines`` gives its
        lines' codes and charges when the claim is known."""
        self.claims += 1
        self._order += 1
        ncci = result.get("ncci_data")
        if isinstance(ncci, dict) and isinstance(ncci.get("not_cms"), list):
            self.not_cms_tables.update(str(ncci.get(kind)) for kind in ncci["not_cms"] if kind in ncci)
        status = str(result.get("status", "error"))
        self.statuses[status] = self.statuses.get(status, 0) + 1
        claim_id = result.get("claim_id")
        payer = str(result.get("payer") or "(unknown)")
        if status == "error" or result.get("errors"):
            self.error_count += 1
            if result.get("malformed") and len(self.malformed) < ERROR_ROWS:
                self.malformed.append(result["errors"][0]["message"])
            if len(self.errors) < ERROR_ROWS:
                for error in result.get("errors") or [{}]:
                    self.errors.append({"claim_id": claim_id, "position": result.get("position"),
                                        "message": str(error.get("message", "unreadable claim"))})
                    if len(self.errors) >= ERROR_ROWS:
                        break
            return
        findings = list(result.get("findings") or [])
        if lines is not None:
            self.charges_known = True
        ptally = self.payers.setdefault(payer, _Tally())
        ptally.claims += 1
        ptally.findings += len(findings)
        if status == "clean":
            ptally.clean += 1
        if lines is not None:
            billed = sum(c for _, c in lines if c is not None)
            self.billed += billed
            ptally.billed += billed

        denied: set[int] = set()
        rules_here: set[str] = set()
        codes_here: set[str] = set()
        carcs_here: set[str] = set()
        for finding in findings:
            rule = str(finding.get("rule"))
            severity = str(finding.get("severity"))
            numbers = [n for n in finding.get("lines") or [] if isinstance(n, int)]
            self.findings += 1
            self.severities[severity] = self.severities.get(severity, 0) + 1
            self.rule_titles.setdefault(rule, str(finding.get("title") or rule))
            tally = self.rules.setdefault(rule, _Tally())
            tally.count(rule, rules_here, severity)
            if finding.get("fix") and rule not in self.fix_examples:
                self.fix_examples[rule] = str(finding["fix"])
            codes = [str(c) for c in finding.get("codes") or []]
            for code in codes:
                self.codes.setdefault(code, _Tally()).count(code, codes_here, severity)
            if severity == "deny":
                carc = str(finding.get("carc") or "(none)")
                if finding.get("rarc"):
                    carc += f" / {finding['rarc']}"
                ktally = self.carcs.setdefault(carc, _Tally())
                ktally.count(carc, carcs_here)
                rule_lines = set(numbers)
                tally.deny_lines += len(rule_lines)
                ktally.deny_lines += len(rule_lines)
                if lines is not None:
                    cost = _cost(rule_lines, lines)
                    tally.at_risk += cost
                    ktally.at_risk += cost
                denied |= rule_lines
            drill = self.drill.setdefault(rule, [])
            if len(drill) < DRILL_ROWS:
                drill.append({"claim_id": claim_id, "payer": payer, "severity": severity,
                              "lines": numbers, "codes": codes, "message": finding.get("message"),
                              "fix": finding.get("fix")})

        if denied:
            ptally.denied_claims += 1
            self.deny_lines += len(denied)
            ptally.deny_lines += len(denied)
        cost = 0
        if lines is not None and denied:
            cost = _cost(denied, lines)
            self.deny_lines_without_charge += sum(
                1 for n in denied if 0 < n <= len(lines) and lines[n - 1][1] is None)
            self.at_risk += cost
            ptally.at_risk += cost
            for n in sorted(denied):
                if 0 < n <= len(lines):
                    code, cents = lines[n - 1]
                    ctally = self.codes.setdefault(code, _Tally())
                    ctally.deny_lines += 1
                    ctally.at_risk += cents or 0
        elif denied:
            for finding in findings:
                if finding.get("severity") == "deny":
                    for code in finding.get("codes") or []:
                        self.codes.setdefault(str(code), _Tally()).deny_lines += 1
        if status != "clean":
            worst = min((SEVERITY_RANK.get(str(f.get("severity")), 9) for f in findings), default=9)
            # Best first is the smallest (no denial?, -cost, -denied lines, worst severity,
            # order); the heap holds the negated key so that its root is the weakest claim kept.
            negated = (-(0 if denied else 1), cost, len(denied), -worst, -self._order)
            entry = (negated, self._order, {
                "claim_id": claim_id, "payer": payer, "status": status, "deny_lines": sorted(denied),
                "at_risk": cost if lines is not None else None,
                "rules": sorted(rules_here, key=lambda r: (_rule_rank(findings, r), r)),
                "findings": len(findings)})
            if len(self.work) < WORK_ROWS:
                heapq.heappush(self.work, entry)
            else:
                heapq.heappushpop(self.work, entry)

    def work_list(self) -> list[dict[str, Any]]:
        """The claims to work first: denials with the most money at stake, then the rest."""
        return [row for _, _, row in sorted(self.work, key=lambda entry: entry[0], reverse=True)]


def _cost(numbers: Iterable[int], lines: list[LineInfo]) -> int:
    return sum(lines[n - 1][1] or 0 for n in numbers if 0 < n <= len(lines))


def _rule_rank(findings: list[dict[str, Any]], rule: str) -> int:
    return min((SEVERITY_RANK.get(str(f.get("severity")), 9) for f in findings if f.get("rule") == rule), default=9)


# --- reading ------------------------------------------------------------------------------------

def _first_record(path: Path) -> Any:
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            for text in handle:
                if text.strip():
                    return _parsed(text)
            return None
        if path.suffix.lower() == ".json":
            data = _parsed(handle.read())
            return data[0] if isinstance(data, list) and data else data
    return None


def _parsed(text: str) -> Any:
    """JSON text read as a claim file is (:func:`pain_asp.inputs.records.load_json`), or None."""
    try:
        return load_json(text)
    except (ValueError, RecursionError):
        return None


def _looks_like_result(record: Any) -> bool:
    return (isinstance(record, dict) and "status" in record and "lines" not in record
            and ("findings" in record or "errors" in record))


def is_results_file(path: str | Path) -> bool:
    """True when ``path`` holds check results (JSON Lines or JSON), not claims."""
    path = Path(path)
    if path.is_dir() or path.suffix.lower() not in (".jsonl", ".ndjson", ".json"):
        return False
    return _looks_like_result(_first_record(path))


class _FindingShape(msgspec.Struct):
    """What the report reads of a finding (other keys are ignored)."""

    rule: str
    severity: str
    lines: list[int] = []
    codes: list[str] = []
    title: Optional[str] = None
    carc: Optional[str] = None
    rarc: Optional[str] = None
    message: Optional[str] = None
    fix: Optional[str] = None


class _ErrorShape(msgspec.Struct):
    message: str = "unreadable claim"


class _ResultShape(msgspec.Struct):
    """What the report reads of a check result record."""

    status: str
    claim_id: Optional[str] = None
    payer: Optional[str] = None
    position: Optional[int] = None
    findings: list[_FindingShape] = []
    errors: list[_ErrorShape] = []


def _shape_problem(item: Any) -> Optional[str]:
    """Why ``item`` is not a check result record the report can count, or None."""
    if not _looks_like_result(item):
        return "expected a JSON object with status and findings or errors (the output of pain-asp check --format jsonl)"
    try:
        shape = msgspec.convert(item, _ResultShape)
    except msgspec.ValidationError as exc:
        return str(exc).replace("`$.", "`")   # msgspec names the type expected and where, not the value
    if shape.status not in STATUSES:
        return f"expected status to be one of {', '.join(STATUSES)}"
    for number, finding in enumerate(shape.findings):
        if finding.severity not in SEVERITIES:
            return f"expected findings[{number}].severity to be one of {', '.join(SEVERITIES)}"
    return None


def _malformed(where: str, problem: str) -> dict[str, Any]:
    """The error record that stands for a results record the report cannot read."""
    return {"status": "error", "claim_id": None, "position": None, "malformed": True,
            "errors": [{"message": f"{where}: not a check result record: {problem}"}]}


def read_results(path: str | Path) -> Iterator[dict[str, Any]]:
    """The result records of a ``check --format jsonl`` (or ``json``) output file; a record that
    is not one comes as an error record naming the file, the line (or record) and what was expected."""
    path = Path(path)
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        if path.suffix.lower() == ".json":
            data = load_json(handle.read())  # a results file: its first record parsed (is_results_file)
            items = data if isinstance(data, list) else [data]
            for number, item in enumerate(items, start=1):
                problem = _shape_problem(item)
                yield item if problem is None else _malformed(f"{path} record {number}", problem)
            return
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                item = load_json(text)
            except json.JSONDecodeError as exc:
                yield _malformed(f"{path}:{number}", f"expected one JSON object on the line ({exc.msg})")
                continue
            except RecursionError:
                yield _malformed(f"{path}:{number}", "expected a JSON object, not one nested this deep")
                continue
            except ValueError as exc:  # a repeated key, a number too long, half a surrogate pair
                yield _malformed(f"{path}:{number}", f"expected {json_problem(exc)}")
                continue
            problem = _shape_problem(item)
            yield item if problem is None else _malformed(f"{path}:{number}", problem)


def _claim_lines(claim: Any) -> list[LineInfo]:
    return [(line.code, int(line.charge * 100) if line.charge is not None else None)
            for line in claim.lines]


def build_report(files: Iterable[str | Path], *, checker: Any = None, history_db: Any = None,
                 batch_options: Any = None, progress: Any = None,
                 on_result: Optional[Callable[[dict[str, Any]], None]] = None) -> ReportData:
    """Aggregate results files, or check claim files first; both: charges from the claims.
    ``on_result`` sees every result record as it is counted (``report --remit`` keeps them)."""
    from ..modes.check import BatchOptions, iter_checked

    paths = [Path(p) for p in files]
    result_files = [p for p in paths if is_results_file(p)]
    claim_files = [p for p in paths if p not in result_files]
    data = ReportData(sources=[p.name for p in paths])
    if result_files:
        charges: dict[str, list[LineInfo]] = {}
        if claim_files:
            from ..inputs.readers import read_claims

            for record in read_claims(claim_files):
                if record.claim is not None:
                    charges.setdefault(record.claim.claim_id, _claim_lines(record.claim))
        for path in result_files:
            for result in read_results(path):
                claim_id = result.get("claim_id")
                data.add(result, charges.get(claim_id) if claim_files and claim_id is not None else None)
                if on_result is not None:
                    on_result(result)
        return data
    options = batch_options or BatchOptions()
    options.fmt, options.with_charges = "jsonl", True
    for item in iter_checked(claim_files, checker, history_db=history_db, options=options,
                             progress=progress):
        result = json.loads(item.text)
        data.add(result, item.charges)
        if on_result is not None:
            on_result(result)
    return data


# --- HTML ---------------------------------------------------------------------------------------

def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _money(cents: Optional[int]) -> str:
    return "n/a" if cents is None else f"${cents / 100:,.2f}"


def _count(number: int, noun: str) -> str:
    """``1 finding``, ``2 findings``, ``1,204 claims``."""
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "n/a"


def _anchor(kind: str, key: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in key)
    return f"{kind}-{safe}"


def _bar_chart(title: str, rows: list[tuple[str, float, str, Optional[str], str]], chart_id: str) -> str:
    """A horizontal bar chart as inline SVG: rows of (label, value, colour, link, value text)."""
    if not rows:
        return f'<p class="empty">No data for {_e(title.lower())}.</p>'
    label_w, bar_w, value_w, row_h, top = 230, 380, 130, 24, 8
    width = label_w + bar_w + value_w
    height = top * 2 + row_h * len(rows)
    peak = max(v for _, v, _, _, _ in rows) or 1
    parts = [f'<svg class="chart" id="{_e(chart_id)}" role="img" aria-labelledby="{_e(chart_id)}-t" '
             f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'xmlns="http://www.w3.org/2000/svg"><title id="{_e(chart_id)}-t">{_e(title)}</title>']
    for n, (label, value, colour, link, shown) in enumerate(rows):
        y = top + n * row_h
        length = max(1.0, bar_w * value / peak) if value > 0 else 0.0
        text = label if len(label) <= 34 else label[:33] + "\u2026"
        bar = (f'<rect x="{label_w}" y="{y + 4}" width="{length:.1f}" height="{row_h - 8}" '
               f'fill="{colour}" rx="2"><title>{_e(label)}: {_e(shown)}</title></rect>')
        label_svg = (f'<text x="{label_w - 8}" y="{y + row_h / 2 + 4:.1f}" text-anchor="end" '
                     f'class="lbl">{_e(text)}</text>')
        if link:
            label_svg = f'<a href="#{_e(link)}">{label_svg}</a>'
            bar = f'<a href="#{_e(link)}">{bar}</a>'
        parts.append(label_svg + bar + f'<text x="{label_w + length + 6:.1f}" y="{y + row_h / 2 + 4:.1f}" '
                     f'class="val">{_e(shown)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _status_chart(data: ReportData) -> str:
    """Claims by status as one stacked bar with a legend (inline SVG)."""
    width, height = 740, 64
    total = data.claims or 1
    parts = [f'<svg class="chart" id="chart-status" role="img" aria-labelledby="chart-status-t" '
             f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'xmlns="http://www.w3.org/2000/svg"><title id="chart-status-t">Claims by status</title>']
    x = 0.0
    legend_x = 0
    for status in STATUSES:
        count = data.statuses.get(status, 0)
        if not count:
            continue
        w = width * count / total
        parts.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="28" fill="{COLOURS[status]}">'
                     f'<title>{status}: {count:,} ({_pct(count, data.claims)})</title></rect>')
        x += w
        parts.append(f'<rect x="{legend_x}" y="40" width="12" height="12" fill="{COLOURS[status]}"/>'
                     f'<text x="{legend_x + 16}" y="51" class="lbl">{status} {count:,}</text>')
        legend_x += 122
    parts.append("</svg>")
    return "".join(parts)


def _table(headers: list[str], rows: list[list[str]], cls: str = "", numeric: Iterable[int] = ()) -> str:
    right = set(numeric)
    head = "".join(f'<th{" class=num" if i in right else ""} scope="col">{h}</th>'
                   for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td{" class=num" if i in right else ""}>{c}</td>'
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _badge(severity: str) -> str:
    return f'<span class="badge {_e(severity)}">{_e(severity)}</span>'


def _sev_mix(severities: dict[str, int]) -> str:
    return " ".join(f"{_badge(s)}&nbsp;{severities[s]:,}" for s in SEVERITIES if severities.get(s))


_CSS = """
:root{--ink:#1c2430;--mute:#5f6b7a;--line:#dde3ea;--bg:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 -apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
color:var(--ink);background:#fff}
header{background:#18324a;color:#fff;padding:20px 32px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;color:#c9d6e3}main{padding:16px 32px 40px;max-width:1200px}
h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}.warning{color:#8a3b00;font-weight:600}.note{color:var(--mute);font-size:12.5px;margin:4px 0 10px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-top:8px}
.card{border:1px solid var(--line);border-radius:6px;padding:10px 14px;min-width:170px;background:var(--bg)}
.card .v{font-size:22px;font-weight:600}
.card .k{color:var(--mute);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
table{border-collapse:collapse;margin:8px 0 4px;width:100%;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600}td.num,th.num{text-align:right;white-space:nowrap}
tbody tr:nth-child(even){background:#fbfcfd}
.chart{max-width:100%;height:auto;display:block;margin:6px 0}.chart .lbl{font-size:12px;fill:var(--ink)}
.chart .val{font-size:11.5px;fill:var(--mute)}
.badge{display:inline-block;border-radius:3px;padding:0 5px;font-size:11px;color:#fff;font-weight:600}
.badge.deny{background:#c62828}.badge.review{background:#b7791f}.badge.warn{background:#8e24aa}
.badge.info{background:#0288d1}.badge.clean{background:#2e7d32}.badge.error{background:#455a64}
details{border:1px solid var(--line);border-radius:6px;margin:6px 0;padding:4px 10px}
summary{cursor:pointer;font-weight:600}code{font-size:12.5px}
.two{display:grid;grid-template-columns:minmax(0,1fr);gap:8px}
footer{color:var(--mute);font-size:12px;padding:16px 32px;border-top:1px solid var(--line)}
.empty{color:var(--mute)}
"""


def render_html(data: ReportData, rules: Optional[dict[str, Any]] = None, remittance: Any = None) -> str:
    """The report page. ``rules`` (rule id -> :class:`~pain_asp.kb.Rule`) adds fix hints and actions;
    ``remittance`` (a :class:`~pain_asp.modes.remit.Comparison`) adds what the payer actually did."""
    rules = rules or {}
    out: list[str] = []
    add = out.append
    checked = data.claims - data.error_count
    clean = data.statuses.get("clean", 0)
    denied = data.statuses.get("deny", 0)
    sources = ", ".join(data.sources[:6]) + (f" and {len(data.sources) - 6} more" if len(data.sources) > 6 else "")

    add('<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="generator" content="pain-asp report">'
        f'<title>Denial report: {_count(data.claims, "claim")}</title><style>{_CSS}</style></head><body>')
    add(f'<header><h1>Denial report</h1><p>{_count(data.claims, "claim")} from {_e(sources)} \u00b7 '
        f'{_count(len(data.payers), "payer")} \u00b7 {_count(data.findings, "finding")}</p>')
    if data.not_cms_tables:
        add('<p class="warning" id="ncci-data">NCCI data: these claims were checked with tables that are '
            'not CMS\'s, so PTP, MUE and add-on edits CMS would apply may be missing: '
            + "; ".join(_e(name) for name in sorted(data.not_cms_tables))
            + '. Import CMS\'s quarterly files with <code>pain-asp data import-ncci</code>.</p>')
    add('</header><main>')

    # summary cards
    cards = [
        ("Claims", f"{data.claims:,}"),
        ("Clean-claim rate", _pct(clean, data.claims)),
        ("Claims with a denial", f"{denied:,} ({_pct(denied, data.claims)})"),
        ("Charges at risk", _money(data.at_risk) if data.charges_known else "n/a"),
        ("Findings", f"{data.findings:,}"),
        ("Unreadable claims", f"{data.error_count:,}"),
    ]
    add('<section id="summary"><h2>Summary</h2><div class="cards">' + "".join(
        f'<div class="card"><div class="k">{_e(k)}</div><div class="v">{_e(v)}</div></div>'
        for k, v in cards) + "</div>")
    add(f'<p class="note">Clean claims have no finding at all; {clean:,} of {_count(data.claims, "claim")} '
        f'({checked:,} readable). A claim with a denial has at least one <em>deny</em> finding: the payer '
        'is expected to deny those lines as billed. ')
    if data.charges_known:
        add(f'Charges at risk add up the billed charges of the {_count(data.deny_lines, "line")} named by a deny '
            f'finding (each line once per claim), out of {_money(data.billed)} billed '
            f'({_pct(data.at_risk, data.billed)}).')
        if data.deny_lines_without_charge:
            add(f' {_count(data.deny_lines_without_charge, "denied line")} '
                f'{"carries" if data.deny_lines_without_charge == 1 else "carry"} no charge and count as $0.')
    else:
        add('Charges at risk need the claims: run <code>pain-asp report RESULTS.jsonl CLAIMS.jsonl</code> '
            'or report on the claim files directly.')
    add("</p></section>")

    if remittance is not None:
        add(_remittance_section(remittance))

    # status
    add('<section id="status"><h2>Claims by status</h2>' + _status_chart(data))
    add(_table(["Status", "Claims", "Share"],
               [[_badge(s), f"{data.statuses.get(s, 0):,}", _pct(data.statuses.get(s, 0), data.claims)]
                for s in STATUSES if data.statuses.get(s)], "status", (1, 2)) + "</section>")

    # severity
    add('<section id="by-severity"><h2>Findings by severity</h2>')
    add(_bar_chart("Findings by severity", [
        (s, data.severities.get(s, 0), COLOURS[s], None, f"{data.severities.get(s, 0):,}")
        for s in SEVERITIES if data.severities.get(s)], "chart-severity"))
    add('<p class="note">deny: will be denied as billed \u00b7 review: needs a documentation check \u00b7 '
        'warn: audit or payment risk \u00b7 info: revenue left on the table.</p></section>')

    # rules
    by_rule = sorted(data.rules.items(), key=lambda kv: (-kv[1].at_risk, -kv[1].findings, kv[0]))
    add('<section id="by-rule"><h2>Findings by rule</h2>')
    chart_rules = sorted(data.rules.items(), key=lambda kv: (-kv[1].findings, kv[0]))[:CHART_ROWS]
    add(_bar_chart("Findings by rule", [
        (rule, t.findings, COLOURS[_worst(t.severities)], _anchor("rule", rule), f"{t.findings:,}")
        for rule, t in chart_rules], "chart-rules"))
    add(_table(["Rule", "Title", "Findings", "Claims", "Severities", "Denied lines", "Charges at risk"],
               [[f'<a href="#{_anchor("rule", rule)}"><code>{_e(rule)}</code></a>',
                 _e(data.rule_titles.get(rule, rule)),
                 f"{t.findings:,}", f"{t.claims:,}", _sev_mix(t.severities), f"{t.deny_lines:,}",
                 _money(t.at_risk) if data.charges_known else "n/a"] for rule, t in by_rule],
               "rules", (2, 3, 5, 6)))
    add('<p class="note">Sorted by charges at risk, then findings. A line denied by two rules counts '
        'for both, so the rule column adds up to more than the total.</p></section>')

    # CARC
    add('<section id="by-carc"><h2>Denials by CARC</h2>')
    carcs = sorted(data.carcs.items(), key=lambda kv: (-kv[1].findings, kv[0]))
    add(_bar_chart("Deny findings by CARC / RARC", [
        (carc, t.findings, COLOURS["deny"], None, f"{t.findings:,}") for carc, t in carcs[:CHART_ROWS]],
        "chart-carc"))
    add(_table(["CARC / RARC", "Deny findings", "Claims", "Denied lines", "Charges at risk"],
               [[_e(carc), f"{t.findings:,}", f"{t.claims:,}", f"{t.deny_lines:,}",
                 _money(t.at_risk) if data.charges_known else "n/a"] for carc, t in carcs],
               "carc", (1, 2, 3, 4)))
    add('<p class="note">The claim adjustment reason (and remark) code a payer would likely send for each '
        'deny finding.</p></section>')

    # payers
    add('<section id="by-payer"><h2>By payer</h2>')
    payers = sorted(data.payers.items(), key=lambda kv: (-kv[1].at_risk, -kv[1].denied_claims, kv[0]))
    if data.charges_known:
        add(_bar_chart("Charges at risk by payer", [
            (p, t.at_risk / 100, COLOURS["deny"], None, _money(t.at_risk)) for p, t in payers[:CHART_ROWS]],
            "chart-payers"))
    else:
        add(_bar_chart("Claims with a denial by payer", [
            (p, t.denied_claims, COLOURS["deny"], None, f"{t.denied_claims:,}") for p, t in payers[:CHART_ROWS]],
            "chart-payers"))
    add(_table(["Payer", "Claims", "Clean-claim rate", "Claims with a denial", "Findings", "Billed",
                "Charges at risk"],
               [[f"<code>{_e(p)}</code>", f"{t.claims:,}", _pct(t.clean, t.claims),
                 f"{t.denied_claims:,} ({_pct(t.denied_claims, t.claims)})", f"{t.findings:,}",
                 _money(t.billed) if data.charges_known else "n/a",
                 _money(t.at_risk) if data.charges_known else "n/a"] for p, t in payers],
               "payers", (1, 2, 3, 4, 5, 6)))
    add('<p class="note">Payer ids as in the claims; the commercial profiles shipped with pain-asp are '
        'examples of how to encode a payer, not any real payer\u2019s policy. Unreadable claims are '
        'left out of this table.</p></section>')

    # codes
    add('<section id="by-code"><h2>By procedure code</h2>')
    codes = sorted(data.codes.items(), key=lambda kv: (-kv[1].at_risk, -kv[1].findings, kv[0]))
    add(_bar_chart("Findings by procedure code", [
        (code, t.findings, COLOURS[_worst(t.severities)], None, f"{t.findings:,}")
        for code, t in sorted(data.codes.items(), key=lambda kv: (-kv[1].findings, kv[0]))[:CHART_ROWS]],
        "chart-codes"))
    add(_table(["Code", "Findings", "Claims", "Severities", "Denied lines", "Charges at risk"],
               [[f"<code>{_e(code)}</code>", f"{t.findings:,}", f"{t.claims:,}", _sev_mix(t.severities),
                 f"{t.deny_lines:,}", _money(t.at_risk) if data.charges_known else "n/a"]
                for code, t in codes], "codes", (1, 2, 4, 5)))
    add('<p class="note">A finding counts for every code on its lines (a pair edit names two codes).</p></section>')

    # fixes
    add('<section id="fixes"><h2>Most frequent fixes</h2>')
    fix_rows = []
    for rule, t in sorted(data.rules.items(), key=lambda kv: (-kv[1].findings, -kv[1].at_risk, kv[0]))[:CHART_ROWS]:
        meta = getattr(rules.get(rule), "meta", {}) or {}
        correctable = meta.get("correctable") == "yes"
        example = data.fix_examples.get(rule)
        # A correctable rule's fix is a template filled in per finding: show a filled one. An
        # action reads the same for every claim: show it, with a finding's own hint below.
        what = (example if correctable else meta.get("action")) or example or ""
        kind = "edit the claim" if correctable else ("action" if meta else "")
        cell = _e(what) + (f'<div class="note">e.g. {_e(example)}</div>' if example and example != what else "")
        fix_rows.append([f'<a href="#{_anchor("rule", rule)}"><code>{_e(rule)}</code></a>', cell, _e(kind),
                         f"{t.findings:,}", f"{t.claims:,}", _money(t.at_risk) if data.charges_known else "n/a"])
    add(_table(["Rule", "What to do", "Kind", "Findings", "Claims", "Charges at risk"], fix_rows, "fixes",
               (3, 4, 5)) if fix_rows else '<p class="empty">No findings: nothing to fix.</p>')
    add('<p class="note">\u201cedit the claim\u201d: <code>pain-asp fix</code> finds the smallest edits; '
        '\u201caction\u201d: needs documentation, an authorization or an appeal.</p></section>')

    # work list
    work = data.work_list()
    add(f'<section id="claims"><h2>Claims to work first</h2><p class="note">The {_count(len(work), "claim")} '
        'with the most at stake: denials first, by charges at risk, then the other findings.</p>')
    add(_table(["Claim", "Payer", "Status", "Denied lines", "Charges at risk", "Findings", "Rules"],
               [[f"<code>{_e(w['claim_id'])}</code>", _e(w["payer"]), _badge(w["status"]),
                 _e(", ".join(map(str, w["deny_lines"])) or "-"), _money(w["at_risk"]),
                 f"{w['findings']:,}", " ".join(f'<a href="#{_anchor("rule", r)}">{_e(r)}</a>' for r in w["rules"])]
                for w in work], "work", (4, 5)) if work else '<p class="empty">Every claim is clean.</p>')
    add("</section>")

    # drill-down
    add('<section id="drill"><h2>Claims by rule</h2>')
    for rule, t in sorted(data.rules.items(), key=lambda kv: (-kv[1].findings, kv[0])):
        rows = data.drill.get(rule, [])
        more = f" (first {len(rows):,} of {_count(t.findings, 'finding')})" if t.findings > len(rows) else ""
        add(f'<details id="{_anchor("rule", rule)}"><summary><code>{_e(rule)}</code> \u2014 '
            f'{_e(data.rule_titles.get(rule, rule))}: {_count(t.findings, "finding")} on '
            f'{_count(t.claims, "claim")}{more}</summary>')
        add(_table(["Claim", "Payer", "Severity", "Lines", "Codes", "Message", "Fix"],
                   [[f"<code>{_e(r['claim_id'])}</code>", _e(r["payer"]), _badge(r["severity"]),
                     _e(", ".join(map(str, r["lines"]))), _e(", ".join(r["codes"])), _e(r["message"] or ""),
                     _e(r["fix"] or "")] for r in rows], "drill"))
        add("</details>")
    if not data.rules:
        add('<p class="empty">No findings.</p>')
    add("</section>")

    if data.error_count:
        add(f'<section id="errors"><h2>Unreadable claims</h2><p class="note">{_count(data.error_count, "claim")} '
            '(or results records) could not be checked or read; fix the input and check them again.</p>')
        add(_table(["Claim", "Position", "Error"],
                   [[f"<code>{_e(e['claim_id'] or '(no id)')}</code>", _e(e["position"] or ""), _e(e["message"])]
                    for e in data.errors], "errors"))
        add("</section>")

    add('</main><footer>pain-asp denial report. Findings come from the rule base and payer policies '
        'in force on each line\u2019s date of service; see <code>pain-asp explain</code> for the sources of '
        'a finding. This page holds claim ids and codes, no patient identifiers.</footer></body></html>\n')
    return "".join(out)


def _rate(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def _remittance_section(comparison: Any) -> str:
    """Predicted against actual: what the payer's 835s say of the checked claims."""
    data = comparison.as_dict()
    claims, lines, rates = data["claims"], data["lines"], data["rates"]
    out = ['<section id="remittance"><h2>Predicted against actual (835 remittances)</h2>']
    cards = [
        ("Claims matched", f"{claims['matched']:,}"),
        ("Clean-claim rate", f"{_rate(rates['actual_clean_rate'])} actual \u00b7 "
                             f"{_rate(rates['predicted_clean_rate'])} predicted"),
        ("Denial rate", f"{_rate(rates['actual_denial_rate'])} actual \u00b7 "
                        f"{_rate(rates['predicted_denial_rate'])} predicted"),
        ("Denied lines confirmed", f"{lines['confirmed']:,} of {lines['predicted_denied']:,} predicted"),
        ("False alarms", f"{lines['false_alarm']:,}"),
        ("Missed denials", f"{lines['missed']:,}"),
    ]
    out.append('<div class="cards">' + "".join(
        f'<div class="card"><div class="k">{_e(k)}</div><div class="v">{_e(v)}</div></div>'
        for k, v in cards) + "</div>")
    out.append(f'<p class="note">Claims matched by claim id: {claims["matched"]:,}; remitted but not '
               f'checked: {claims["remitted_only"]:,}; checked but not in the remittances yet: '
               f'{claims["checked_only"]:,}; reversed or voided: {claims["reversed"]:,}. '
               'A line is actually denied when the payer '
               'paid nothing for it with an adjustment other than the patient\u2019s share (PR 1-3) or '
               'the contractual reduction (CO 45).')
    if data["line_matching"] == "order":
        out.append(f' Claims whose lines were matched in order (no claim file given): '
                   f'{data["claims_matched_by_order"]:,}.')
    out.append("</p>")
    denied = data["denied_by_reason"]
    if denied:
        out.append(_bar_chart("Dollars denied by reason (group-CARC)", [
            (d["carc"], d["amount"], COLOURS["deny"], None, _money(round(d["amount"] * 100)))
            for d in denied[:CHART_ROWS]], "chart-remit-carc"))
    out.append("<h3>How each rule predicted</h3>")
    rules = sorted(data["rules"], key=lambda r: (r["precision"] is None, r["precision"] or 0, r["rule"]))
    out.append(_table(["Rule", "Predicted", "Confirmed", "False alarms", "Precision", "CARC agrees"],
                      [[f'<code>{_e(r["rule"])}</code>', f'{r["predicted"]:,}', f'{r["confirmed"]:,}',
                        f'{r["false_alarm"]:,}', _rate(r["precision"]), _rate(r["carc_agreement"])]
                       for r in rules], "remit-rules", (1, 2, 3, 4, 5))
               if rules else '<p class="empty">No deny finding matched a remitted line.</p>')
    out.append('<p class="note">Worst precision first: a rule with many false alarms is a rule or payer '
               'parameter to review.</p>')
    out.append("<h3>Denials no rule predicted</h3>")
    missed = data["missed_by_reason"]
    out.append(_table(["CARC", "RARC", "Lines", "Amount", "Codes"],
                      [[_e(m["carc"] or "-"), _e(m["rarc"] or "-"), f'{m["lines"]:,}',
                        _money(round(m["amount"] * 100)), _e(", ".join(m["codes"]) or "-")] for m in missed],
                      "remit-missed", (2, 3))
               if missed else '<p class="empty">Every denial was predicted.</p>')
    out.append('<p class="note">The analyst\u2019s list of rules and payer parameters to write next.</p>')
    payers = data["by_payer"]
    if payers:
        out.append("<h3>By payer</h3>")
        out.append(_table(["Payer", "Claims", "Clean rate actual", "Clean rate predicted", "Denial rate actual",
                           "Denial rate predicted", "Confirmed", "False alarms", "Missed"],
                          [[f'<code>{_e(p["payer"])}</code>', f'{p["claims"]:,}', _rate(p["actual_clean_rate"]),
                            _rate(p["predicted_clean_rate"]), _rate(p["actual_denial_rate"]),
                            _rate(p["predicted_denial_rate"]), f'{p["lines"]["confirmed"]:,}',
                            f'{p["lines"]["false_alarm"]:,}', f'{p["lines"]["missed"]:,}'] for p in payers],
                          "remit-payers", (1, 2, 3, 4, 5, 6, 7, 8)))
    if data["errors"]:
        out.append(f'<p class="note">{len(data["errors"]):,} problems in the remittance files: run '
                   '<code>pain-asp remit</code> in text or JSON to list them.</p>')
    out.append("</section>")
    return "".join(out)


def _worst(severities: dict[str, int]) -> str:
    for severity in SEVERITIES:
        if severities.get(severity):
            return severity
    return "info"
