"""What the check processes of ``pain-asp serve`` run: check, explain, fix and code requests.

clingo never forgets a term (docs/scaling.md: a process that grounds many claims keeps growing), so,
as in batch mode, the solving happens in worker processes that are replaced after a number of
claims (:class:`pain_asp.serve.app.Checks`). Each worker loads the knowledge base, payer
policies and NCCI tables once (:func:`start`) and keeps them for every request it serves.

Every answer is what the command line prints with ``--format json`` for the same claims, read
from a file named :data:`REQUEST`, less the ``file`` fields. Request bodies stay in memory.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from ..errors import PainAspError

__all__ = ["REQUEST", "RequestError", "Settings", "check", "code", "check_many", "explain", "fix", "review", "start", "without_file"]

REQUEST = "request"  # the name claims read from a request body go by (before it is dropped)
_log = logging.getLogger("pain_asp.serve")
_STATE: dict[str, Any] = {}


@dataclass(frozen=True)
class Settings:
    """What every worker needs to know (sent to it when it starts)."""

    payer_dirs: tuple[str, ...] = ()
    ncci_dir: str | None = None
    history_db: str | None = None
    solve_timeout: float = 10.0
    max_claims: int = 100


class RequestError(Exception):
    """A request that cannot be answered: HTTP status and the error records to send back."""

    def __init__(self, status: int, errors: list[dict[str, Any]], results: list[dict[str, Any]] | None = None) -> None:
        super().__init__(status, errors, results)
        self.status, self.errors, self.results = status, errors, results

    @classmethod
    def one(cls, status: int, field: str, expected: str, value: str = "") -> RequestError:
        """An error about one field of the request (``value`` never holds claim content)."""
        where = f"{field}: got {value}; " if value else (f"{field}: " if field else "")
        return cls(status, [{"claim_id": None, "field": field, "value": value, "expected": expected,
                             "message": f"{where}expected {expected}"}])

    def as_dict(self) -> dict[str, Any]:
        """The JSON body of the error response."""
        return {"errors": self.errors, **({"results": self.results} if self.results is not None else {})}


def start(settings: Settings) -> None:
    """Load the checker once in this worker (the pool's initializer)."""
    from ..engine import Checker, CheckOptions

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")  # a fresh process has none
    _STATE["settings"] = settings
    _STATE["checker"] = Checker(CheckOptions(payer_dirs=list(settings.payer_dirs), ncci_dir=settings.ncci_dir,
                                             timeout=settings.solve_timeout))


def ready() -> bool:
    """A no-op that makes the pool start a worker (and load its checker) before the first request."""
    return "checker" in _STATE


def without_file(item: dict[str, Any]) -> dict[str, Any]:
    """A result record less its input file name (the request has none), errors included."""
    out = {k: v for k, v in item.items() if k != "file"}
    if "errors" in out:
        out["errors"] = [{k: v for k, v in e.items() if k != "file"} for e in out["errors"]]
    return out


def _records(text: str, kind: str) -> list[Any]:
    from ..inputs.readers import records_from_text

    settings: Settings = _STATE["settings"]
    records = list(records_from_text(text, REQUEST, kind, _STATE["checker"].known_payers()))
    if len(records) > settings.max_claims:
        raise RequestError.one(413, "", f"at most {settings.max_claims} claims in one request "
                               f"(send a batch to pain-asp check)", f"{len(records)} claims")
    return records


def _checked(text: str, kind: str) -> tuple[list[Any], Any]:
    """Read and check the claims of a body as ``pain-asp check`` does: (results, history)."""
    return _check_batches([_records(text, kind)])[0]


def _check_batches(batches: list[list[Any]]) -> list[tuple[list[Any], Any]]:
    """Check the records of several requests in one solve; each sees only its own batch history.

    One solve over many claims costs little more than over one (the knowledge base is
    grounded once), so the server gathers the check requests that wait and sends them together.
    """
    from ..history import batch_history

    checker = _STATE["checker"]
    providers = [batch_history([r.claim for r in records if r.claim is not None]) for records in batches]
    history_db = _STATE["settings"].history_db
    store = None
    if history_db is not None:
        from ..store import HistoryStore, store_history

        store = HistoryStore(history_db, create=False)
        providers = [store_history(store, base=provider) for provider in providers]
    try:
        owner = {id(r.claim): provider for records, provider in zip(batches, providers)
                 for r in records if r.claim is not None}
        results = iter(checker.check([r for records in batches for r in records],
                                     history=lambda claim: owner[id(claim)](claim)))
        return [([next(results) for _ in records], provider) for records, provider in zip(batches, providers)]
    finally:
        if store is not None:
            store.close()


def _answer(action: str, items: list[dict[str, Any]], results: list[Any], began: float) -> list[dict[str, Any]]:
    """Log the claim ids and the time taken; raise 422 when a claim could not be read."""
    _logged(action, results, began)
    shown = [without_file(item) for item in items]
    errors = [e for item in shown for e in item.get("errors", [])]
    if errors:
        raise RequestError(422, errors, shown)
    return shown


def _logged(action: str, results: list[Any], began: float) -> None:
    """Log what was done to which claim ids, and how long it took (never claim content)."""
    ids = ",".join(str(r.claim_id) for r in results)
    _log.info("%s %d claim(s) [%s] in %.1f ms", action, len(results), ids, 1000 * (time.perf_counter() - began))


def check(text: str, kind: str) -> list[dict[str, Any]]:
    """``pain-asp check --format json`` of the claims in ``text`` (json, jsonl, yaml or x12)."""
    answer = check_many([(text, kind)])[0]
    if isinstance(answer, RequestError):
        raise answer
    return answer


def check_many(bodies: list[tuple[str, str]]) -> list[list[dict[str, Any]] | RequestError]:
    """:func:`check` of several request bodies (text, kind) in one solve: each one's answer or error."""
    from ..render.results import render_result

    began = time.perf_counter()
    answers: list[Any] = []
    readable: list[int] = []
    batches = []
    for text, kind in bodies:
        try:
            batches.append(_records(text, kind))
            readable.append(len(answers))
            answers.append(None)
        except RequestError as exc:
            answers.append(exc)
    for n, (results, _) in zip(readable, _check_batches(batches)):
        try:
            answers[n] = _answer("check", [json.loads(render_result(r, "json")) for r in results], results, began)
        except RequestError as exc:
            answers[n] = exc
    return answers


def _fixes(results: list[Any], provider: Any) -> list[Any]:
    from ..modes.fix import Repairer, RepairOptions

    if "repairer" not in _STATE:
        settings: Settings = _STATE["settings"]
        _STATE["repairer"] = Repairer(RepairOptions(timeout=settings.solve_timeout), checker=_STATE["checker"])
    return _STATE["repairer"].fix_checked(results, provider)


def _explained(results: list[Any], fixes: list[Any], claim: str | None, rule: str | None) -> list[dict[str, Any]]:
    """The explanations ``pain-asp explain --format json`` prints for checked and fixed claims."""
    from ..modes.explain import explain_result

    checker = _STATE["checker"]
    explained = []
    for result, fixed in zip(results, fixes):
        if claim is not None and result.claim_id != claim:
            continue
        payer = checker.payers.get(result.payer) if result.payer and not result.errors else None
        explained.append(json.loads(json.dumps(explain_result(result, checker.rules, payer, rule, fixed), default=str)))
    return explained


def _fix_dicts(fixes: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(json.dumps(f.as_dict(), ensure_ascii=True)) for f in fixes]


def fix(text: str, kind: str) -> list[dict[str, Any]]:
    """``pain-asp fix --format json`` of the claims in ``text``."""
    began = time.perf_counter()
    results, provider = _checked(text, kind)
    return _answer("fix", _fix_dicts(_fixes(results, provider)), results, began)


def explain(text: str, kind: str, claim: str | None = None, rule: str | None = None) -> list[dict[str, Any]]:
    """``pain-asp explain --format json [--claim C] [--rule R]`` of the claims in ``text``."""
    began = time.perf_counter()
    if rule is not None and rule not in _STATE["checker"].rules:
        raise RequestError.one(404, "rule", "a rule id (GET /v1/rules)", rule)
    results, provider = _checked(text, kind)
    explained = _explained(results, _fixes(results, provider), claim, rule)
    if claim is not None and not explained:
        raise RequestError.one(404, "claim", "the id of a claim in the body", claim)
    return _answer("explain", explained, results, began)


def review(text: str, kind: str) -> dict[str, list[dict[str, Any]]]:
    """Check, fix and explain at once, for the web page; claims that cannot be read are in the answer."""
    from ..render.results import render_result

    began = time.perf_counter()
    results, provider = _checked(text, kind)
    fixes = _fixes(results, provider)
    out = {"check": [without_file(json.loads(render_result(r, "json"))) for r in results],
           "fix": [without_file(f) for f in _fix_dicts(fixes)],
           "explain": [without_file(e) for e in _explained(results, fixes, None, None)]}
    _logged("review", results, began)
    return out


def code(description: str, payer: str, pos: str, date: str | None, dx: list[str]) -> dict[str, Any]:
    """``pain-asp code "DESCRIPTION" --payer P --pos POS [--date D] [--dx X] --format json``."""
    from ..modes.code import Coder, read_description
    from ..render.code import coded_output

    began = time.perf_counter()
    if "coder" not in _STATE:
        settings: Settings = _STATE["settings"]
        _STATE["coder"] = Coder(list(settings.payer_dirs), settings.ncci_dir)
    coder = _STATE["coder"]
    if payer not in coder.known_payers():
        raise RequestError.one(422, "payer", "a payer policy id (GET /v1/payers)", payer)
    try:
        reading, encounter = read_description(description, payer, pos, date, dx)
        out = json.loads(coded_output(coder.code(encounter), reading, "json"))
    except PainAspError as exc:
        raise RequestError.one(422, "description", str(exc)) from None
    _log.info("code 1 description in %.1f ms", 1000 * (time.perf_counter() - began))
    return out


def payer_summary(payer: Any) -> dict[str, Any]:
    """One line of `pain-asp payers list`, as JSON."""
    return {"id": payer.id, "name": payer.name, "example": payer.example, "extends": payer.extends}


def payer_in_force(payer: Any, on: dt.date) -> dict[str, Any]:
    """What `pain-asp payers show ID --date D` prints, as JSON."""
    parameters = []
    for name in sorted(payer.parameters):
        dated = payer.in_force(name, on)
        if dated is not None:
            parameters.append({"name": name, "value": dated.value, "since": dated.start,
                               "source": dated.source,
                               "rows": [{"row": row.label, "source": row.source} for row in dated.rows if row.source]})
    rule_settings = []
    for rule_id in sorted(set(payer.rule_severity) | set(payer.rule_off)):
        for dated in payer.rule_severity.get(rule_id, []):
            if dated.since <= on <= dated.until:
                rule_settings.append({"rule": rule_id, "severity": dated.value})
        for dated in payer.rule_off.get(rule_id, []):
            if dated.since <= on <= dated.until:
                rule_settings.append({"rule": rule_id, "off": True})
    return {**payer_summary(payer), "on": on.isoformat(), "parameters": parameters, "rules": rule_settings}
