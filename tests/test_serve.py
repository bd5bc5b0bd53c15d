"""pain-asp serve: the API answers what the command line prints, and keeps its limits (docs/serve.md)."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402
from test_cli import DENIED as CLI_DENIED  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from pain_asp.authoring.casefiles import load_case  # noqa: E402
from pain_asp.cli import app as cli  # noqa: E402
from pain_asp.engine import Checker  # noqa: E402
from pain_asp.modes.check import check_files  # noqa: E402
from pain_asp.serve.app import ServeOptions, create_app  # noqa: E402
from pain_asp.serve.work import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples" / "claims.yaml"
X12 = ROOT / "tests" / "data" / "x12"
TOKEN = "s3cret-token-for-tests-only"
DENIED = {**CLI_DENIED, "patient": {"id": "P-9", "birth_date": "1950-02-03"}}


def _cases() -> list[Path]:
    """One case of every rule folder (the first fire and the first pass), shipped payers only."""
    chosen = []
    for folder in sorted(p for p in (ROOT / "tests" / "cases").iterdir() if p.is_dir()):
        for prefix in ("fire_", "pass_"):
            for path in sorted(folder.glob(prefix + "*.yaml")):
                case = load_case(path)
                if not case.payer_dirs and case.ncci is None:
                    chosen.append(path)
                    break
    return chosen


CASES = _cases()


@pytest.fixture(scope="module")
def client():  # noqa: ANN201
    with TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def guarded():  # noqa: ANN201
    """A server with a token and small limits."""
    options = ServeOptions(Settings(max_claims=2), max_body=4000, token=TOKEN)
    with TestClient(create_app(options)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def checker() -> Checker:
    return Checker()


def _cli_json(path: Path, checker: Checker) -> list[dict]:
    """What ``pain-asp check PATH --format json`` prints (the function its command runs), less file names."""
    out = io.StringIO()
    check_files([path], out, fmt="json", checker=checker)
    return [{k: v for k, v in item.items() if k != "file"} for item in json.loads(out.getvalue())]


def test_examples_match_the_command_line(client: TestClient) -> None:
    run = CliRunner().invoke(cli, ["check", str(EXAMPLES), "--format", "json", "--fail-on", "never"])
    assert run.exit_code == 0, run.output
    expected = [{k: v for k, v in item.items() if k != "file"} for item in json.loads(run.stdout)]
    answer = client.post("/v1/check", content=EXAMPLES.read_text(), headers={"Content-Type": "application/yaml"})
    assert answer.status_code == 200
    assert answer.json() == expected
    assert {item["status"] for item in expected} >= {"clean", "deny"}
    as_json = client.post("/v1/check", json=json.loads(json.dumps(_yaml(EXAMPLES), default=str)))
    assert as_json.json() == expected


def _yaml(path: Path):  # noqa: ANN202
    from pain_asp.inputs.yamlsafe import safe_load

    return safe_load(path.read_text())


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_rule_cases_match_the_command_line(case: Path, client: TestClient, checker: Checker, tmp_path: Path) -> None:
    claims = load_case(case).claims
    path = tmp_path / "case.json"
    path.write_text(json.dumps(claims, default=str))
    answer = client.post("/v1/check", content=path.read_text(), headers={"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == _cli_json(path, checker)


def test_837p_matches_the_command_line(client: TestClient, checker: Checker) -> None:
    pytest.importorskip("pyx12")
    path = X12 / "multi_claim.837"
    answer = client.post("/v1/check", content=path.read_text(), headers={"Content-Type": "application/edi-x12"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == _cli_json(path, checker)
    assert len(answer.json()) > 1


def test_json_lines_and_one_claim(client: TestClient, checker: Checker, tmp_path: Path) -> None:
    path = tmp_path / "two.jsonl"
    # D-2 is another patient's: one patient's claims billing one service on one date would be
    # suspect duplicates of each other (duplicate-across-claims).
    path.write_text(json.dumps(DENIED) + "\n"
                    + json.dumps({**DENIED, "claim_id": "D-2", "patient": {"id": "P-D2"}}) + "\n")
    lines = client.post("/v1/check", content=path.read_text(), headers={"Content-Type": "application/x-ndjson"})
    assert lines.json() == _cli_json(path, checker)
    one = client.post("/v1/check", json=DENIED).json()
    assert [f["rule"] for f in one[0]["findings"]] == [f["rule"] for f in lines.json()[0]["findings"]]
    assert one[0]["status"] == "deny"


def test_fix_and_explain_match_the_command_line(client: TestClient, tmp_path: Path) -> None:
    path = tmp_path / "denied.json"
    path.write_text(json.dumps(DENIED))
    for command in ("fix", "explain"):
        run = CliRunner().invoke(cli, [command, str(path), "--format", "json"])
        assert run.exit_code in (0, 1), run.output
        expected = [{k: v for k, v in item.items() if k != "file"} for item in json.loads(run.stdout)]
        answer = client.post(f"/v1/{command}", json=DENIED)
        assert answer.status_code == 200, answer.text
        assert answer.json() == expected
    fixed = client.post("/v1/fix", json=DENIED).json()[0]
    assert fixed["status"] == "fixed" and fixed["corrected"]
    clean = client.post("/v1/check", json=fixed["corrected"]).json()[0]
    assert clean["status"] in ("clean", "info", "warn"), clean


def test_explain_of_one_rule_and_unknown_ids(client: TestClient) -> None:
    one = client.post("/v1/explain?rule=imaging-included", json=DENIED).json()
    assert [e["rule"] for e in one[0]["explanations"]] == ["imaging-included"]
    assert client.post("/v1/explain?rule=no-such-rule", json=DENIED).status_code == 404
    missing = client.post("/v1/explain?claim=nope", json=DENIED)
    assert missing.status_code == 404 and missing.json()["errors"][0]["field"] == "claim"


def test_bad_claims_are_422_naming_field_without_phi(client: TestClient) -> None:
    bad = {**DENIED, "patient": {"id": "P-9", "birth_date": "not-a-date"},
           "lines": [{**DENIED["lines"][0], "code": "6449"}]}
    answer = client.post("/v1/check", json=bad)
    assert answer.status_code == 422
    body = answer.json()
    fields = {e["field"] for e in body["errors"]}
    assert fields & {"patient.birth_date", "lines[1].code"}
    assert "not-a-date" not in answer.text and "P-9" not in answer.text
    assert body["results"][0]["status"] == "error"
    syntax = client.post("/v1/check", content="{not json", headers={"Content-Type": "application/json"})
    assert syntax.status_code == 422 and "valid JSON" in syntax.json()["errors"][0]["expected"]
    assert "Traceback" not in syntax.text
    unknown = client.post("/v1/check", content="x", headers={"Content-Type": "text/plain"})
    assert unknown.status_code == 415 and unknown.json()["errors"][0]["field"] == "Content-Type"
    wrong_payer = client.post("/v1/check", json={**DENIED, "payer": "medicaree"})
    assert wrong_payer.status_code == 422 and wrong_payer.json()["errors"][0]["field"] == "payer"
    assert client.get("/v1/nothing").status_code == 404
    code = client.post("/v1/code", json={"description": "x"})
    assert code.status_code == 422 and {e["field"] for e in code.json()["errors"]} >= {"body.payer", "body.pos"}


def test_catalog_endpoints(client: TestClient) -> None:
    run = CliRunner().invoke(cli, ["rules", "list", "--format", "json"])
    assert client.get("/v1/rules").json() == json.loads(run.stdout)
    shown = CliRunner().invoke(cli, ["rules", "show", "imaging-included", "--format", "json"])
    assert client.get("/v1/rules/imaging-included").json() == json.loads(shown.stdout)
    assert client.get("/v1/rules/nope").status_code == 404
    payers = client.get("/v1/payers").json()
    assert "medicare" in [p["id"] for p in payers]
    medicare = client.get("/v1/payers/medicare?date=2026-03-02").json()
    assert medicare["on"] == "2026-03-02" and all(p["source"] for p in medicare["parameters"])
    assert client.get("/v1/payers/nope").status_code == 404
    assert client.get("/v1/payers/medicare?date=2026-13-01").status_code == 422
    assert "/v1/check" in client.get("/openapi.json").json()["paths"]
    assert client.get("/healthz").json()["status"] == "ok"


def test_code_matches_the_command_line(client: TestClient) -> None:
    words = "bilateral L4-L5 facet injection with fluoroscopy"
    run = CliRunner().invoke(cli, ["code", words, "--payer", "medicare", "--pos", "11", "--date", "2026-03-02",
                                   "--dx", "M47.816", "--format", "json"])
    answer = client.post("/v1/code", json={"description": words, "payer": "medicare", "pos": "11",
                                           "date": "2026-03-02", "dx": ["M47.816"]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == json.loads(run.stdout)


def test_token_is_required_and_compared(guarded: TestClient) -> None:
    assert guarded.get("/v1/rules").status_code == 401
    assert guarded.get("/openapi.json").status_code == 200  # the schema is public
    assert guarded.get("/healthz").status_code == 200
    assert guarded.get("/v1/rules", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert guarded.get("/v1/rules", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert guarded.get("/", follow_redirects=False).headers["location"] == "/login"
    assert guarded.post("/login", data={"token": "wrong"}).status_code == 401
    signed_in = guarded.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert signed_in.status_code == 303 and "samesite=strict" in signed_in.headers["set-cookie"].lower()
    assert "httponly" in signed_in.headers["set-cookie"].lower()
    assert guarded.get("/").status_code == 200  # the cookie is sent back
    guarded.cookies.clear()


def test_limits(guarded: TestClient) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    big = guarded.post("/v1/check", content=b"[" + b" " * 5000 + b"]", headers={**auth, "Content-Type": "application/json"})
    assert big.status_code == 413
    many = guarded.post("/v1/check", json=[{**DENIED, "claim_id": f"C{n}"} for n in range(3)], headers=auth)
    assert many.status_code == 413 and "at most 2 claims" in many.json()["errors"][0]["expected"]
    assert guarded.post("/v1/check", json=[DENIED], headers=auth).status_code == 200


def test_the_solve_bound_reaches_the_check_processes() -> None:
    from pain_asp.serve import work

    work.start(Settings(solve_timeout=3.5))
    assert work._STATE["checker"].options.timeout == 3.5
    work._STATE.clear()


def test_serve_refuses_an_open_address_without_a_token(tmp_path: Path) -> None:
    run = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert run.exit_code == 2 and "--token-file" in run.output
    short = tmp_path / "token"
    short.write_text("abc")
    run = CliRunner().invoke(cli, ["serve", "--token-file", str(short)])
    assert run.exit_code == 2 and "16 characters" in run.output


def test_gathered_requests_do_not_share_batch_history() -> None:
    """Requests checked in one solve each see only their own claims as history."""
    from pain_asp.serve import work

    claims = load_case(ROOT / "tests" / "cases" / "em-in-global-period" / "fire_batch_rfa_claim_then_visit_claim.yaml").claims
    both, visit = json.dumps(claims, default=str), json.dumps(claims[1:], default=str)
    work.start(Settings())
    try:
        alone = [work.check(both, "json"), work.check(visit, "json")]
        gathered = work.check_many([(both, "json"), (visit, "json"), ("{", "json")])
    finally:
        work._STATE.clear()
    assert "em-in-global-period" in {f["rule"] for f in alone[0][1]["findings"]}
    assert "em-in-global-period" not in {f["rule"] for f in alone[1][0]["findings"]}
    assert gathered[:2] == alone
    assert isinstance(gathered[2], work.RequestError) and gathered[2].status == 422


def test_page_escapes_and_reads_uploads(client: TestClient) -> None:
    home = client.get("/")
    assert home.status_code == 200 and '<label for="claims">' in home.text and "<script" not in home.text
    hostile = {**DENIED, "claim_id": "<script>alert(1)</script>"}
    page = client.post("/page/check", data={"claims": json.dumps(hostile), "kind": "auto"})
    assert page.status_code == 200
    assert "<script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "imaging-included" in page.text and "Apply corrections" in page.text
    # The shipped NCCI tables are a starter set: the page says so, as check does.
    assert 'id="ncci-data"' in page.text and "starter PTP table" in page.text
    pytest.importorskip("pyx12")
    upload = (X12 / "multi_claim.837").read_bytes()
    uploaded = client.post("/page/check", data={"claims": "", "kind": "auto"},
                           files={"upload": ("claims.837", upload, "application/octet-stream")})
    assert uploaded.status_code == 200 and uploaded.text.count('<section class="claim"') > 1
    empty = client.post("/page/check", data={"claims": " ", "kind": "auto"})
    assert empty.status_code == 400 and "Traceback" not in empty.text


def test_page_download_catalog_and_code(client: TestClient) -> None:
    download = client.post("/page/download", data={"claims": "- claim_id: X\n"})
    assert download.headers["content-disposition"].startswith("attachment") and download.text == "- claim_id: X\n"
    assert "imaging-included" in client.get("/page/rules").text
    rule = client.get("/page/rules/imaging-included")
    assert rule.status_code == 200 and "A57787" in rule.text
    assert client.get("/page/rules/nope").status_code == 404
    payer = client.get("/page/payers/medicare?date=2026-03-02")
    assert payer.status_code == 200 and 'value="2026-03-02"' in payer.text
    coded = client.post("/page/code", data={"description": "bilateral L4-L5 facet injection with fluoroscopy",
                                            "payer": "medicare", "pos": "11", "date": "2026-03-02", "dx": "M47.816"})
    assert coded.status_code == 200 and "64493" in coded.text and "Check this claim" in coded.text


def test_check_processes_are_replaced_after_their_claims() -> None:
    """Past ``recycle_claims`` claims per process a fresh pool takes over; answers stay the same."""
    with TestClient(create_app(ServeOptions(recycle_claims=3))) as small:
        checks = small.app.state.checks
        first, pool = small.post("/v1/check", json=DENIED).json(), checks.pool
        small.post("/v1/check", json=[{**DENIED, "claim_id": f"R{n}"} for n in range(3)])
        deadline = time.monotonic() + 60
        while checks.renewals == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert checks.renewals == 1 and checks.pool is not pool and checks.claims == 0
        assert small.post("/v1/check", json=DENIED).json() == first


def test_cors_only_when_configured(client: TestClient) -> None:
    preflight = {"Origin": "https://pm.example", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in client.options("/v1/check", headers=preflight).headers
    allowed = TestClient(create_app(ServeOptions(cors_origins=["https://pm.example"])))  # no request reaches a check
    assert allowed.options("/v1/check", headers=preflight).headers["access-control-allow-origin"] == "https://pm.example"
    other = allowed.options("/v1/check", headers={**preflight, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
