"""The web page of ``pain-asp serve``: server-rendered HTML forms over the same checks as the API.

No build step, no script, nothing fetched from elsewhere: every form posts and gets a page
back. Paste or upload claims (YAML, JSON, JSON Lines, 837P) and see each claim's findings
with their sources, explanations and fixes; apply the corrections or download them; edit the
claims and check again; browse the rules and payer policies; code a procedure description.
Everything taken from a request or a claim is escaped (:func:`html.escape`).
"""

from __future__ import annotations

import datetime as dt
import json
from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from . import work
from .work import RequestError

__all__ = ["TOKEN_COOKIE", "page_routes", "kind_of"]

TOKEN_COOKIE = "pain_asp_token"  # the web page's copy of the token (with --token-file)

_UPLOAD_KINDS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".yaml": "yaml", ".yml": "yaml",
                 ".837": "x12", ".x12": "x12", ".edi": "x12"}
_KIND_NAMES = {"auto": "recognise it", "yaml": "YAML", "json": "JSON", "jsonl": "JSON Lines", "x12": "X12 837P"}

_CSS = """
:root { --ink:#1d2430; --muted:#5b6472; --line:#d5dae1; --bg:#f7f8fa; --focus:#1a5fb4; }
* { box-sizing: border-box; }
body { margin:0; font:16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--ink); background:var(--bg); }
a { color:#174ea6; }
a:focus, button:focus, textarea:focus, input:focus, select:focus, summary:focus { outline:3px solid var(--focus); outline-offset:2px; }
.skip { position:absolute; left:-999px; } .skip:focus { left:8px; top:8px; background:#fff; padding:4px 8px; }
header { background:#22324a; color:#fff; padding:10px 24px; display:flex; gap:24px; align-items:center; }
header a { color:#fff; text-decoration:none; font-weight:600; } header a:hover { text-decoration:underline; }
header .brand { font-size:18px; margin-right:16px; }
main { max-width:1200px; margin:0 auto; padding:16px 24px 48px; }
h1 { font-size:24px; margin:8px 0 16px; } h2 { font-size:20px; margin:24px 0 8px; } h3 { font-size:17px; margin:16px 0 6px; }
section.claim { background:#fff; border:1px solid var(--line); border-radius:6px; padding:12px 16px; margin:16px 0; }
table { border-collapse:collapse; width:100%; background:#fff; }
th, td { border-bottom:1px solid var(--line); padding:6px 8px; text-align:left; vertical-align:top; }
th { background:#eef1f5; font-size:14px; }
textarea { width:100%; font:14px/1.4 ui-monospace, Menlo, Consolas, monospace; padding:8px; }
label { font-weight:600; display:block; margin:10px 0 4px; }
.row { display:flex; gap:16px; flex-wrap:wrap; align-items:flex-end; } .row > div { min-width:160px; }
button { font:inherit; padding:6px 14px; border:1px solid #174ea6; background:#1a5fb4; color:#fff; border-radius:4px; cursor:pointer; }
button.secondary { background:#fff; color:#174ea6; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:13px; font-weight:700; text-transform:uppercase; }
.deny, .error { background:#fde2e1; color:#8a1c14; } .review { background:#fff1cc; color:#6b4b00; }
.warn { background:#f3e3f7; color:#5d2370; } .info { background:#e1f0fb; color:#114d78; }
.clean, .fixed { background:#dff3e4; color:#1d5f2f; } .actions_only, .unfixable, .timeout { background:#fff1cc; color:#6b4b00; }
.muted { color:var(--muted); font-size:14px; }
details { margin:6px 0; } summary { cursor:pointer; color:#174ea6; }
dl { display:grid; grid-template-columns:160px 1fr; gap:2px 12px; margin:6px 0; } dt { color:var(--muted); }
pre { background:#f1f3f6; padding:8px; overflow:auto; font-size:13px; }
.note { background:#fff; border-left:4px solid #1a5fb4; padding:8px 12px; }
"""


def kind_of(text: str, chosen: str, filename: str = "") -> str:
    """The reader for pasted or uploaded claims: chosen, by file name, or by the first characters."""
    if chosen in _UPLOAD_KINDS.values():
        return chosen
    for suffix, kind in _UPLOAD_KINDS.items():
        if filename.lower().endswith(suffix):
            return kind
    start = text.lstrip()
    if start.startswith("ISA"):
        return "x12"
    if start.startswith("["):
        return "json"
    if start.startswith("{"):
        try:
            json.loads(text)
            return "json"
        except ValueError:
            return "jsonl"
    return "yaml"


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{escape(title)} - pain-asp</title>'
            f'<style>{_CSS}</style></head><body><a class="skip" href="#main">Skip to content</a>'
            '<header><span class="brand">pain-asp</span><nav aria-label="Main"><a href="/">Check claims</a> &nbsp; '
            '<a href="/page/rules">Rules</a> &nbsp; <a href="/page/payers">Payers</a> &nbsp; '
            '<a href="/page/code">Code a procedure</a> &nbsp; <a href="/openapi.json">API (OpenAPI)</a></nav></header>'
            f'<main id="main"><h1>{escape(title)}</h1>{body}</main></body></html>')
    return HTMLResponse(html, status_code=status)


def _badge(status: str) -> str:
    return f'<span class="badge {escape(status)}">{escape(status.replace("_", " "))}</span>'


def _link(url: str | None, text: str) -> str:
    if url and url.startswith(("https://", "http://")):
        return f'<a href="{escape(url)}" rel="noreferrer">{escape(text)}</a>'
    return escape(text)


def _sources(sources: list[dict[str, Any]]) -> str:
    return "<br>".join(_link(s.get("url"), str(s.get("document")))
                       + (f' <span class="muted">({escape(str(s["effective"]))})</span>' if s.get("effective") else "")
                       + f' <span class="muted">[{escape(str(s.get("confidence")))}]</span>' for s in sources)


def _claims_form(text: str = "", kind: str = "auto", heading: str = "Claims", button: str = "Check") -> str:
    options = "".join(f'<option value="{k}"{" selected" if k == kind else ""}>{escape(v)}</option>'
                      for k, v in _KIND_NAMES.items())
    return (f'<form method="post" action="/page/check" enctype="multipart/form-data">'
            f'<label for="claims">{escape(heading)} (YAML, JSON, JSON Lines or an X12 837P; one claim or a batch)</label>'
            f'<textarea id="claims" name="claims" rows="16" spellcheck="false">{escape(text)}</textarea>'
            f'<div class="row"><div><label for="upload">or upload a file</label>'
            f'<input id="upload" name="upload" type="file" accept=".yaml,.yml,.json,.jsonl,.ndjson,.837,.x12,.edi"></div>'
            f'<div><label for="kind">Format</label><select id="kind" name="kind">{options}</select></div>'
            f'<div><button type="submit">{escape(button)}</button></div></div></form>')


def _since(day: Any) -> str:
    """When a payer value took effect: a date, or "since the start" for one given without a date."""
    return f"since {escape(str(day))}" if day else "since the start"


def _explanation(item: dict[str, Any]) -> str:
    facts = "".join(f"<li>{escape(line)}</li>" for line in item["triggered_by"]["lines"])
    facts += "".join(f"<li>{escape(str(k))} = {escape(str(v))}</li>" for k, v in item["triggered_by"]["facts"].items())
    params = "".join(f"<li>{escape(str(item['payer']))} {escape(str(p['parameter']))} = {escape(str(p['value']))} "
                     f"({_since(p['since'])}; {escape(str(p['source'].get('document')))})</li>"
                     for p in item["payer_parameters"])
    denial = ", ".join(x for x in (item["carc"] and f"CARC {item['carc']}", item["rarc"] and f"RARC {item['rarc']}") if x)
    return (f'<details><summary>Explanation of {escape(item["rule"])}</summary><dl>'
            f'<dt>Rule</dt><dd>{escape(item["title"])} ({escape(item["category"])}, confidence {escape(item["confidence"])})</dd>'
            f'<dt>Why</dt><dd>{escape(item["message"])}</dd>'
            + (f'<dt>Denial</dt><dd>{escape(denial)} (typical; the payer\'s own code may differ)</dd>' if denial else "")
            + (f'<dt>Triggered by</dt><dd><ul>{facts}</ul></dd>' if facts else "")
            + (f'<dt>Payer values</dt><dd><ul>{params}</ul></dd>' if params else "")
            + f'<dt>Sources</dt><dd>{_sources(item["sources"])}</dd>'
            f'<dt>To pass</dt><dd>{escape(item["to_pass"])}</dd></dl></details>')


def _claim_section(checked: dict[str, Any], fixed: dict[str, Any] | None, explained: dict[str, Any] | None) -> str:
    name = checked.get("claim_id") or f"claim {checked['position']}"
    out = [f'<section class="claim" aria-label="Claim {escape(str(name))}"><h2>{escape(str(name))} '
           f'{_badge(checked["status"])}</h2><p class="muted">payer {escape(str(checked.get("payer")))}, '
           f'position {checked["position"]} in the input</p>']
    if checked.get("errors"):
        out.append("<h3>Input errors</h3><ul>" + "".join(f"<li>{escape(e['message'])}</li>" for e in checked["errors"])
                   + "</ul>")
        return "".join(out) + "</section>"
    findings = checked.get("findings", [])
    if not findings:
        out.append("<p>No findings: every rule in force passed for this claim.</p>")
    else:
        rows = "".join(
            f'<tr><td>{_badge(f["severity"])}</td><td><a href="/page/rules/{escape(f["rule"])}">{escape(f["rule"])}</a></td>'
            f'<td>{escape(", ".join(map(str, f["lines"])))}</td><td>{escape(f["message"])}</td>'
            f'<td>{_sources(f["source"])}</td><td>{escape(f.get("fix") or "")}</td></tr>' for f in findings)
        out.append('<table><caption class="muted">Findings, worst first</caption><thead><tr><th scope="col">Severity</th>'
                   '<th scope="col">Rule</th><th scope="col">Lines</th><th scope="col">Message</th><th scope="col">Source</th>'
                   f'<th scope="col">Fix</th></tr></thead><tbody>{rows}</tbody></table>')
        out.extend(_explanation(item) for item in (explained or {}).get("explanations", []))
    if fixed is not None and fixed["status"] not in ("error", "clean"):
        out.append(f'<h3>Suggested corrections {_badge(fixed["status"])}</h3>')
        edits = "".join(f"<li>{escape(e['description'])}</li>" for e in fixed.get("edits", []))
        actions = "".join(f"<li>{escape(a['rule'])}: {escape(a['action'])}</li>" for a in fixed.get("action_items", []))
        out.append(f"<ul>{edits}</ul>" if edits else "<p>No edit of the claim is needed or possible.</p>")
        if actions:
            out.append(f"<p>Still to do (needs documentation or a decision):</p><ul>{actions}</ul>")
    return "".join(out) + "</section>"


def _corrected_yaml(fixes: list[dict[str, Any]]) -> str:
    import yaml

    return yaml.safe_dump([f["corrected"] for f in fixes if f.get("corrected")], sort_keys=False, allow_unicode=False)


def _review_page(review: dict[str, list[dict[str, Any]]], text: str, kind: str) -> HTMLResponse:
    statuses: dict[str, int] = {}
    for item in review["check"]:
        statuses[item["status"]] = statuses.get(item["status"], 0) + 1
    summary = ", ".join(f"{n} {escape(s)}" for s, n in sorted(statuses.items()))
    body = [f'<p class="note" role="status">{len(review["check"])} claim(s): {summary}</p>']
    missing = sorted({name for item in review["check"] for name in (item.get("ncci_data") or {}).get("not_cms", [])})
    if missing:  # a check on data pain-asp lacks says so (never a silent clean)
        tables = next(item["ncci_data"] for item in review["check"] if item.get("ncci_data"))
        body.append('<p class="note" role="note" id="ncci-data"><strong>NCCI data:</strong> these claims were '
                    "checked with tables that are not CMS's, so edits CMS would apply may be missing: "
                    + "; ".join(escape(str(tables.get(name, name))) for name in missing)
                    + ". An administrator imports CMS's files with <code>pain-asp data import-ncci</code>.</p>")
    by_position = {e.get("claim_id"): e for e in review["explain"]}
    for checked, fixed in zip(review["check"], review["fix"]):
        body.append(_claim_section(checked, fixed, by_position.get(checked.get("claim_id"))))
    if any(f.get("edits") for f in review["fix"]):
        corrected = escape(_corrected_yaml(review["fix"]))
        body.append('<h2>Apply the corrections</h2><div class="row">'
                    '<form method="post" action="/page/check" enctype="multipart/form-data">'
                    f'<input type="hidden" name="claims" value="{corrected}"><input type="hidden" name="kind" value="yaml">'
                    '<button type="submit">Apply corrections and check again</button></form>'
                    '<form method="post" action="/page/download" enctype="multipart/form-data">'
                    f'<input type="hidden" name="claims" value="{corrected}">'
                    '<button type="submit" class="secondary">Download corrected claims (YAML)</button></form></div>')
    body.append("<h2>What if: edit the claims and check again</h2>"
                + _claims_form(text, kind if text.strip() else "auto", "Claims as checked", "Check again"))
    return _page("Check results", "".join(body))


def _error_page(exc: RequestError, title: str = "The request could not be answered") -> HTMLResponse:
    items = "".join(f"<li>{escape(e['message'])}</li>" for e in exc.errors)
    return _page(title, f'<ul role="alert">{items}</ul><p><a href="/">Back to the check form</a></p>', exc.status)


async def _form(request: Request) -> Any:
    options = request.app.state.options
    return await request.form(max_files=1, max_fields=10, max_part_size=options.max_body)


def page_routes() -> APIRouter:
    """The routes of the web page (not part of the API's schema)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/login", response_class=HTMLResponse)
    def login() -> HTMLResponse:
        return _page("Sign in", '<form method="post" action="/login" enctype="multipart/form-data">'
                     '<label for="token">The server\'s token</label><input id="token" name="token" type="password" '
                     'size="40" autocomplete="current-password"> <button type="submit">Sign in</button></form>')

    @router.post("/login")
    async def login_form(request: Request) -> Response:
        import hmac

        token = request.app.state.options.token
        given = str((await _form(request)).get("token") or "")
        if token is None or not hmac.compare_digest(given.encode(), token.encode()):
            return _error_page(RequestError.one(401, "token", "the token the server was started with"), "Not signed in")
        answer = RedirectResponse("/", status_code=303)
        answer.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return answer

    @router.get("/", response_class=HTMLResponse)
    def home() -> HTMLResponse:
        return _page("Check claims", '<p>Paste claims or upload a file. Each claim is checked against the coding '
                     'rules and the payer\'s policy; findings come with their sources, an explanation and the '
                     'smallest corrections. Nothing you send is stored.</p>' + _claims_form())

    @router.post("/page/check", response_class=HTMLResponse)
    async def page_check(request: Request) -> HTMLResponse:
        form = await _form(request)
        text, filename = str(form.get("claims") or ""), ""
        upload = form.get("upload")
        if upload is not None and not isinstance(upload, str) and upload.filename:
            try:
                text, filename = (await upload.read()).decode("utf-8"), upload.filename
            except UnicodeDecodeError:
                return _error_page(RequestError.one(400, "upload", "a UTF-8 text file"))
        if not text.strip():
            return _error_page(RequestError.one(400, "claims", "claims pasted or a file uploaded"))
        kind = kind_of(text, str(form.get("kind") or "auto"), filename)
        try:
            review = await request.app.state.checks.run(work.review, text, kind)
        except RequestError as exc:
            return _error_page(exc)
        return _review_page(review, text, kind)

    @router.post("/page/download")
    async def page_download(request: Request) -> Response:
        form = await _form(request)
        return Response(str(form.get("claims") or ""), media_type="application/yaml",
                        headers={"Content-Disposition": 'attachment; filename="corrected-claims.yaml"'})

    @router.get("/page/rules", response_class=HTMLResponse)
    def page_rules(request: Request) -> HTMLResponse:
        rows = "".join(
            f'<tr><td><a href="/page/rules/{escape(r.id)}">{escape(r.id)}</a></td><td>{escape(r.title)}</td>'
            f'<td>{escape(r.category)}</td><td>{_badge(r.severity)}</td><td>{escape(r.meta.get("carc", ""))}</td>'
            f'<td>{escape(r.confidence)}</td><td>{_sources([s.as_dict() for s in r.sources])}</td></tr>'
            for r in request.app.state.rules.values())
        return _page("Rules", '<table><thead><tr><th scope="col">Rule</th><th scope="col">Title</th><th scope="col">Category</th>'
                     '<th scope="col">Severity</th><th scope="col">CARC</th><th scope="col">Confidence</th>'
                     f'<th scope="col">Sources</th></tr></thead><tbody>{rows}</tbody></table>')

    @router.get("/page/rules/{rule_id}", response_class=HTMLResponse)
    def page_rule(request: Request, rule_id: str) -> HTMLResponse:
        from ..authoring.rules import layout, show_rule

        if rule_id not in request.app.state.rules:
            return _error_page(RequestError.one(404, "rule", "a rule id of the catalog", rule_id[:60]), "No such rule")
        info = show_rule(rule_id, layout(), list(request.app.state.options.settings.payer_dirs))
        meta = info["meta"]
        reads = "".join(f"<li>{escape(r['parameter'])}: {escape(r['help'])}<ul>"
                        + "".join(f"<li>{escape(p['payer'])}: " + "; ".join(
                            f"{escape(v['value'])} {_since(v['since'])} ({escape(str(v['source'].get('document')))})"
                            for v in p["values"]) + "</li>" for p in r["payers"]) + "</ul></li>" for r in info["reads"])
        settings = "".join(f"<li>{escape(s['payer'])}: {escape(s['setting'])} {_since(s['since'])}</li>"
                           for s in info["payer_settings"])
        cases = "".join(f"<li>{escape(c['kind'])} {escape(c['name'])}: {escape(c['description'])}</li>" for c in info["cases"])
        body = (f'<p>{_badge(info["severity"])} {escape(info["category"])}; '
                + escape(", ".join(f"{k.upper()} {meta[k]}" for k in ("carc", "rarc") if k in meta) or "no denial code")
                + f'</p><dl><dt>Message</dt><dd>{escape(meta.get("message", ""))}</dd>'
                f'<dt>Fix</dt><dd>{escape(meta.get("fix", "") or meta.get("action", ""))}</dd>'
                f'<dt>Sources</dt><dd>{_sources(info["sources"])}</dd></dl>'
                + (f"<h2>Payer parameters it reads</h2><ul>{reads}</ul>" if reads else "")
                + (f"<h2>Payer settings</h2><ul>{settings}</ul>" if settings else "")
                + (f"<h2>Example claims</h2><ul>{cases}</ul>" if cases else ""))
        return _page(f"{rule_id}: {info['title']}", body)

    @router.get("/page/payers", response_class=HTMLResponse)
    def page_payers(request: Request) -> HTMLResponse:
        registry = request.app.state.registry
        items = "".join(f'<li><a href="/page/payers/{escape(p)}">{escape(p)}</a>: {escape(registry.get(p).name)}'
                        + (" (example)" if registry.get(p).example else "") + "</li>" for p in registry.ids())
        return _page("Payer policies", f"<ul>{items}</ul>")

    @router.get("/page/payers/{payer_id}", response_class=HTMLResponse)
    def page_payer(request: Request, payer_id: str, date: str | None = None) -> HTMLResponse:
        from ..authoring.rules import value_text

        registry = request.app.state.registry
        if payer_id not in registry.ids():
            return _error_page(RequestError.one(404, "payer", "a payer id", payer_id[:60]), "No such payer")
        try:
            on = dt.date.fromisoformat(date) if date else dt.date.today()
        except ValueError:
            return _error_page(RequestError.one(422, "date", "a date as YYYY-MM-DD"))
        payer = registry.get(payer_id)
        info = work.payer_in_force(payer, on)
        def shown(name: str, value: Any) -> str:
            return value_text(payer.specs[name], value)

        rows = "".join(f'<tr><td>{escape(p["name"])}</td><td>{escape(shown(p["name"], p["value"]))}</td><td>{_since(p["since"])}</td>'
                       f'<td>{_sources([p["source"]])}</td></tr>' for p in info["parameters"])
        rules = "".join(f'<li><a href="/page/rules/{escape(r["rule"])}">{escape(r["rule"])}</a>: '
                        + ("off" if r.get("off") else f"severity {escape(str(r['severity']))}") + "</li>" for r in info["rules"])
        body = (f'<form method="get" class="row"><div><label for="date">Values in force on</label>'
                f'<input id="date" name="date" type="date" value="{escape(info["on"])}"></div>'
                '<div><button type="submit">Show</button></div></form>'
                '<table><thead><tr><th scope="col">Parameter</th><th scope="col">Value</th><th scope="col">Since</th>'
                f'<th scope="col">Source</th></tr></thead><tbody>{rows}</tbody></table>'
                + (f"<h2>Rule settings</h2><ul>{rules}</ul>" if rules else ""))
        return _page(f"{info['id']}: {info['name']}", body)

    @router.get("/page/code", response_class=HTMLResponse)
    def page_code(request: Request) -> HTMLResponse:
        return _page("Code a procedure", _code_form(request.app.state.registry.ids()))

    @router.post("/page/code", response_class=HTMLResponse)
    async def page_code_result(request: Request) -> HTMLResponse:
        form = await _form(request)
        fields = {k: str(form.get(k) or "").strip() for k in ("description", "payer", "pos", "date", "dx")}
        if not fields["description"] or not fields["payer"] or not fields["pos"]:
            return _error_page(RequestError.one(400, "description", "a description, a payer and a place of service"))
        dx = [d for d in fields["dx"].replace(",", " ").split() if d]
        try:
            coded = await request.app.state.checks.run(work.code, fields["description"], fields["payer"], fields["pos"],
                                                       fields["date"] or None, dx)
        except RequestError as exc:
            return _error_page(exc, "The description could not be coded")
        return _page("Coded claim", _coded(coded) + _code_form(request.app.state.registry.ids(), fields))

    return router


def _code_form(payers: list[str], fields: dict[str, str] | None = None) -> str:
    fields = fields or {}
    options = "".join(f'<option value="{escape(p)}"{" selected" if fields.get("payer") == p else ""}>{escape(p)}</option>'
                      for p in payers)
    return ('<form method="post" action="/page/code" enctype="multipart/form-data">'
            '<label for="description">Procedure description</label>'
            f'<textarea id="description" name="description" rows="3">{escape(fields.get("description", ""))}</textarea>'
            f'<div class="row"><div><label for="payer">Payer</label><select id="payer" name="payer">{options}</select></div>'
            f'<div><label for="pos">Place of service</label><input id="pos" name="pos" size="4" value="{escape(fields.get("pos", "11"))}"></div>'
            f'<div><label for="date">Date of service</label><input id="date" name="date" type="date" value="{escape(fields.get("date", ""))}"></div>'
            f'<div><label for="dx">Diagnoses (ICD-10-CM)</label><input id="dx" name="dx" value="{escape(fields.get("dx", ""))}"></div>'
            '<div><button type="submit">Code</button></div></div></form>')


def _coded(coded: dict[str, Any]) -> str:
    lines = "".join(f"<tr><td>{line['line']}</td><td>{escape(str(line['code']))}</td>"
                    f"<td>{escape(' '.join(line['modifiers']))}</td><td>{escape(str(line['units']))}</td>"
                    f"<td>{escape(str(line['procedure']))}</td></tr>" for line in coded["lines"])
    notes = "".join(f"<li>{escape(str(note))}</li>" for note in coded.get("notes", []))
    findings = "".join(f"<li>{_badge(f['severity'])} {escape(f['rule'])}: {escape(f['message'])}</li>"
                       for f in coded.get("findings", []))
    claim_json = escape(json.dumps(coded["claim"], indent=2))
    return (f"<h2>Lines {_badge(coded['status'])}</h2><table><thead><tr><th scope=\"col\">Line</th>"
            "<th scope=\"col\">Code</th><th scope=\"col\">Modifiers</th><th scope=\"col\">Units</th>"
            f"<th scope=\"col\">Procedure</th></tr></thead><tbody>{lines}</tbody></table>"
            + (f"<h3>Notes</h3><ul>{notes}</ul>" if notes else "")
            + (f"<h3>Findings</h3><ul>{findings}</ul>" if findings else "")
            + '<form method="post" action="/page/check" enctype="multipart/form-data">'
            f'<label for="coded">The claim (edit it before checking if you like)</label>'
            f'<textarea id="coded" name="claims" rows="12">{claim_json}</textarea>'
            '<input type="hidden" name="kind" value="json"><button type="submit">Check this claim</button></form>')
