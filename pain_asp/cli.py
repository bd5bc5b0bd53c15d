"""The ``pain-asp`` command line (typer). Commands parse options and delegate.

Exit codes (docs/rules.md): 0 no ``deny`` finding; 1 some ``deny`` finding (``--fail-on`` widens or
disables); 2 usage or input error. Heavy modules (clingo, pydantic) are imported inside the
commands that need them, to keep the one-claim path lean.
"""


import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from .vocabulary import FORMATS, SEVERITIES

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


# Choices named once, in pain_asp/vocabulary.py: the output formats of check, and the
# severities (plus never) that --fail-on takes.
Format = Enum("Format", {name: name for name in FORMATS}, type=str)


class TextOrJson(str, Enum):
    """The output of commands that report one thing (not a stream of claims)."""

    text = "text"
    json = "json"


FailOn = Enum("FailOn", {name: name for name in (*SEVERITIES, "never")}, type=str)


PayerDirs = Annotated[Optional[list[Path]], typer.Option(
    "--payer-dir", help="A folder of extra payer policy files (repeatable).")]
NcciDir = Annotated[Optional[Path], typer.Option(
    "--ncci-dir", help="NCCI PTP/MUE tables in CMS layout to use instead of the shipped ones.")]
RemitStats = Annotated[Optional[Path], typer.Option(
    "--remit-stats", help="A history database with comparisons recorded by remit --record: adds each "
    "rule's observed precision per payer.")]
HistoryDb = Annotated[Optional[Path], typer.Option(
    "--history", help="A history store (SQLite) to read patients' earlier services from.")]
SpoolDir = Annotated[Optional[Path], typer.Option(
    "--spool-dir", help="Where a batch of more than 1,000 claims keeps its validated claims while it "
    "runs (an owner-only file without a name, gone when the run ends, killed or not; default: the "
    "output file's folder, else the temporary folder).")]


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


def _worker_count(workers: int | None) -> int | None:
    """``--workers``, at least 1 and at most the machine's cores (saying so when capped)."""
    from .modes.check import default_workers

    if workers is None:
        return None
    if workers < 1:
        raise _fail(f"--workers {workers}: expected 1 or more")
    cores = default_workers()
    if workers > cores:
        sys.stderr.write(f"pain-asp: --workers {workers}: this machine has {cores} core(s) for this "
                         f"process; using {cores}\n")
        return cores
    return workers


def _summarise_errors(errors: int, claims: int, where: str) -> None:
    """Say on standard error how many claims could not be read, and where their errors are."""
    if errors:
        sys.stderr.write(f"pain-asp: {errors:,} of {claims:,} claims could not be read; "
                         f"their error records are in {where}\n")


def _checker(payer_dirs: list[Path] | None, ncci_dir: Path | None):  # noqa: ANN202
    from .engine import Checker, CheckOptions

    for folder in payer_dirs or []:
        if not folder.is_dir():
            raise _fail(f"--payer-dir {folder}: expected an existing folder of payer YAML files")
    if ncci_dir is not None and not ncci_dir.is_dir():
        raise _fail(f"--ncci-dir {ncci_dir}: expected an existing folder with the CMS files")
    return Checker(CheckOptions(payer_dirs=[str(p) for p in payer_dirs or []],
                                ncci_dir=str(ncci_dir) if ncci_dir else None))


def _spool_folder(spool_dir: Path | None, output: Path | None) -> str | None:
    """Where the batch spool goes: ``--spool-dir``, else beside the output, else the temp folder."""
    if spool_dir is not None:
        from .outputs import check_folder

        check_folder(spool_dir, "--spool-dir")
        return str(spool_dir)
    return str(output.parent) if output is not None else None


def _exit_code(results: list, fail_on: FailOn) -> int:
    from .vocabulary import SEVERITY_RANK

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
    files: Annotated[list[Path], typer.Argument(help="Claim files (JSON, YAML, JSON Lines, or X12 837P: any file starting with ISA) or folders.")],
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.text,
    fail_on: Annotated[FailOn, typer.Option(
        help="Exit 1 when a finding at this severity or worse exists; never = exit 0 unless input is bad.")] = FailOn.deny,
    payer_dir: PayerDirs = None,
    ncci_dir: NcciDir = None,
    history: HistoryDb = None,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Write here instead of standard output (never onto an input; the file is "
        "replaced only once complete).")] = None,
    workers: Annotated[Optional[int], typer.Option(
        "--workers", help="Worker processes for a batch of more than 1,000 claims (default and most: the "
        "machine's cores); smaller batches are checked in this process.")] = None,
    spool_dir: SpoolDir = None,
    require_data: Annotated[bool, typer.Option(
        "--require-data", help="Fail (exit 2) instead of checking when the NCCI PTP, MUE or add-on "
        "tables in use are not CMS's (pain-asp data status).")] = False,
    dask: Annotated[Optional[str], typer.Option(
        "--dask", help="Check a batch of more than 1,000 claims on Dask: local (a LocalCluster of --workers "
        "processes) or tcp://HOST:PORT (a running scheduler); the same output as --workers "
        "(pip install 'pain-asp[scale]').")] = None,
) -> None:
    """Check claims and report every finding with its rule, denial code, source and fix.

    Large batches (JSON Lines, 837P) are streamed: read once into a patient index, then checked
    in chunks by worker processes and written in input order as they finish. A progress line
    goes to standard error when it is a terminal (and standard output is not).

    Exit codes: 0 no deny finding; 1 some deny finding (--fail-on widens or disables this);
    2 usage or input error (the errors are summarised on standard error).
    """
    from .modes.check import BatchOptions, Progress, check_files
    from .outputs import atomic_output, check_output

    for path in files:
        if not path.exists():
            raise _fail(f"{path}: no such file or folder")
    if output is not None:
        check_output(output, [*files, *([history] if history else [])])
    if dask is not None:
        from .modes.dask_pool import check_address

        check_address(dask)  # before anything is read
    options = BatchOptions(workers=_worker_count(workers), spool_dir=_spool_folder(spool_dir, output),
                           dask=dask)
    checker = _checker(payer_dir, ncci_dir)
    checker.keep_control = True  # freed with the process (main)
    from .ncci import starter_notice

    notice = starter_notice(checker.tables.starter())
    if notice and require_data:
        raise _fail("--require-data: " + notice.strip())
    to_terminal = output is None and sys.stdout.isatty()
    progress = Progress(sys.stderr, enabled=sys.stderr.isatty() and not to_terminal)
    if output is not None:
        with atomic_output(output) as handle:
            handle.write(notice if fmt == Format.text else "")
            summary = check_files(files, handle, fmt=fmt.value, checker=checker, history_db=history,
                                  options=options, progress=progress)
    else:
        sys.stdout.write(notice if fmt == Format.text else "")
        summary = check_files(files, sys.stdout, fmt=fmt.value, colour=to_terminal, checker=checker,
                              history_db=history, options=options, progress=progress)
    _summarise_errors(summary.errors, summary.claims, str(output) if output else "the results on standard output")
    raise typer.Exit(summary.exit_code(fail_on.value))


@app.command()
@_user_errors
def explain(
    file: Annotated[Path, typer.Argument(help="A claim file.")],
    claim: Annotated[Optional[str], typer.Option("--claim", help="Only this claim id.")] = None,
    rule: Annotated[Optional[str], typer.Option("--rule", help="Only this rule id.")] = None,
    fmt: Annotated[TextOrJson, typer.Option("--format", "-f", help="text or json.")] = TextOrJson.text,
    payer_dir: PayerDirs = None,
    ncci_dir: NcciDir = None,
    history: HistoryDb = None,
) -> None:
    """Explain why each claim is (in)valid: rule, source, triggering facts, what would pass.

    Exit codes: 0 no deny finding; 1 some deny finding;
    2 usage or input error (the errors are summarised on standard error).
    """
    import json

    from .modes.explain import explain_result
    from .render.explain import explanation_text

    checker, results, fixes, _ = _run_and_fix([file], payer_dir, ncci_dir, history)
    fix_of = {id(result): fixed for result, fixed in zip(results, fixes)}
    if rule is not None and rule not in checker.rules:
        raise _fail(f"--rule {rule}: not a rule id (see pain-asp rules list)")
    chosen = [r for r in results if claim is None or r.claim_id == claim]
    if claim is not None and not chosen:
        raise _fail(f"--claim {claim}: no claim with that id in {file}")
    explained = []
    for result in chosen:
        payer = checker.payers.get(result.payer) if result.payer and not result.errors else None
        explained.append(explain_result(result, checker.rules, payer, rule, fix_of[id(result)]))
    if fmt == TextOrJson.json:
        sys.stdout.write(json.dumps(explained, indent=2, default=str) + "\n")
    else:
        sys.stdout.write("\n".join(explanation_text(e) for e in explained))
    raise typer.Exit(_exit_code(chosen, FailOn.deny))


@rules_app.command("list")
@_user_errors
def rules_list(
    category: Annotated[Optional[str], typer.Option(help="Only this category.")] = None,
    payer: Annotated[Optional[str], typer.Option(
        "--payer", help="Only the rules this payer switches off or re-grades, or that read a parameter it sets.")] = None,
    fmt: Annotated[TextOrJson, typer.Option("--format", "-f", help="text or json.")] = TextOrJson.text,
    payer_dir: PayerDirs = None,
    remit_stats: RemitStats = None,
) -> None:
    """Every rule: id, category, severity, CARC, confidence, title, sources; with --remit-stats,
    each rule's observed precision per payer (remit --record)."""
    import json

    from .kb import rule_catalog

    precision = _observed_precision(remit_stats)
    rules = [r for r in rule_catalog().values() if category is None or r.category == category]
    notes: dict[str, str] = {}
    if payer is not None:
        from .authoring.rules import payer_rule_notes

        notes = payer_rule_notes(payer, [str(p) for p in payer_dir or []])
        rules = [r for r in rules if r.id in notes]
    if fmt == TextOrJson.json:
        sys.stdout.write(json.dumps([{
            **r.summary(), **({"payer": notes[r.id]} if payer is not None else {}),
            **({"observed": precision.get(r.id, [])} if remit_stats is not None else {})}
            for r in rules], indent=2) + "\n")
        return
    width = max((len(r.id) for r in rules), default=10)
    sys.stdout.write(f"{'id'.ljust(width)}  {'category':<12} {'sev':<6} {'CARC':<4} {'confidence':<15} "
                     "title; sources" + (f"; {payer}" if payer is not None else "") + "\n")
    for r in rules:
        carc = r.meta.get("carc", "-")
        sources = "; ".join(s.document for s in r.sources)
        extra = f"  [{payer}: {notes[r.id]}]" if payer is not None else ""
        sys.stdout.write(f"{r.id.ljust(width)}  {r.category:<12} {r.severity:<6} {carc:<4} "
                         f"{r.confidence:<15} {r.title}; {sources}{extra}\n")
        for seen in precision.get(r.id, []):
            sys.stdout.write(f"{''.ljust(width)}  observed {_precision_text(seen)}\n")


def _observed_precision(db: Optional[Path]) -> dict[str, list[dict]]:
    """Rule id -> its observed precision per payer, from the comparisons recorded in ``db``."""
    if db is None:
        return {}
    from .store import HistoryStore

    if not db.exists():
        raise _fail(f"--remit-stats {db}: no such file")
    with HistoryStore(db, create=False) as store:
        counts = store.rule_precision()
    out: dict[str, list[dict]] = {}
    for (rule, payer), (predicted, confirmed, false_alarm, agreed) in counts.items():
        out.setdefault(rule, []).append({
            "payer": payer, "predicted": predicted, "confirmed": confirmed, "false_alarm": false_alarm,
            "precision": round(confirmed / predicted, 4) if predicted else None,
            "carc_agreement": round(agreed / confirmed, 4) if confirmed else None})
    return out


def _precision_text(seen: dict) -> str:
    share = "n/a" if seen["precision"] is None else f"{100 * seen['precision']:.1f} %"
    return (f"{seen['payer']}: precision {share} ({seen['confirmed']} of {seen['predicted']} predicted "
            f"denials confirmed, {seen['false_alarm']} false alarms)")


@app.command()
@_user_errors
def docs(
    out: Annotated[Path, typer.Option("--out", help="The docs folder to write into.")] = Path("docs"),
    check_only: Annotated[bool, typer.Option("--check", help="Only report whether the files are current.")] = False,
) -> None:
    """Regenerate docs/rules.md (rule metadata) and docs/claim-format.md (claim JSON Schema)."""
    from .authoring.docs import generated_docs
    from .outputs import check_folder, write_output

    check_folder(out, "--out")
    stale = []
    for name, text in generated_docs().items():
        path = out / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            stale.append(name)
            if not check_only:
                write_output(path, text)
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
        tag = " (example)" if payer.example and "example" not in payer.name.lower() else ""
        extends = f" (extends {payer.extends})" if payer.extends else ""
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
    from .payer_schema import value_text
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

    def cited(src: dict[str, str]) -> str:
        return f"source {src.get('document')} [{src.get('confidence')}]" + (f" {src['url']}" if src.get("url") else "")

    for name in sorted(payer.parameters):
        dated = payer.in_force(name, on)
        if dated is None:
            continue
        sys.stdout.write(f"  {name} = {value_text(payer.specs[name], dated.value)}\n"
                         f"      since {dated.start or 'the start'}; {cited(dated.source)}\n")
        for row in dated.rows:
            if row.source:
                sys.stdout.write(f"      row {row.label}: {cited(row.source)}\n")
    for rule_id in sorted(set(payer.rule_severity) | set(payer.rule_off)):
        for dated in payer.rule_severity.get(rule_id, []):
            if dated.since <= on <= dated.until:
                sys.stdout.write(f"  rule {rule_id}: severity {dated.value}\n")
        for dated in payer.rule_off.get(rule_id, []):
            if dated.since <= on <= dated.until:
                sys.stdout.write(f"  rule {rule_id}: off\n")


@payers_app.command("import-dx")
@_user_errors
def payers_import_dx(
    download: Annotated[Path, typer.Argument(
        help="CMS's Medicare Coverage Database current-articles download (current_article_csv.zip, "
        "or the folder it unpacks to).")],
    lists: Annotated[list[str], typer.Option(
        "--list", help="KEY=ARTICLE: a catalog family or code and the billing article whose covered "
        "ICD-10-CM codes support it (e.g. scs=A56876; repeatable).")],
    payer_id: Annotated[str, typer.Option("--id", help="The id of the payer file to write.")],
    out: Annotated[Path, typer.Option("--out", help="The folder to write <id>.yaml into.")],
    extends: Annotated[str, typer.Option("--extends", help="The payer whose policy it extends.")] = "medicare",
    payer_dir: PayerDirs = None,
) -> None:
    """Write a payer file that adds billing articles' covered-diagnosis lists to a payer."""
    import datetime as dt

    from .payer_dx_lists import import_dx_lists

    target, imported = import_dx_lists(download, lists, payer_id, out, extends,
                                       [str(p) for p in payer_dir or []], dt.date.today())
    for key, article in sorted(imported.items()):
        sys.stdout.write(f"{key}: {len(article.codes)} covered code(s) of {article.article} version "
                         f"{article.version}, in force from {article.effective.isoformat()}\n")
    sys.stdout.write(f"wrote {target}; check with --payer-dir {out} and payer {payer_id}\n")


Db = Annotated[Path, typer.Option("--db", help="The history database file (created owner-only).")]


@history_app.command("add")
@_user_errors
def history_add(
    db: Db,
    files: Annotated[Optional[list[Path]], typer.Argument(help="Checked claim files to record.")] = None,
    remit: Annotated[Optional[list[Path]], typer.Option(
        "--remit", help="X12 835 remittances (files or folders, repeatable): mark the stored services "
        "paid, denied or reversed, for payers whose policy counts only paid services.")] = None,
) -> None:
    """Record claims' services (with their documented results) as patient history, and what the
    payer did with them (--remit).

    Exit codes: 0 recorded; 2 usage or input error (nothing is recorded).
    """
    from .render.results import visible
    from .store import HistoryStore

    if not files and not remit:
        raise _fail("expected claim files to record, --remit 835 files, or both")
    for path in files or []:
        if not path.exists():
            raise _fail(f"{path}: no such file or folder")
    records = []
    if files:
        from .inputs.readers import read_claims

        records = list(read_claims(files))
        bad = [e for r in records for e in r.errors]
        for error in bad:
            sys.stderr.write(f"pain-asp: {visible(str(error))}\n")
        if bad:
            raise _fail(f"{len(bad)} input error(s): nothing was recorded (fix them and run again)")
    standing = reversed_claims = None
    if remit:
        from .modes.remit import remittances, require_remittances

        errors: list = []
        standing, reversed_claims = remittances(require_remittances(remit), errors)
        for error in errors:
            sys.stderr.write(f"pain-asp: {visible(str(error))}\n")
        if errors:
            raise _fail(f"{len(errors)} problem(s) in the remittances: nothing was recorded")
    with HistoryStore(db) as store:
        if records:
            recorded = store.add_claims(r.claim for r in records if r.claim is not None)
            for warning in recorded.warnings:
                sys.stderr.write(f"pain-asp: warning: {visible(warning)}\n")
            sys.stderr.write(f"pain-asp: {recorded.added} claim(s) added, {recorded.replaced} replaced "
                             "(same patient and claim id, a date of service in common)\n")
            sys.stdout.write(f"recorded {recorded.services} service(s) from {len(records)} claim(s)\n")
        if standing is not None:
            marked = store.record_adjudications(standing.values(), reversed_claims.values())
            for kind, ids in (("not in the store", marked.not_stored),
                              ("matching more than one stored claim (nothing marked)", marked.ambiguous)):
                if ids:
                    shown = ", ".join(visible(i) for i in ids[:10]) + (" ..." if len(ids) > 10 else "")
                    sys.stderr.write(f"pain-asp: warning: remitted claims {kind}: {len(ids)} ({shown})\n")
            sys.stdout.write(f"marked {marked.paid} service(s) paid, {marked.denied} denied, "
                             f"{marked.reversed} reversed"
                             + (f"; {marked.lines_not_found} remitted line(s) matched no stored service"
                                if marked.lines_not_found else "") + "\n")
        total = store.count()
    sys.stdout.write(f"{total} service(s) in {db}\n")


@history_app.command("show")
@_user_errors
def history_show(
    patient: Annotated[str, typer.Argument(help="Patient id (as in the claims).")],
    db: Db,
    fmt: Annotated[TextOrJson, typer.Option("--format", "-f", help="text or json.")] = TextOrJson.text,
) -> None:
    """A patient's recorded services, oldest first."""
    import json

    from .store import HistoryStore

    with HistoryStore(db, create=False) as store:
        rows = store.show(patient)
    if fmt == TextOrJson.json:
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


class CodeFormat(str, Enum):
    text = "text"
    json = "json"
    claim = "claim"


@app.command("code")
@_user_errors
def code_command(
    source: Annotated[str, typer.Argument(
        help="A procedure description in quotes (several separated by ';'), or an encounter file (YAML or JSON).")],
    payer: Annotated[Optional[str], typer.Option("--payer", help="Payer policy id (required for a description; overrides the file's).")] = None,
    pos: Annotated[Optional[str], typer.Option("--pos", help="Place of service, e.g. 11, 19, 22, 24 (required for a description; overrides the file's).")] = None,
    date: Annotated[Optional[str], typer.Option("--date", help="Date of service YYYY-MM-DD (default: today; overrides the file's).")] = None,
    dx: Annotated[Optional[list[str]], typer.Option("--dx", help="A diagnosis (ICD-10-CM), repeatable; added to those in the text or file.")] = None,
    fmt: Annotated[CodeFormat, typer.Option("--format", "-f", help="text, json (lines, encounter, findings, claim), or claim (the claim alone, for check).")] = CodeFormat.text,
    payer_dir: PayerDirs = None,
) -> None:
    """Code a procedure description or encounter for a payer and place of service, then check the lines.

    Exit codes: 0 no deny finding; 1 some deny finding; 2 input that cannot be coded (with what
    is missing).
    """
    from .modes.code import run_code
    from .render.code import coded_output

    for folder in payer_dir or []:
        if not folder.is_dir():
            raise _fail(f"--payer-dir {folder}: expected an existing folder of payer YAML files")
    coded, reading = run_code(source, payer, pos, date, dx or [], [str(p) for p in payer_dir or []])
    sys.stdout.write(coded_output(coded, reading, fmt.value, colour=sys.stdout.isatty()))
    raise typer.Exit(1 if any(f.severity == "deny" for f in coded.result.findings) else 0)


data_app = typer.Typer(no_args_is_help=True, help="Code data: CMS NCCI PTP edits and MUE tables.")
app.add_typer(data_app, name="data")


@data_app.command("import-ncci")
@_user_errors
def data_import_ncci(
    ptp: Annotated[list[Path], typer.Option(
        "--ptp", help="A CMS practitioner PTP file (ccipra-v<version>r0-f<n>.txt, tab-separated), or "
        "the .zip CMS publishes it in.")],
    mue: Annotated[Path, typer.Option("--mue", help="The CMS practitioner MUE table (.csv, .xlsx or its .zip).")],
    more_ptp: Annotated[Optional[list[Path]], typer.Argument(
        help="More PTP files, so that --ptp f1 f2 f3 f4 works.", show_default=False)] = None,
    into: Annotated[Optional[Path], typer.Option(
        "--into", help="Store the tables here (default: the per-user data folder that checks read).")] = None,
    keep_all: Annotated[bool, typer.Option(
        "--all", help="Keep every row, not only the rows touching a code of the knowledge base.")] = False,
    quarter: Annotated[Optional[str], typer.Option(
        "--quarter", help="The release quarter (e.g. 2026Q1) when the file names do not tell it.")] = None,
    skip_malformed: Annotated[bool, typer.Option(
        "--skip-malformed", help="Import the good rows and list the malformed ones instead of stopping.")] = False,
    aoc: Annotated[Optional[Path], typer.Option(
        "--aoc", help="CMS's add-on code edit table (AOC_V<year>Q<n>-MCR .xlsx or its .zip).")] = None,
) -> None:
    """Validate CMS's practitioner PTP, MUE and add-on code files and store them where checks read them."""
    from .ncci import import_ncci

    report = import_ncci([*ptp, *(more_ptp or [])], mue, into, keep_all=keep_all, quarter=quarter,
                         skip_malformed=skip_malformed, aoc_file=aoc)
    sys.stdout.write(report.text())
    if into is None:
        sys.stdout.write("checks now use this data set (see pain-asp data status)\n")
    else:
        sys.stdout.write(f"use it with --ncci-dir {into}, or import without --into to make it the default\n")


@data_app.command("status")
@_user_errors
def data_status(
    ncci_dir: NcciDir = None,
    fmt: Annotated[TextOrJson, typer.Option("--format", "-f", help="text or json.")] = TextOrJson.text,
) -> None:
    """Which NCCI data set and quarter checks use, what is missing, and the ICD-10-CM releases."""
    import json

    from .ncci import status, status_text

    if ncci_dir is not None and not ncci_dir.is_dir():
        raise _fail(f"--ncci-dir {ncci_dir}: expected an existing folder with the CMS files")
    from .icd import periods, periods_text

    info = status(ncci_dir)
    if fmt == TextOrJson.json:
        info["icd10cm"] = [p.as_dict() for p in periods()]
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
    else:
        sys.stdout.write(status_text(info) + periods_text())




def _run_and_fix(files: list[Path], payer_dirs: list[Path] | None, ncci_dir: Path | None,
                 history_db: Path | None, timeout: float = 20.0):  # noqa: ANN202
    """Read, check and fix every claim; returns (checker, check results, fix results, records)."""
    from .history import batch_history
    from .inputs.readers import read_claims
    from .modes.fix import Repairer, RepairOptions

    for path in files:
        if not path.exists():
            raise _fail(f"{path}: no such file or folder")
    if timeout <= 0:
        raise _fail(f"--timeout {timeout:g}: expected a number of seconds above 0")
    checker = _checker(payer_dirs, ncci_dir)
    repairer = Repairer(RepairOptions(timeout=timeout), checker=checker)
    records = list(read_claims(files, checker.known_payers()))
    provider = batch_history([r.claim for r in records if r.claim is not None])
    if history_db is None:
        results = list(checker.check(records, history=provider))
        return checker, results, repairer.fix_checked(results, provider), records
    from .store import HistoryStore, store_history

    with HistoryStore(history_db, create=False) as store:
        stored = store_history(store, base=provider)
        results = list(checker.check(records, history=stored))
        return checker, results, repairer.fix_checked(results, stored), records


CORRECTED_SUFFIXES = (".json", ".jsonl", ".ndjson", ".yaml", ".yml", ".837", ".x12", ".edi")


def _write_corrected(fixes: list, records: list, path: Path, inputs: list[Path]) -> int:
    """Write every claim to ``path`` (.json, .jsonl/.ndjson, .yaml/.yml, .837/.x12/.edi), in
    input order, atomically: the corrected claims, and each claim that could not be checked
    passed through as it was read (named on stderr); returns how many were written."""
    import json

    from . import outputs
    from .models import parse_claim
    from .render.results import visible

    suffix = path.suffix.lower()
    x12 = suffix in (".837", ".x12", ".edi")
    items = []
    for fixed, record in zip(fixes, records):
        if fixed.corrected is not None:
            items.append(fixed.corrected_claim or fixed.claim or parse_claim(fixed.corrected) if x12
                         else fixed.corrected)
            continue
        item = _as_read(record, x12)
        if item is None:
            if record.claim_id is not None or isinstance(record.source, dict):
                raise _fail(visible(f"--output {path}: claim {record.claim_id or '(no id)'} ({record.file} "
                                    f"#{record.position}) could not be read and can only be passed through "
                                    f"to the format it came in; nothing was written"))
            sys.stderr.write(f"pain-asp: {record.file} #{record.position}: no claim could be read "
                             f"there, so there is nothing to pass through\n")
            continue
        why = f": {record.errors[0]}" if record.errors else ""
        sys.stderr.write(visible(f"pain-asp: claim {record.claim_id or '(no id)'} ({record.file} "
                                 f"#{record.position}) passed through unchanged, it could not be checked{why}") + "\n")
        items.append(item)
    if x12:  # claims read from an 837P keep their loops
        from .inputs.x12 import Untouched, contexts_for_files, write_corrected_837

        outputs.write_output(path, write_corrected_837(items, inputs))
        known = contexts_for_files(inputs)
        placeholders = sum(1 for claim in items
                           if not isinstance(claim, Untouched) and claim.claim_id not in known)
        if placeholders:
            sys.stderr.write(f"pain-asp: {placeholders:,} claim(s) in {path} are not from an 837P: their "
                             "submitter, receiver, billing provider and subscriber names are placeholders "
                             "and the file is marked as test data; complete them before sending it to a "
                             "payer (see docs/x12.md)\n")
        return len(items)
    if suffix in (".jsonl", ".ndjson"):
        text = "".join(json.dumps(claim, ensure_ascii=True, default=str) + "\n" for claim in items)
    elif suffix == ".json":
        text = json.dumps(items, indent=2, ensure_ascii=True, default=str) + "\n"
    else:
        import yaml

        text = yaml.safe_dump(items, sort_keys=False, allow_unicode=False)
    outputs.write_output(path, text)
    return len(items)


def _as_read(record, x12: bool):  # noqa: ANN001, ANN202
    """An unreadable claim as it was read, for the output format; None when there is none."""
    from .inputs.x12 import Untouched, X12Context

    if isinstance(record.source, X12Context):
        return Untouched(record.source) if x12 else record.source.as_read
    return None if x12 else record.source


@app.command()
@_user_errors
def fix(
    files: Annotated[list[Path], typer.Argument(help="Claim files (JSON, YAML, JSON Lines, or X12 837P: any file starting with ISA) or folders.")],
    fmt: Annotated[TextOrJson, typer.Option("--format", "-f", help="text or json.")] = TextOrJson.text,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Write the corrected claims here (.json, .jsonl, .yaml or .837), for check to "
        "read; never onto an input. Claims not read from an 837P get placeholder names in an .837.")] = None,
    payer_dir: PayerDirs = None,
    ncci_dir: NcciDir = None,
    history: HistoryDb = None,
    timeout: Annotated[float, typer.Option(
        "--timeout", help="Seconds one solve may take; a claim whose optimum is not proven in time is reported as a time-out.")] = 20.0,
) -> None:
    """The smallest edits that clear every correctable denial, and action items for the rest.

    Exit codes: 0 every correctable denial is cleared; 1 a claim is unfixable or timed out;
    2 usage or input error.
    """
    import json

    from .outputs import check_output
    from .render.fix import format_fix_report

    if output is not None:
        if output.suffix.lower() not in CORRECTED_SUFFIXES:
            raise _fail(f"--output {output}: expected a .json, .jsonl, .yaml or .837 file name")
        check_output(output, [*files, *([history] if history else [])])
    _, _, fixes, records = _run_and_fix(files, payer_dir, ncci_dir, history, timeout)
    if fmt == TextOrJson.json:
        sys.stdout.write(json.dumps([f.as_dict() for f in fixes], indent=2, ensure_ascii=True) + "\n")
    else:
        sys.stdout.write(format_fix_report(fixes))
    if output is not None:
        written = _write_corrected(fixes, records, output, files)
        sys.stderr.write(f"pain-asp: wrote {written} claim(s) to {output}\n")
    if any(f.status == "error" for f in fixes):
        raise typer.Exit(2)
    raise typer.Exit(1 if any(f.status in ("unfixable", "timeout") for f in fixes) else 0)


@app.command("report")
@_user_errors
def report_command(
    files: Annotated[list[Path], typer.Argument(
        help="Check results (the output of check --format jsonl or json) and/or claim files; claims "
        "alone are checked first; results with their claims add the line charges.")],
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="The HTML file to write (never onto an input; replaced only once complete).")],
    payer_dir: PayerDirs = None,
    ncci_dir: NcciDir = None,
    history: HistoryDb = None,
    workers: Annotated[Optional[int], typer.Option(
        "--workers", help="Worker processes when claims are checked (default and most: the machine's cores).")] = None,
    spool_dir: SpoolDir = None,
    remit: Annotated[Optional[list[Path]], typer.Option(
        "--remit", help="X12 835 remittances (files or folders, repeatable): adds predicted against actual "
        "denials, each rule's precision and the denials no rule predicted.")] = None,
) -> None:
    """An HTML denial report: clean-claim rate, findings by rule, code, payer, CARC and severity,
    charges at risk on denied lines, the most frequent fixes, and the claims behind each figure;
    with --remit, what the payer actually did against what was predicted.

    One self-contained file (inline SVG charts, no script, nothing fetched from the network).

    Exit codes: 0 the report was written from readable input; 2 usage or input error (unreadable
    claims or results records are listed in the report and summarised on standard error).
    """
    from .modes.check import BatchOptions, Progress
    from .outputs import check_output, write_output
    from .render.report import build_report, render_html
    from .render.results import visible

    for path in files:
        if not path.exists():
            raise _fail(f"{path}: no such file or folder")
    if output.suffix.lower() not in (".html", ".htm"):
        raise _fail(f"--output {output}: expected an .html file name")
    check_output(output, [*files, *([history] if history else []), *(remit or [])])
    eras = None
    if remit:
        from .modes.remit import require_remittances

        eras = require_remittances(remit)
    options = BatchOptions(workers=_worker_count(workers), spool_dir=_spool_folder(spool_dir, output))
    checker = _checker(payer_dir, ncci_dir)
    results: list = []
    data = build_report(files, checker=checker, history_db=history, batch_options=options,
                        progress=Progress(sys.stderr), on_result=results.append if eras else None)
    if data.claims == data.error_count and not any(e["claim_id"] for e in data.errors):
        # no claim at all was read (docs/architecture.md: nothing is silently empty); unreadable claims
        # with an id are listed in the report instead
        for error in data.errors[:10]:
            sys.stderr.write(f"pain-asp: {visible(error['message'])}\n")
        raise _fail(f"no claims read ({data.claims} input error(s)): nothing to report, "
                    f"{output} was not written")
    comparison = None
    if eras:
        from .modes.remit import checked_lines_of, compare
        from .render.report import is_results_file

        claim_files = [p for p in files if not is_results_file(p)]
        comparison = compare(eras, results, checked_lines_of(claim_files) if claim_files else None)
        comparison.result_files = [str(p) for p in files]
        for error in comparison.errors[:20]:
            sys.stderr.write(f"pain-asp: {visible(str(error))}\n")
    write_output(output, render_html(data, checker.rules, remittance=comparison))
    for message in data.malformed:
        sys.stderr.write(f"pain-asp: {visible(message)}\n")
    clean = data.statuses.get("clean", 0)
    rate = f"{100 * clean / data.claims:.1f} %" if data.claims else "n/a"
    risk = f", ${data.at_risk / 100:,.2f} at risk on denied lines" if data.charges_known else ""
    unreadable = f", {data.error_count:,} unreadable" if data.error_count else ""
    sys.stdout.write(f"{output}: {data.claims:,} claims, clean-claim rate {rate}, "
                     f"{data.statuses.get('deny', 0):,} with a denial{risk}{unreadable}\n")
    _summarise_errors(data.error_count, data.claims, f"{output} (section Unreadable claims)")
    if data.error_count:
        raise typer.Exit(2)


class RemitFormat(str, Enum):
    text = "text"
    json = "json"
    html = "html"


@app.command("remit")
@_user_errors
def remit_command(
    remittances: Annotated[list[Path], typer.Argument(
        help="X12 835 remittance files (005010X221A1), or folders of them.")],
    against: Annotated[list[Path], typer.Option(
        "--against", help="Check results (check --format jsonl or json output), and optionally the claim "
        "files that were checked (to match lines by control number, code, modifiers and date). Repeatable.")],
    fmt: Annotated[RemitFormat, typer.Option("--format", "-f", help="text, json, or an html report page.")] = RemitFormat.text,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    record: Annotated[Optional[Path], typer.Option(
        "--record", help="A history database to keep each rule's counts per payer in (rules list "
        "--remit-stats); the same remittances recorded again replace their earlier counts.")] = None,
) -> None:
    """Hold check results against what the payer did (835 remittances): per line predicted denied,
    confirmed, false alarm, missed, paid; each rule's precision; the denials no rule predicted.

    Exit codes: 0 compared; 2 usage or input error (a remittance that does not read or validate is
    reported with file, segment and element, and the rest is still compared).
    """
    from .modes.remit import checked_lines_of, compare, require_remittances
    from .outputs import check_output, write_output
    from .render.remit import comparison_json, comparison_text
    from .render.report import ReportData, is_results_file, read_results, render_html
    from .render.results import visible

    eras = require_remittances(remittances)
    for path in against:
        if not path.exists():
            raise _fail(f"--against {path}: no such file or folder")
    result_files = [p for p in against if is_results_file(p)]
    claim_files = [p for p in against if p not in result_files]
    if not result_files:
        raise _fail("--against: expected at least one check results file (pain-asp check --format jsonl -o RESULTS.jsonl)")
    if output is not None:
        if fmt == RemitFormat.html and output.suffix.lower() not in (".html", ".htm"):
            raise _fail(f"--output {output}: expected an .html file name")
        check_output(output, [*remittances, *against])
    lines = checked_lines_of(claim_files) if claim_files else None
    results = [r for path in result_files for r in read_results(path)]
    comparison = compare(eras, results, lines)
    comparison.result_files = [str(p) for p in result_files]
    if fmt == RemitFormat.json:
        text = comparison_json(comparison)
    elif fmt == RemitFormat.html:
        data = ReportData(sources=[p.name for p in result_files])
        for result in results:
            data.add(result)
        text = render_html(data, remittance=comparison)
    else:
        text = comparison_text(comparison)
    if output is None:
        sys.stdout.write(text)
    else:
        write_output(output, text)
    if record is not None:
        from .modes.remit import comparison_id
        from .store import HistoryStore

        with HistoryStore(record) as store:
            store.record_rule_precision(comparison_id(eras), comparison.rule_payers)
    for error in comparison.errors[:20]:
        sys.stderr.write(f"pain-asp: {visible(str(error))}\n")
    if comparison.errors:
        sys.stderr.write(f"pain-asp: {len(comparison.errors):,} problem(s) in the remittance files\n")
        raise typer.Exit(2)


@app.command("bench")
@_user_errors
def bench_command(
    claims: Annotated[int, typer.Option("--claims", help="Generated claims in the batch.")] = 100_000,
    workers: Annotated[Optional[list[int]], typer.Option(
        "--workers", help="A worker setting to measure (repeatable; default: 1 and 2).")] = None,
    baseline: Annotated[int, typer.Option(
        "--baseline", help="Claims for the fresh-Control-per-claim baseline.")] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Generator seed.")] = 1,
    cli_runs: Annotated[int, typer.Option("--cli-runs", help="Runs of the one-claim CLI (0 skips).")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    dask: Annotated[bool, typer.Option(
        "--dask", help="Also run the batch with --dask local at the largest --workers setting.")] = False,
) -> None:
    """Benchmark a batch check (docs/scaling.md): claims/s, parallel efficiency, the parent's CPU share and
    peak memory at each worker setting, the fresh-Control baseline and (--dask) the Dask run, all
    from one run, with the command that reproduces them."""
    import json

    from .bench.batch import format_batch_report, run_batch_bench

    settings = tuple(workers or (1, 2))
    if claims < 1 or baseline < 1 or min(settings) < 1 or cli_runs < 0:
        raise _fail("--claims, --baseline and --workers must be 1 or more, --cli-runs 0 or more")
    figures = run_batch_bench(claims, seed, baseline, settings, cli_runs, dask=dask)
    sys.stdout.write(json.dumps(figures, indent=2) + "\n" if as_json else format_batch_report(figures))


KbDir = Annotated[Optional[Path], typer.Option(
    "--kb", help="The knowledge base to use (a kb folder or a checkout; default: the one checks use).")]
CasesDir = Annotated[Optional[Path], typer.Option(
    "--cases", help="The folder of rule case folders (default: tests/cases of the checkout).")]


def _layout(kb: Path | None, cases: Path | None):  # noqa: ANN202
    from .authoring.rules import layout

    return layout(kb, cases)


@rules_app.command("show")
@_user_errors
def rules_show(
    rule_id: Annotated[str, typer.Argument(help="A rule id (pain-asp rules list).")],
    fmt: Annotated[TextOrJson, typer.Option("--format", "-f", help="text or json.")] = TextOrJson.text,
    kb: KbDir = None,
    cases: CasesDir = None,
    payer_dir: PayerDirs = None,
    remit_stats: RemitStats = None,
) -> None:
    """A rule's metadata, sources with dates, payer parameters it reads, its example claims and its
    ASP text; with --remit-stats, its observed precision per payer."""
    import json

    from .authoring.rules import show_rule, show_text

    info = show_rule(rule_id, _layout(kb, cases), [str(p) for p in payer_dir or []])
    if remit_stats is not None:
        info["observed"] = _observed_precision(remit_stats).get(rule_id, [])
    if fmt == TextOrJson.json:
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
        return
    sys.stdout.write(show_text(info))
    if remit_stats is not None:
        sys.stdout.write("observed against remittances:\n" + "".join(
            f"  {_precision_text(seen)}\n" for seen in info["observed"]) if info["observed"] else
            "observed against remittances: no recorded comparison names this rule\n")


@rules_app.command("test")
@_user_errors
def rules_test(
    targets: Annotated[Optional[list[str]], typer.Argument(
        help="Rule ids (only their cases) and case files or folders (<rule-id>/fire_*.yaml, pass_*.yaml); "
             "default: every case of the checkout.", show_default=False)] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List passing cases too.")] = False,
    kb: KbDir = None,
    cases: CasesDir = None,
    payer_dir: PayerDirs = None,
) -> None:
    """Run case files and show, for each failing case, the expected and actual findings as a diff (exit 1 on failure)."""
    from .authoring.rules import collect_cases, run_tests
    from .kb import rule_catalog

    place = _layout(kb, cases)
    known = rule_catalog(str(place.kb))
    ids, paths = [], []
    for item in targets or []:
        if Path(item).exists():
            paths.append(Path(item))
        elif item in known:
            ids.append(item)
        else:
            raise _fail(f"{item}: neither a rule id nor a case file or folder")
    files = collect_cases(ids, paths, place)
    if not files:
        raise _fail("no case files found" + (f" for {', '.join(ids)}" if ids else ""))
    run = run_tests(files, place, [str(p) for p in payer_dir or []])
    sys.stdout.write(run.text(verbose))
    raise typer.Exit(0 if run.ok else 1)


@rules_app.command("coverage")
@_user_errors
def rules_coverage(
    paths: Annotated[Optional[list[Path]], typer.Argument(
        help="Case files or folders (default: every case of the checkout).", show_default=False)] = None,
    fail_under: Annotated[Optional[float], typer.Option(
        "--fail-under", help="Exit 1 when fewer than this percentage of rules fire in some case, "
                             "or of payer parameters are exercised.")] = None,
    fmt: Annotated[TextOrJson, typer.Option("--format", "-f", help="text or json.")] = TextOrJson.text,
    kb: KbDir = None,
    cases: CasesDir = None,
    payer_dir: PayerDirs = None,
) -> None:
    """Which rules, payer parameters and catalog code families the cases exercise, and which never."""
    import json

    from .authoring.rules import collect_cases, coverage, coverage_text, run_tests

    place = _layout(kb, cases)
    dirs = [str(p) for p in payer_dir or []]
    run = run_tests(collect_cases([], list(paths or []), place), place, dirs)
    cov = coverage(run, place, dirs)
    sys.stdout.write(json.dumps(cov.as_dict(), indent=2) + "\n" if fmt == TextOrJson.json else coverage_text(cov))
    if fail_under is not None and min(cov.rule_percent, cov.parameter_percent) < fail_under:
        sys.stderr.write(f"pain-asp: coverage below {fail_under:g} % (rules {cov.rule_percent:.1f} %, "
                         f"parameters {cov.parameter_percent:.1f} %)\n")
        raise typer.Exit(1)


@rules_app.command("lint")
@_user_errors
def rules_lint(
    fmt: Annotated[TextOrJson, typer.Option("--format", "-f", help="text or json.")] = TextOrJson.text,
    kb: KbDir = None,
    cases: CasesDir = None,
    payer_dir: PayerDirs = None,
) -> None:
    """Check metadata, cases, payer files, clingo warnings and generated docs (exit 1 on any problem)."""
    import json

    from .authoring.rules import lint, lint_text

    problems = lint(_layout(kb, cases), [str(p) for p in payer_dir or []])
    if fmt == TextOrJson.json:
        sys.stdout.write(json.dumps([vars(p) for p in problems], indent=2) + "\n")
    else:
        sys.stdout.write(lint_text(problems))
    raise typer.Exit(1 if problems else 0)


@rules_app.command("new")
@_user_errors
def rules_new(
    rule_id: Annotated[str, typer.Argument(help="The new rule's id, e.g. esi-same-day-facet.")],
    category: Annotated[str, typer.Option("--category", help="coding, payer, history or chronic_pain.")],
    code: Annotated[list[str], typer.Option("--code", help="A code the rule is about (repeatable).")],
    severity: Annotated[str, typer.Option("--severity", help="Default severity: deny, review, warn or info.")] = "deny",
    title: Annotated[Optional[str], typer.Option("--title", help="A one-line title.")] = None,
    kb: KbDir = None,
    cases: CasesDir = None,
) -> None:
    """Scaffold a rule file (metadata block, include line) with a firing and a non-firing case."""
    from .authoring.rules import scaffold_rule

    sys.stdout.write(scaffold_rule(rule_id, category, code, _layout(kb, cases), severity, title).text())


kb_app = typer.Typer(no_args_is_help=True, help="Consistency of the knowledge base and the effect of a change.")
app.add_typer(kb_app, name="kb")


@kb_app.command("check")
@_user_errors
def kb_check(
    payer: Annotated[Optional[list[str]], typer.Option("--payer", help="Only this payer (repeatable; default: all).")] = None,
    budget: Annotated[int, typer.Option("--budget", min=1, help="Claims drawn by Hypothesis, and generated claims per payer.")] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the drawn and generated claims.")] = 0,
    out: Annotated[Path, typer.Option("--out", help="Where to write counter-examples as case files.")] = Path("kbcheck-cases"),
    only: Annotated[Optional[list[str]], typer.Option(
        "--only", help="Only these checks: payers, never-fire, contradictions (repeatable).")] = None,
    codes: Annotated[Optional[str], typer.Option(
        "--codes", help="Comma-separated codes: search contradictions only among claims billing these.")] = None,
    fmt: Annotated[TextOrJson, typer.Option("--format", "-f", help="text or json.")] = TextOrJson.text,
    kb: KbDir = None,
    cases: CasesDir = None,
    payer_dir: PayerDirs = None,
) -> None:
    """Search for contradicting rules, self-contradicting payer settings, and rules or parameters that never fire (exit 1 on an error)."""
    import json

    from .authoring.kbcheck import CHECKS, check_kb

    report = check_kb(_layout(kb, cases), payer, budget, seed, out, [str(p) for p in payer_dir or []],
                      only or CHECKS, codes.split(",") if codes else None)
    sys.stdout.write(json.dumps(report.as_dict(), indent=2) + "\n" if fmt == TextOrJson.json else report.text())
    raise typer.Exit(0 if report.ok else 1)


@kb_app.command("diff")
@_user_errors
def kb_diff(
    old: Annotated[str, typer.Argument(help="The old rules: a kb folder, a checkout, or a git revision (HEAD, main, a tag).")],
    new: Annotated[str, typer.Argument(help="The new rules: a kb folder, a checkout (.), or a git revision.")],
    claims: Annotated[list[Path], typer.Argument(help="Claim files or folders, or case files or folders.")],
    fmt: Annotated[TextOrJson, typer.Option("--format", "-f", help="text or json.")] = TextOrJson.text,
    payer_dir: PayerDirs = None,
) -> None:
    """Which findings appear or disappear on a corpus of claims between two versions of the rules (exit 1 when any)."""
    import json
    import tempfile

    from .authoring.kbcheck import diff_kbs, resolve_kb

    with tempfile.TemporaryDirectory(prefix="pain-asp-kbdiff-") as tmp:
        report = diff_kbs(resolve_kb(old, Path(tmp)), resolve_kb(new, Path(tmp)), claims,
                          [str(p) for p in payer_dir or []])
    sys.stdout.write(json.dumps(report.as_dict(), indent=2) + "\n" if fmt == TextOrJson.json else report.text())
    raise typer.Exit(1 if report.changes else 0)


@kb_app.command("profile")
@_user_errors
def kb_profile(
    claims: Annotated[int, typer.Option("--claims", min=1, help="Generated claims (with history) to ground.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Generator seed.")] = 1,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Timings per rule; the fastest counts.")] = 3,
    top: Annotated[int, typer.Option("--top", min=1, help="Rules listed in the text report.")] = 25,
    kb: Annotated[Optional[Path], typer.Option("--kb", help="A knowledge base folder other than the installed one.")] = None,
    fmt: Annotated[TextOrJson, typer.Option("--format", "-f", help="text or json.")] = TextOrJson.text,
) -> None:
    """Grounding time of every rule (and rule file) over generated claims: where check time goes."""
    import json

    from .authoring.kbprofile import profile_kb

    profile = profile_kb(claims, seed, repeats, str(kb) if kb else None)
    sys.stdout.write(json.dumps(profile.as_dict(), indent=2) + "\n" if fmt == TextOrJson.json else profile.text(top))


@app.command("serve")
@_user_errors
def serve_command(
    host: Annotated[str, typer.Option("--host", help="Address to listen on; other than loopback needs --token-file.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Check processes (each loads the knowledge base).")] = 1,
    history: HistoryDb = None,
    payer_dir: PayerDirs = None,
    ncci_dir: NcciDir = None,
    token_file: Annotated[Optional[Path], typer.Option(
        "--token-file", help="A file holding the token every /v1 request must send as Authorization: Bearer.")] = None,
    cors_origin: Annotated[Optional[list[str]], typer.Option(
        "--cors-origin", help="A web origin allowed to call the API from a browser (repeatable; default: none).")] = None,
    max_body: Annotated[int, typer.Option("--max-body", min=1, help="Bytes in one request body.")] = 2_000_000,
    max_claims: Annotated[int, typer.Option("--max-claims", min=1, help="Claims in one request.")] = 100,
    solve_timeout: Annotated[float, typer.Option("--solve-timeout", help="Seconds one solve may take.")] = 10.0,
    recycle: Annotated[int, typer.Option("--recycle", min=1, help="Claims each check process checks before fresh ones replace them.")] = 4500,
) -> None:
    """Serve the HTTP API (/v1/check, /v1/explain, /v1/fix, /v1/code, /v1/rules, /v1/payers) and the web page at /."""
    import ipaddress
    import logging

    import uvicorn

    from .serve.app import ServeOptions, create_app
    from .serve.work import Settings

    _checker(payer_dir, ncci_dir)
    if history is not None and not history.is_file():
        raise _fail(f"--history {history}: no such history store")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    token = None
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            raise _fail(f"--token-file {token_file}: expected a readable text file") from None
        if len(token) < 16:
            raise _fail(f"--token-file {token_file}: expected a token of 16 characters or more")
    if not loopback and token is None:
        raise _fail(f"--host {host}: listening beyond this machine needs --token-file")
    if solve_timeout <= 0:
        raise _fail(f"--solve-timeout {solve_timeout:g}: expected a number of seconds above 0")
    settings = Settings(tuple(str(p) for p in payer_dir or []), str(ncci_dir) if ncci_dir else None,
                        str(history) if history else None, solve_timeout, max_claims)
    options = ServeOptions(settings, workers, recycle, max_body, token, list(cors_origin or []))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    uvicorn.run(create_app(options), host=host, port=port, access_log=True, log_level="info",
                server_header=False)


class _Stopped(BaseException):
    """A termination signal, raised where the process is so that every ``finally`` runs: the
    batch stops its workers and a half-written output's temporary file is removed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, frame: object) -> None:
    raise _Stopped(signum)


def _check_and_exit() -> None:
    """``pain-asp check``: only that command is built (building every command's options costs
    about 7 ms), and once it is done (its output written and closed, its workers and stores
    closed) the process exits without tearing the interpreter down (freeing every object,
    the ground program among them, costs about 25 ms). A run that started worker processes
    exits normally: multiprocessing removes its fork server's folder in $TMPDIR only then."""
    import os

    one = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)
    one.command()(check)
    try:
        one(args=sys.argv[2:], prog_name="pain-asp check")
    except SystemExit as done:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):  # a closed pipe: the interpreter's own exit reports it
            raise done from None
        if (isinstance(done.code, int) or done.code is None) and "multiprocessing" not in sys.modules:
            os._exit(done.code or 0)
        raise


def main() -> None:
    """Entry point: run the app; user-facing errors exit 2 without a traceback; SIGINT, SIGTERM
    and SIGHUP stop it cleanly (exit 128 + the signal number)."""
    import signal

    from .errors import PainAspError

    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _stop)
    try:
        if sys.argv[1:2] == ["check"]:
            _check_and_exit()
        app()
    except PainAspError as exc:
        sys.stderr.write(f"pain-asp: {exc}\n")
        sys.exit(2)
    except _Stopped as stop:
        sys.stderr.write(f"pain-asp: stopped by {signal.Signals(stop.signum).name}\n")
        sys.exit(128 + stop.signum)


if __name__ == "__main__":
    main()
