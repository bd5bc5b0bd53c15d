"""The ``pain-asp`` command line (typer). Commands parse options and delegate.

Exit codes (SPEC §4): 0 no ``deny`` finding; 1 some ``deny`` finding (``--fail-on`` widens or
disables); 2 usage or input error. Heavy modules (clingo, pydantic) are imported inside the
commands that need them, to keep the one-claim path lean.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  pretty_exceptions_enable=False,
                  help="Check interventional pain-management claims against coding rules and payer policies.")
rules_app = typer.Typer(no_args_is_help=True, help="The rule catalog.")
payers_app = typer.Typer(no_args_is_help=True, help="Payer policy files.")
app.add_typer(rules_app, name="rules")
history_app = typer.Typer(no_args_is_help=True, help="The patient history store (SQLite).")
app.add_typer(payers_app, name="payers")
app.add_typer(history_app, name="history")


class Format(str, Enum):
    text = "text"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


class FailOn(str, Enum):
    deny = "deny"
    review = "review"
    warn = "warn"
    info = "info"
    never = "never"


PayerDirs = Annotated[Optional[list[Path]], typer.Option(
    "--payer-dir", help="A folder of extra payer policy files (repeatable).")]
NcciDir = Annotated[Optional[Path], typer.Option(
    "--ncci-dir", help="NCCI PTP/MUE tables in CMS layout to use instead of the shipped ones.")]
HistoryDb = Annotated[Optional[Path], typer.Option(
    "--history", help="A history store (SQLite) to read patients' earlier services from.")]


def _user_errors(command):  # noqa: ANN001, ANN202
    """Turn the library's user-facing errors into exit code 2 without a traceback."""
    import functools

    @functools.wraps(command)
    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        from .errors import PainAspError

        try:
            return command(*args, **kwargs)
        except PainAspError as exc:
            raise _fail(str(exc)) from None

    return wrapper


def _fail(message: str) -> typer.Exit:
    sys.stderr.write(f"pain-asp: {message}\n")
    return typer.Exit(2)


def _checker(payer_dirs: list[Path] | None, ncci_dir: Path | None):  # noqa: ANN202
    from .engine import Checker, CheckOptions

    for folder in payer_dirs or []:
        if not folder.is_dir():
            raise _fail(f"--payer-dir {folder}: expected an existing folder of payer YAML files")
    if ncci_dir is not None and not ncci_dir.is_dir():
        raise _fail(f"--ncci-dir {ncci_dir}: expected an existing folder with the CMS files")
    return Checker(CheckOptions(payer_dirs=[str(p) for p in payer_dirs or []],
                                ncci_dir=str(ncci_dir) if ncci_dir else None))


def _run(files: list[Path], payer_dirs: list[Path] | None, ncci_dir: Path | None,
         history_db: Path | None):  # noqa: ANN202
    """Read, validate and check every claim; returns (checker, results)."""
    from .history import batch_history
    from .readers import read_claims

    for path in files:
        if not path.exists():
            raise _fail(f"{path}: no such file or folder")
    checker = _checker(payer_dirs, ncci_dir)
    records = list(read_claims(files, checker.known_payers()))
    provider = batch_history([r.claim for r in records if r.claim is not None])
    if history_db is None:
        return checker, list(checker.check(records, history=provider))
    from .store import HistoryStore, store_history

    with HistoryStore(history_db, create=False) as store:
        return checker, list(checker.check(records, history=store_history(store, base=provider)))


def _exit_code(results: list, fail_on: FailOn) -> int:
    from .findings import SEVERITY_RANK

    if any(r.errors for r in results):
        return 2
    if fail_on == FailOn.never:
        return 0
    limit = SEVERITY_RANK[fail_on.value]
    worst = [SEVERITY_RANK[f.severity] for r in results for f in r.findings]
    return 1 if worst and min(worst) <= limit else 0


@app.command()
@_user_errors
def check(
    files: Annotated[list[Path], typer.Argument(help="Claim files (JSON, YAML, JSON Lines) or folders.")],
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.text,
    fail_on: Annotated[FailOn, typer.Option(
        help="Exit 1 when a finding at this severity or worse exists; never = exit 0 unless input is bad.")] = FailOn.deny,
    payer_dir: PayerDirs = None,
    ncci_dir: NcciDir = None,
    history: HistoryDb = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here instead of standard output.")] = None,
) -> None:
    """Check claims and report every finding with its rule, denial code, source and fix."""
    from .render import write_results

    _, results = _run(files, payer_dir, ncci_dir, history)
    if output is not None:
        with output.open("w", encoding="utf-8", newline="") as handle:
            write_results(results, fmt.value, handle)
    else:
        write_results(results, fmt.value, sys.stdout, colour=sys.stdout.isatty())
    raise typer.Exit(_exit_code(results, fail_on))


@app.command()
@_user_errors
def explain(
    file: Annotated[Path, typer.Argument(help="A claim file.")],
    claim: Annotated[Optional[str], typer.Option("--claim", help="Only this claim id.")] = None,
    rule: Annotated[Optional[str], typer.Option("--rule", help="Only this rule id.")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="text or json.")] = Format.text,
    payer_dir: PayerDirs = None,
    ncci_dir: NcciDir = None,
    history: HistoryDb = None,
) -> None:
    """Explain why each claim is (in)valid: rule, source, triggering facts, what would pass."""
    import json

    from .explain import explain_result, explanation_text

    checker, results = _run([file], payer_dir, ncci_dir, history)
    if rule is not None and rule not in checker.rules:
        raise _fail(f"--rule {rule}: not a rule id (see pain-asp rules list)")
    chosen = [r for r in results if claim is None or r.claim_id == claim]
    if claim is not None and not chosen:
        raise _fail(f"--claim {claim}: no claim with that id in {file}")
    explained = []
    for result in chosen:
        payer = checker.payers.get(result.payer) if result.payer and not result.errors else None
        explained.append(explain_result(result, checker.rules, payer, rule))
    if fmt == Format.json:
        sys.stdout.write(json.dumps(explained, indent=2, default=str) + "\n")
    else:
        sys.stdout.write("\n".join(explanation_text(e) for e in explained))
    raise typer.Exit(_exit_code(chosen, FailOn.deny))


@rules_app.command("list")
@_user_errors
def rules_list(
    category: Annotated[Optional[str], typer.Option(help="Only this category.")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="text or json.")] = Format.text,
) -> None:
    """Every rule: id, category, severity, CARC, source, confidence."""
    import json

    from .kb import rule_catalog

    rules = [r for r in rule_catalog().values() if category is None or r.category == category]
    if fmt == Format.json:
        sys.stdout.write(json.dumps([{
            "id": r.id, "title": r.title, "category": r.category, "severity": r.severity,
            "carc": r.meta.get("carc"), "rarc": r.meta.get("rarc"), "confidence": r.confidence,
            "sources": [s.document for s in r.sources]} for r in rules], indent=2) + "\n")
        return
    width = max((len(r.id) for r in rules), default=10)
    for r in rules:
        carc = r.meta.get("carc", "-")
        sources = "; ".join(s.document for s in r.sources)
        sys.stdout.write(f"{r.id.ljust(width)}  {r.category:<12} {r.severity:<6} CARC {carc:<4} "
                         f"{r.confidence:<15} {sources}\n")


@app.command()
@_user_errors
def docs(
    out: Annotated[Path, typer.Option("--out", help="The docs folder to write into.")] = Path("docs"),
    check_only: Annotated[bool, typer.Option("--check", help="Only report whether the files are current.")] = False,
) -> None:
    """Regenerate docs/rules.md (rule metadata) and docs/claim-format.md (claim JSON Schema)."""
    from .docs import generated_docs

    stale = []
    for name, text in generated_docs().items():
        path = out / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            stale.append(name)
            if not check_only:
                path.write_text(text, encoding="utf-8")
    if check_only and stale:
        raise _fail("stale: " + ", ".join(stale) + " (run pain-asp docs)")
    sys.stdout.write(("updated: " + ", ".join(stale) if stale else "docs are current") + "\n")


@payers_app.command("list")
@_user_errors
def payers_list(payer_dir: PayerDirs = None) -> None:
    """The payer policies available."""
    from .kb import rule_catalog
    from .payers import load_registry

    registry = load_registry([str(p) for p in payer_dir or []], set(rule_catalog()))
    for payer_id in registry.ids():
        payer = registry.get(payer_id)
        tag = " (example)" if payer.example else ""
        extends = f" extends {payer.extends}" if payer.extends else ""
        sys.stdout.write(f"{payer_id:<24} {payer.name}{tag}{extends}\n")


@payers_app.command("show")
@_user_errors
def payers_show(
    payer_id: Annotated[str, typer.Argument(help="Payer id.")],
    date: Annotated[Optional[str], typer.Option("--date", help="Show values in force on this date (YYYY-MM-DD).")] = None,
    payer_dir: PayerDirs = None,
) -> None:
    """The payer's parameters in force on a date, with their sources."""
    import datetime as dt

    from .kb import rule_catalog
    from .payers import load_registry

    registry = load_registry([str(p) for p in payer_dir or []], set(rule_catalog()))
    if payer_id not in registry.ids():
        raise _fail(f"{payer_id}: not a payer id ({', '.join(registry.ids())})")
    try:
        on = dt.date.fromisoformat(date) if date else dt.date.today()
    except ValueError:
        raise _fail(f"--date {date}: expected YYYY-MM-DD") from None
    payer = registry.get(payer_id)
    sys.stdout.write(f"{payer.id}: {payer.name}\nfile: {payer.file}\nin force on {on.isoformat()}:\n")
    for name in sorted(payer.parameters):
        dated = payer.in_force(name, on)
        if dated is None:
            continue
        src = dated.source
        sys.stdout.write(f"  {name} = {dated.value}\n      since {dated.since.isoformat()}; "
                         f"source {src.get('document')} [{src.get('confidence')}]"
                         + (f" {src['url']}" if src.get("url") else "") + "\n")
    for rule_id in sorted(set(payer.rule_severity) | set(payer.rule_off)):
        for dated in payer.rule_severity.get(rule_id, []):
            if dated.since <= on <= dated.until:
                sys.stdout.write(f"  rule {rule_id}: severity {dated.value}\n")
        for dated in payer.rule_off.get(rule_id, []):
            if dated.since <= on <= dated.until:
                sys.stdout.write(f"  rule {rule_id}: off\n")


Db = Annotated[Path, typer.Option("--db", help="The history database file (created owner-only).")]


@history_app.command("add")
@_user_errors
def history_add(
    files: Annotated[list[Path], typer.Argument(help="Checked claim files to record.")],
    db: Db,
) -> None:
    """Record claims' services (with their documented results) as patient history."""
    from .readers import read_claims
    from .store import HistoryStore

    for path in files:
        if not path.exists():
            raise _fail(f"{path}: no such file or folder")
    records = list(read_claims(files))
    bad = [e for r in records for e in r.errors]
    for error in bad:
        sys.stderr.write(f"pain-asp: {error}\n")
    if bad:
        raise _fail(f"{len(bad)} input error(s): nothing was recorded (fix them and run again)")
    with HistoryStore(db) as store:
        added = store.add_claims(r.claim for r in records if r.claim is not None)
        total = store.count()
    sys.stdout.write(f"recorded {added} service(s) from {len(records)} claim(s); {total} in {db}\n")


@history_app.command("show")
@_user_errors
def history_show(
    patient: Annotated[str, typer.Argument(help="Patient id (as in the claims).")],
    db: Db,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="text or json.")] = Format.text,
) -> None:
    """A patient's recorded services, oldest first."""
    import json

    from .store import HistoryStore

    with HistoryStore(db, create=False) as store:
        rows = store.show(patient)
    if fmt == Format.json:
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    if not rows:
        sys.stdout.write("no services recorded for this patient\n")
    for row in rows:
        shown = ", ".join(f"{k}={v}" for k, v in row.items() if v not in (None, [], "") and k != "date")
        sys.stdout.write(f"{row.get('date')}  {shown}\n")


@history_app.command("forget")
@_user_errors
def history_forget(
    patient: Annotated[str, typer.Argument(help="Patient id (as in the claims).")],
    db: Db,
) -> None:
    """Erase every service of a patient from the store."""
    from .store import HistoryStore

    with HistoryStore(db, create=False) as store:
        removed = store.forget(patient)
    sys.stdout.write(f"erased {removed} service(s)\n")


def main() -> None:
    """Entry point: run the app; user-facing errors exit 2 without a traceback."""
    from .errors import PainAspError

    try:
        app()
    except PainAspError as exc:
        sys.stderr.write(f"pain-asp: {exc}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("pain-asp: interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
