"""The HTML denial report (pain_asp/render/report.py, ``pain-asp report``)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pain_asp.cli import app
from pain_asp.inputs.readers import read_claims
from pain_asp.render.report import ReportData, build_report, is_results_file, render_html

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples" / "claims.yaml"


@pytest.fixture(scope="module")
def example_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "results.jsonl"
    done = runner.invoke(app, ["check", str(EXAMPLES), "--format", "jsonl", "--output", str(path),
                               "--fail-on", "never"])
    assert done.exit_code == 0, done.output
    return path


def _results(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_figures_match_the_results_and_the_claims(example_results: Path) -> None:
    results = _results(example_results)
    claims = {r.claim.claim_id: r.claim for r in read_claims([EXAMPLES])}
    data = build_report([example_results, EXAMPLES])
    assert data.claims == len(results) == len(claims)
    assert data.statuses.get("clean", 0) == sum(r["status"] == "clean" for r in results)
    assert data.findings == sum(len(r["findings"]) for r in results)
    # charges at risk: each line named by a deny finding, once per claim, at its billed charge
    expected = Decimal(0)
    for r in results:
        denied = {n for f in r["findings"] if f["severity"] == "deny" for n in f["lines"]}
        expected += sum((claims[r["claim_id"]].lines[n - 1].charge or Decimal(0)) for n in denied)
    assert data.at_risk == int(expected * 100) and data.at_risk > 0
    assert data.billed == int(sum(line.charge or 0 for c in claims.values() for line in c.lines) * 100)
    deny_by_carc = {}
    for r in results:
        for f in r["findings"]:
            if f["severity"] == "deny":
                key = f["carc"] + (f" / {f['rarc']}" if f["rarc"] else "")
                deny_by_carc[key] = deny_by_carc.get(key, 0) + 1
    assert {k: t.findings for k, t in data.carcs.items()} == deny_by_carc
    assert sum(t.at_risk for t in data.payers.values()) == data.at_risk
    # checking the claims directly gives the same figures
    direct = build_report([EXAMPLES])
    assert render_html(direct) == render_html(data).replace("results.jsonl, claims.yaml", "claims.yaml")


def test_results_alone_have_no_charges(example_results: Path) -> None:
    assert is_results_file(example_results) and not is_results_file(EXAMPLES)
    data = build_report([example_results])
    assert not data.charges_known
    page = render_html(data)
    assert "Charges at risk need the claims" in page and "$" not in page.split('id="by-rule"')[1].split("</table>")[0]


def test_page_is_self_contained_escaped_and_deterministic(tmp_path: Path) -> None:
    data = ReportData(sources=["x.jsonl"])
    evil = '<script>alert("x")</script>'
    data.add({"claim_id": evil, "file": "x", "position": 1, "payer": "medicare", "status": "deny",
              "findings": [{"rule": "imaging-included", "severity": "deny", "title": "T <b>",
                            "message": "m </table>", "lines": [1], "codes": ["77003"], "carc": "97",
                            "rarc": "N20", "fix": "drop line 1", "source": [], "payer": "medicare"}]},
             [("77003", 12000)])
    data.add({"claim_id": "E-1", "file": "x", "position": 2, "payer": None, "status": "error",
              "errors": [{"message": "x: bad <input>"}]})
    page = render_html(data)
    assert "<script" not in page and "&lt;script&gt;" in page
    assert "<link" not in page and " src=" not in page and "@import" not in page and "url(" not in page
    assert not re.search(r'href="(?!#)', page)  # every link stays on the page
    assert page.count("<svg") >= 6 and "$120.00" in page
    assert render_html(data) == page


def test_cli_writes_the_report(tmp_path: Path, example_results: Path) -> None:
    target = tmp_path / "report.html"
    done = runner.invoke(app, ["report", str(example_results), str(EXAMPLES), "-o", str(target)])
    assert done.exit_code == 0, done.output
    assert "clean-claim rate" in done.stdout and "at risk" in done.stdout
    assert target.read_text().startswith("<!doctype html>")
    assert runner.invoke(app, ["report", str(EXAMPLES), "-o", str(tmp_path / "r.txt")]).exit_code == 2
    broken = tmp_path / "broken.jsonl"
    broken.write_text(example_results.read_text().splitlines()[0] + "\n{oops\n")
    failed = runner.invoke(app, ["report", str(broken), "-o", str(target)])
    assert failed.exit_code == 2 and "Traceback" not in failed.output


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _chromium_env(home: Path, temp: Path) -> dict[str, str]:
    """Chromium writes crash-report settings and a dconf file under the home folder even with
    ``--user-data-dir`` (they go to ``home``), and its singleton socket into $TMPDIR, where a
    killed Chromium leaves it (it goes to ``temp``)."""
    return {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"), "TMPDIR": str(temp)}


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium is not installed "
                    "(apt-get install chromium); .ci/run installs it")
def test_report_renders_in_headless_chromium(tmp_path: Path, short_temp: Path) -> None:
    target = tmp_path / "report.html"
    assert runner.invoke(app, ["report", str(EXAMPLES), "-o", str(target)]).exit_code == 0
    flags = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}"]
    env = _chromium_env(tmp_path, short_temp)
    dom = subprocess.run([*flags, "--dump-dom", target.as_uri()], capture_output=True, text=True,
                         timeout=120, check=True, env=env).stdout
    for section in ("summary", "status", "by-severity", "by-rule", "by-carc", "by-payer", "by-code",
                    "fixes", "claims", "drill"):
        assert f'id="{section}"' in dom, section
    for chart in ("chart-status", "chart-severity", "chart-rules", "chart-carc", "chart-payers", "chart-codes"):
        assert re.search(rf'<svg[^>]*id="{chart}"', dom), chart
    assert dom.count("<rect") > 20 and dom.count("<table") >= 9
    assert "EX-06-rfa-without-blocks" in dom and 'id="rule-rfa-prerequisite"' in dom
    shot = tmp_path / "report.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1280,2400", target.as_uri()],
                   capture_output=True, timeout=120, check=True, env=env)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
