"""pain-asp serve as a real server on 127.0.0.1: the web page in headless Chromium, and a load test.

The browser is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON
messages ending in a NUL byte on file descriptors 3 and 4), so no driver package is needed.
Screenshots of each step go to $PAIN_ASP_SHOTS (default: the test's temporary folder).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from test_cli import DENIED as CLI_DENIED  # noqa: E402
from test_report import _chromium, _chromium_env  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DENIED = {**CLI_DENIED, "claim_id": "WEB-1", "patient": {"id": "P-77"}}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """``pain-asp serve`` on a free loopback port; yields its base URL."""
    port = _free_port()
    log = (tmp_path_factory.mktemp("serve") / "server.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "pain_asp.cli", "serve", "--port", str(port)],
                               stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the server did not start (see {log.name})")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
    logged = Path(log.name).read_text()
    assert "1 claim(s) [WEB-1] in" in logged  # claim ids and timings (of whichever tests ran here) ...
    assert "P-77" not in logged and "M47.816" not in logged and "64493" not in logged  # ... never content


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe; one page."""

    def __init__(self, binary: str, profile: Path, env: dict[str, str]) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def pipes() -> None:  # the child reads commands on fd 3 and writes answers on fd 4
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.process = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--window-size=1280,1000", "about:blank"],
            preexec_fn=pipes, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer, self._id, self.session = b"", 0, None
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Emulation.setDeviceMetricsOverride", width=1280, height=1000, deviceScaleFactor=1, mobile=False)

    def send(self, method: str, **params: object) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if self.session is not None:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._from_browser, 1 << 20)
                assert chunk, "Chromium closed the pipe"
                self._buffer += chunk
            data, self._buffer = self._buffer.split(b"\0", 1)
            answer = json.loads(data)
            if answer.get("id") == self._id:
                assert "error" not in answer, answer
                return answer["result"]

    def evaluate(self, expression: str) -> object:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.evaluate(f"document.readyState === 'complete' && !!({expression})"):
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            time.sleep(0.1)

    def click_and_wait(self, click: str, then: str) -> None:
        """Run ``click`` (which submits a form), then wait for the new page to satisfy ``then``."""
        self.evaluate("window.__before = true; " + click)
        self.wait_for(f"window.__before === undefined && ({then})")

    def screenshot(self, path: Path) -> None:
        height = self.evaluate("document.documentElement.scrollHeight")
        self.send("Emulation.setDeviceMetricsOverride", width=1280, height=min(int(height), 3000),
                  deviceScaleFactor=1, mobile=False)
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"]))
        self.send("Emulation.setDeviceMetricsOverride", width=1280, height=1000, deviceScaleFactor=1, mobile=False)

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
        os.close(self._to_browser)
        os.close(self._from_browser)


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium is not installed (apt-get install chromium); "
                    ".ci/run installs it")
def test_page_in_chromium_paste_deny_fix_clean(server: str, tmp_path: Path, short_temp: Path) -> None:
    shots = Path(os.environ.get("PAIN_ASP_SHOTS", tmp_path))
    browser = Browser(_chromium(), tmp_path / "profile", _chromium_env(tmp_path, short_temp))
    try:
        browser.send("Page.navigate", url=server + "/")
        browser.wait_for("document.getElementById('claims')")
        assert browser.evaluate("document.querySelector('label[for=claims]') !== null")
        browser.evaluate(f"document.getElementById('claims').value = {json.dumps(json.dumps(DENIED, indent=2))}")
        browser.screenshot(shots / "serve-1-pasted.png")

        browser.click_and_wait("document.querySelector('form[action=\"/page/check\"] button').click()",
                               "document.querySelector('section.claim')")
        assert browser.evaluate("document.querySelector('section.claim h2 .badge').textContent") == "deny"
        rules = browser.evaluate("[...document.querySelectorAll('section.claim tbody tr td:nth-child(2)')]"
                                 ".map(td => td.textContent)")
        assert "imaging-included" in rules
        browser.evaluate("document.querySelector('section.claim details').open = true")
        assert "To pass" in browser.evaluate("document.querySelector('section.claim details').textContent")
        browser.screenshot(shots / "serve-2-denied.png")

        apply = "[...document.querySelectorAll('button')].find(b => b.textContent.startsWith('Apply corrections'))"
        browser.click_and_wait(f"{apply}.click()", "document.querySelector('section.claim')")
        assert browser.evaluate("document.querySelector('section.claim h2 .badge').textContent") == "clean"
        assert browser.evaluate("document.querySelectorAll('section.claim tbody tr').length") == 0
        browser.screenshot(shots / "serve-3-fixed-clean.png")
    finally:
        browser.close()
    for name in ("serve-1-pasted.png", "serve-2-denied.png", "serve-3-fixed-clean.png"):
        assert (shots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_load_400_requests_32_at_a_time(server: str, tmp_path: Path) -> None:
    """Every answer is the right one; prints requests/s and latency beside the CLI's one-claim time."""
    claim = tmp_path / "claim.json"
    claim.write_text(json.dumps(DENIED))
    expected = httpx.post(server + "/v1/check", json=DENIED, timeout=60).json()
    assert expected[0]["status"] == "deny"
    latencies: list[float] = []

    async def run() -> float:
        gate = asyncio.Semaphore(32)
        async with httpx.AsyncClient(base_url=server, timeout=60,
                                     limits=httpx.Limits(max_connections=32)) as client:
            async def one() -> None:
                async with gate:
                    began = time.perf_counter()
                    answer = await client.post("/v1/check", json=DENIED)
                    latencies.append(time.perf_counter() - began)
                assert answer.status_code == 200 and answer.json() == expected

            began = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(400)))
            return time.perf_counter() - began

    wall = asyncio.run(asyncio.wait_for(run(), timeout=300))
    assert len(latencies) == 400
    cli = []
    for _ in range(3):
        began = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pain_asp.cli", "check", str(claim), "--format", "json"],
                              capture_output=True, text=True, timeout=120)
        cli.append(time.perf_counter() - began)
        assert done.returncode == 1
        assert [{k: v for k, v in r.items() if k != "file"} for r in json.loads(done.stdout)] == expected
    alone = []
    with httpx.Client(base_url=server, timeout=60) as client:
        for _ in range(40):
            began = time.perf_counter()
            assert client.post("/v1/check", json=DENIED).json() == expected
            alone.append(time.perf_counter() - began)
    ordered, single = sorted(latencies), sorted(alone)
    print(f"\nserve: 400 requests, 32 at a time, in {wall:.1f} s: {400 / wall:.1f} requests/s; "
          f"latency p50 {1000 * ordered[199]:.0f} ms, p95 {1000 * ordered[379]:.0f} ms; "
          f"one request at a time (40): p50 {1000 * single[19]:.0f} ms, p95 {1000 * single[37]:.0f} ms; "
          f"CLI one claim (median of 3) {1000 * statistics.median(cli):.0f} ms")
