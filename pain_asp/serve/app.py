"""The HTTP API of ``pain-asp serve`` (FastAPI): check, explain, fix and code claims; browse
rules and payer policies (docs/serve.md).

One server process answers requests; the solving is done by a pool of worker processes that
are replaced after a number of claims (see :class:`Checks`). Bodies are read into memory, never written to
disk, and never logged: the log holds claim ids and timings.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from . import work
from .page import TOKEN_COOKIE
from .work import RequestError, Settings, payer_in_force, payer_summary

__all__ = ["ServeOptions", "create_app", "KINDS"]

_log = logging.getLogger("pain_asp.serve")

# Content types of a request body and the reader they go to (pain_asp.inputs.readers.records_from_text).
KINDS = {"application/json": "json", "application/x-ndjson": "jsonl", "application/jsonl": "jsonl",
         "application/yaml": "yaml", "application/x-yaml": "yaml", "text/yaml": "yaml",
         "application/edi-x12": "x12", "application/x12": "x12"}
_CLAIMS_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"description": "A claim (docs/claim-format.md) or a list of claims."}},
    "application/x-ndjson": {"schema": {"type": "string", "description": "One claim per line."}},
    "application/yaml": {"schema": {"type": "string", "description": "A claim or a list of claims."}},
    "application/edi-x12": {"schema": {"type": "string", "description": "An X12 837P (docs/x12.md)."}}}}}


@dataclass
class ServeOptions:
    """How the server checks claims and what it accepts."""

    settings: Settings = field(default_factory=Settings)
    workers: int = 1                  # check processes
    recycle_claims: int = 4500        # the check processes are replaced after this many claims each
    max_body: int = 2_000_000         # bytes in one request body
    token: str | None = None          # when set, every /v1 request needs Authorization: Bearer <token>
    cors_origins: list[str] = field(default_factory=list)


class CodeRequest(BaseModel):
    """A procedure description to code, with the payer and place of service."""

    description: str
    payer: str
    pos: str
    date: dt.date | None = None
    dx: list[str] = []

    model_config = {"extra": "forbid"}


class _BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes gets 413 before anything reads it."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._too_large(scope, receive, send)
                return
            more = message.get("more_body", False)
        body, sent = b"".join(chunks), False

        async def replay() -> dict:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: dict, receive: Callable, send: Callable) -> None:
        error = RequestError.one(413, "", f"a body of at most {self.limit:,} bytes (split the batch)")
        await JSONResponse(error.as_dict(), status_code=413)(scope, receive, send)


class Checks:
    """The pool of check processes.

    Check requests that arrive while every worker is busy wait, and go together in one task
    (at most :attr:`GATHER` of them): one solve over many claims costs little more than one.
    clingo never forgets a term, so once the pool has checked ``recycle_claims`` claims per
    process a fresh pool is started, warmed, and takes over; the old one finishes what it holds
    and stops (as batch mode retires its workers). A pool whose process died is replaced at once.
    """

    GATHER = 32

    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.pool = self._pool()
        self.waiting: list[tuple[str, str, asyncio.Future]] = []
        self.busy = 0
        self.claims = 0          # claims checked by the current pool
        self.renewals = 0        # pools replaced after their claims
        self._renewal: asyncio.Task | None = None

    async def check(self, text: str, kind: str) -> list[dict[str, Any]]:
        """:func:`pain_asp.serve.work.check` of one body, gathered with the others waiting."""
        answer: asyncio.Future = asyncio.get_running_loop().create_future()
        self.waiting.append((text, kind, answer))
        self._dispatch()
        return await answer

    def _dispatch(self) -> None:
        while self.waiting and self.busy < self.options.workers:
            gathered, self.waiting = self.waiting[:self.GATHER], self.waiting[self.GATHER:]
            self.busy += 1
            asyncio.get_running_loop().create_task(self._send(gathered))

    async def _send(self, gathered: list[tuple[str, str, asyncio.Future]]) -> None:
        try:
            answers = await self.run(work.check_many, [(text, kind) for text, kind, _ in gathered], count=False)
            self._spent(sum(_claims_in(answer) for answer in answers))
            for (_, _, future), answer in zip(gathered, answers):
                if future.done():  # its client has gone
                    continue
                if isinstance(answer, Exception):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)
        except Exception as exc:  # noqa: BLE001  (every waiting request gets the failure)
            for _, _, future in gathered:
                if not future.done():
                    future.set_exception(exc)
        finally:
            self.busy -= 1
            self._dispatch()

    def _pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.options.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=work.start, initargs=(self.options.settings,))

    async def warm(self, pool: ProcessPoolExecutor | None = None) -> None:
        """Start the workers (each loads the knowledge base) before they get a request."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(pool or self.pool, work.ready)
                               for _ in range(self.options.workers)))

    def _spent(self, claims: int) -> None:
        self.claims += claims
        if self.claims >= self.options.recycle_claims * self.options.workers and self._renewal is None:
            self._renewal = asyncio.get_running_loop().create_task(self._renew())

    async def _renew(self) -> None:
        fresh = self._pool()
        try:
            await self.warm(fresh)
        except BrokenProcessPool:
            fresh.shutdown(wait=False, cancel_futures=True)
        else:
            old, self.pool, self.claims = self.pool, fresh, 0
            self.renewals += 1
            old.shutdown(wait=False)  # what it holds still finishes
            _log.info("check processes replaced after their claims")
        finally:
            self._renewal = None

    async def run(self, function: Callable, *args: Any, count: bool = True) -> Any:
        """``function(*args)`` in a check process (``count``: add the claims of its answer)."""
        try:
            answer = await asyncio.get_running_loop().run_in_executor(self.pool, function, *args)
        except RequestError as exc:
            if count:
                self._spent(_claims_in(exc))
            raise
        except BrokenProcessPool:
            _log.error("a check process stopped; starting new ones")
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._pool()
            raise RequestError.one(503, "", "a completed check (a check process stopped; send the request again)") from None
        if count:
            self._spent(_claims_in(answer))
        return answer

    def close(self) -> None:
        """Stop the workers."""
        self.pool.shutdown(wait=True, cancel_futures=True)


def _claims_in(answer: Any) -> int:
    """The claims an answer of :mod:`pain_asp.serve.work` is about."""
    if isinstance(answer, RequestError):
        return len(answer.results or [])
    if isinstance(answer, dict):  # the web page's review, or one coded description
        return len(answer.get("check", [answer]))
    return len(answer)


def _kind(request: Request) -> str:
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media not in KINDS:
        raise RequestError.one(415, "Content-Type", "one of " + ", ".join(KINDS), media[:60])
    return KINDS[media]


async def _text(request: Request) -> str:
    try:
        return (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError.one(400, "", "UTF-8 text") from None


def create_app(options: ServeOptions | None = None) -> FastAPI:
    """The application: the API under /v1, /healthz, and the web page at / (pain_asp.serve.page)."""
    from ..kb import rule_catalog
    from ..payers import load_registry

    options = options or ServeOptions()
    settings = options.settings
    rules = rule_catalog()
    registry = load_registry(list(settings.payer_dirs), set(rules))

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        app.state.checks = Checks(options)
        try:
            await app.state.checks.warm()
            yield
        finally:
            app.state.checks.close()

    def authorised(request: Request) -> None:
        if options.token is None or request.url.path in ("/login", "/healthz"):  # sign-in page; liveness probes
            return
        given = request.headers.get("authorization", "") or f"Bearer {request.cookies.get(TOKEN_COOKIE, '')}"
        if not hmac.compare_digest(given.encode(), f"Bearer {options.token}".encode()):
            raise RequestError.one(401, "Authorization", "Bearer <the server's token>")

    app = FastAPI(title="pain-asp", version=_version(), lifespan=lifespan, docs_url=None, redoc_url=None, dependencies=[Depends(authorised)],
                  description="Check interventional pain-management claims against coding rules and payer "
                              "policies. Answers are what `pain-asp ... --format json` prints, less file names.")
    app.state.options = options
    app.state.rules = rules
    app.state.registry = registry
    app.add_middleware(_BodyLimit, limit=options.max_body)
    if options.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=options.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError) -> Response:
        if exc.status == 401 and not request.url.path.startswith(("/v1/", "/openapi.json", "/healthz")):
            return RedirectResponse("/login", status_code=303)  # the web page signs in with a form
        return JSONResponse(exc.as_dict(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"claim_id": None, "field": ".".join(str(p) for p in e.get("loc", ())), "value": "",
                   "expected": e.get("msg", "a valid value"),
                   "message": f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"}
                  for e in exc.errors()]
        return JSONResponse({"errors": errors}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        error = RequestError.one(exc.status_code, "", "an endpoint of GET /openapi.json" if exc.status_code == 404
                                 else str(exc.detail))
        return JSONResponse(error.as_dict(), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def failure(request: Request, exc: Exception) -> JSONResponse:
        _log.error("%s %s failed: %s", request.method, request.url.path, type(exc).__name__)
        error = RequestError.one(500, "", "a completed request (an internal error stopped it; nothing was kept)")
        return JSONResponse(error.as_dict(), status_code=500)

    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict[str, Any]:
        """The server is up and its check processes have loaded the knowledge base."""
        return {"status": "ok", "rules": len(rules), "payers": registry.ids()}

    @app.post("/v1/check", tags=["claims"], openapi_extra=_CLAIMS_BODY)
    async def check(request: Request) -> list[dict[str, Any]]:
        """Check claims: what `pain-asp check --format json` prints (422 with `results` when a claim is bad)."""
        return await request.app.state.checks.check(await _text(request), _kind(request))

    @app.post("/v1/explain", tags=["claims"], openapi_extra=_CLAIMS_BODY)
    async def explain(request: Request, claim: str | None = Query(None, description="Only this claim id."),
                      rule: str | None = Query(None, description="Only this rule id.")) -> list[dict[str, Any]]:
        """Why each claim is (in)valid: what `pain-asp explain --format json` prints."""
        return await request.app.state.checks.run(work.explain, await _text(request), _kind(request), claim, rule)

    @app.post("/v1/fix", tags=["claims"], openapi_extra=_CLAIMS_BODY)
    async def fix(request: Request) -> list[dict[str, Any]]:
        """The smallest edits that clear every correctable denial: what `pain-asp fix --format json` prints."""
        return await request.app.state.checks.run(work.fix, await _text(request), _kind(request))

    @app.post("/v1/code", tags=["claims"])
    async def code(request: Request, body: CodeRequest) -> dict[str, Any]:
        """Code a procedure description: what `pain-asp code "..." --format json` prints."""
        return await request.app.state.checks.run(work.code, body.description, body.payer, body.pos, body.date,
                                                  list(body.dx))

    @app.get("/v1/rules", tags=["catalog"])
    def rules_list() -> list[dict[str, Any]]:
        """Every rule: what `pain-asp rules list --format json` prints."""
        return [rule.summary() for rule in rules.values()]

    @app.get("/v1/rules/{rule_id}", tags=["catalog"])
    def rules_show(rule_id: str) -> dict[str, Any]:
        """One rule with its sources, payer parameters and cases: `pain-asp rules show ID --format json`."""
        from ..authoring.rules import layout, show_rule

        if rule_id not in rules:
            raise RequestError.one(404, "rule_id", "a rule id (GET /v1/rules)", rule_id[:60])
        return show_rule(rule_id, layout(), list(settings.payer_dirs))

    @app.get("/v1/payers", tags=["catalog"])
    def payers_list() -> list[dict[str, Any]]:
        """The payer policies available (as `pain-asp payers list`)."""
        return [payer_summary(registry.get(p)) for p in registry.ids()]

    @app.get("/v1/payers/{payer_id}", tags=["catalog"])
    def payers_show(payer_id: str, date: dt.date | None = Query(None, description="Values in force on this day "
                                                                                  "(default: today).")) -> dict[str, Any]:
        """A payer's parameters and rule settings in force on a date, with sources (as `pain-asp payers show`)."""
        if payer_id not in registry.ids():
            raise RequestError.one(404, "payer_id", "a payer id (" + ", ".join(registry.ids()) + ")", payer_id[:60])
        return payer_in_force(registry.get(payer_id), date or dt.date.today())

    from .page import page_routes

    app.include_router(page_routes())
    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pain-asp")
    except PackageNotFoundError:
        return "0"
