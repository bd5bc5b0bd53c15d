"""The batch benchmark behind ``pain-asp bench`` (docs/scaling.md): 100,000 claims, 1 and 2 workers.

One run, one machine, every figure from the same run so that ratios hold however loaded
the machine is:

1. **Claims.** ``n_claims`` realistic claims from :func:`pain_asp.bench.generate.write_jsonl`
   (1-6 lines, the real code mix, returning patients, earlier injections in ``history``),
   written as JSON Lines.
2. **Batch check, once per worker setting.** The real command, as a user runs it:
   ``python -m pain_asp.cli check claims.jsonl --format jsonl --output results.jsonl
   --workers N --fail-on never``, in a child process. The wall time covers everything:
   interpreter start, reading and validating, the patient index, checking in worker
   processes, writing. Memory is sampled every 0.1 s over the whole process tree (the
   command, its fork server and its workers): the peak of the summed resident set (RSS,
   which counts pages shared between processes once per process, so it overstates) and,
   where Linux offers it, of the summed proportional set (PSS, shared pages split between
   their processes: the memory the batch really holds), and the largest resident set of the
   command itself and of any one process below it (a worker). The outputs of every setting
   are compared byte for byte. From the same samples: the CPU time of the command itself
   against that of the processes below it (the workers), whose ratio is the parent's share
   of the work per claim and gives, by Amdahl's law, the efficiency 16 workers would reach
   (:func:`amdahl_efficiency`); and the parallel efficiency of each setting against
   ``N x`` the one-worker rate. With ``dask`` the largest setting runs again with
   ``--dask local`` (a LocalCluster of as many processes), compared in time and bytes.
3. **The parent's share without its start-up.** The same batch once more, checked by
   :func:`pain_asp.modes.check.check_files` in this process at the largest setting: the CPU
   time of this thread around the call (no imports, no policy loading) against that of the
   workers below it, per claim; a small batch overstates the share of step 2 by the start-up.
4. **Baseline.** The first ``baseline`` claims of the same file through a fresh clingo
   Control per claim (``CheckOptions(chunk_size=1)``), in this process, with batch history:
   what checking claim by claim would cost. The Checker is built before the clock starts.
5. **One claim through the CLI**: median wall of ``python -m pain_asp.cli check claim.yaml``.

``pain-asp bench --claims 100000 --workers 1 --workers 2 --baseline 200 --dask`` runs it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Optional

__all__ = ["run_batch_bench", "format_batch_report", "cli_wall_of_first_claim", "TreeSampler", "TARGETS",
           "amdahl_efficiency"]

# The targets of docs/scaling.md.
TARGETS = {"per_core": 1500.0, "ratio": 60.0, "worker_mb": 150.0, "cli_ms": 200.0, "parent_share": 0.015,
           "dask_ratio": 1.5}


def amdahl_efficiency(share: float, workers: int = 16) -> float:
    """Parallel efficiency at ``workers`` by Amdahl's law when the parent's CPU per claim is
    ``share`` of a worker's (the serial fraction is share / (1 + share))."""
    serial = share / (1 + share)
    return 1 / (serial + (1 - serial) / workers) / workers


class TreeSampler:
    """Samples the memory of a process and all its descendants in a background thread (Linux).

    ``peak_rss_mb``: the largest sum of resident sets seen; ``peak_pss_mb``: the same for
    proportional sets (None where ``smaps_rollup`` is missing); ``peak_process_mb``: the
    largest single process; ``peak_root_mb`` and ``peak_other_mb``: the largest resident set
    of the process ``pid`` itself and of any process below it. The peaks of single processes
    are their high-water marks (``VmHWM``: the largest resident set the process ever had,
    also between two samples); ``seen``: the processes seen;
    ``cpu_seconds``: the CPU time (user + system) the tree used, from each process's last
    sample (a process that ends between two samples loses at most one interval of it), and
    ``root_cpu_seconds`` the part of it that ``pid`` itself used.
    """

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid, self.interval = pid, interval
        self.peak_rss_mb = 0.0
        self.peak_pss_mb: Optional[float] = None
        self.peak_process_mb = 0.0
        self.peak_root_mb = 0.0
        self.peak_other_mb = 0.0
        self.seen: set[int] = set()
        self._cpu: dict[int, float] = {}
        self._stats: dict[int, list[bytes]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.available = Path("/proc/self/status").exists()

    def __enter__(self) -> "TreeSampler":
        if self.available:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.available:
            self._thread.join()

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    stat = handle.read()
            except OSError:
                continue
            fields = stat[stat.rfind(b")") + 2:].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            self._stats[int(entry)] = fields
        out: list[int] = []
        todo = [self.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo.extend(children.get(pid, []))
        return out

    @staticmethod
    def _high_water(pid: int) -> float:
        """The largest resident set process ``pid`` has had (MB), 0 when unknown."""
        try:
            with open(f"/proc/{pid}/status", "rb") as handle:
                for line in handle:
                    if line.startswith(b"VmHWM:"):
                        return int(line.split()[1]) / 1024
        except (OSError, ValueError, IndexError):
            pass
        return 0.0

    @staticmethod
    def _memory(pid: int) -> tuple[float, Optional[float]]:
        rss = pss = None
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
                for line in handle:
                    if line.startswith(b"Rss:"):
                        rss = int(line.split()[1]) / 1024
                    elif line.startswith(b"Pss:"):
                        pss = int(line.split()[1]) / 1024
        except OSError:
            pass
        if rss is None:
            try:
                with open(f"/proc/{pid}/statm", "rb") as handle:
                    rss = int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
            except (OSError, ValueError, IndexError):
                rss = 0.0
        return rss, pss

    @property
    def cpu_seconds(self) -> float:
        """CPU time used by the tree so far."""
        return sum(self._cpu.values())

    @property
    def root_cpu_seconds(self) -> float:
        """CPU time used by the process ``pid`` itself so far."""
        return self._cpu.get(self.pid, 0.0)

    def _run(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        while not self._stop.is_set():
            total_rss, total_pss, have_pss = 0.0, 0.0, True
            self._stats = {}
            for pid in self._tree():
                fields = self._stats.get(pid)
                if fields is not None:  # utime and stime: fields 14 and 15 of /proc/PID/stat
                    self._cpu[pid] = (int(fields[11]) + int(fields[12])) / tick
                rss, pss = self._memory(pid)
                if rss:
                    self.seen.add(pid)
                total_rss += rss
                peak = max(rss, self._high_water(pid))
                self.peak_process_mb = max(self.peak_process_mb, peak)
                if pid == self.pid:
                    self.peak_root_mb = max(self.peak_root_mb, peak)
                else:
                    self.peak_other_mb = max(self.peak_other_mb, peak)
                if pss is None:
                    have_pss = False
                else:
                    total_pss += pss
            self.peak_rss_mb = max(self.peak_rss_mb, total_rss)
            if have_pss:
                self.peak_pss_mb = max(self.peak_pss_mb or 0.0, total_pss)
            self._stop.wait(self.interval)


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _statuses(path: Path) -> dict[str, int]:
    counts: Counter[str] = Counter()
    with open(path, encoding="utf-8") as handle:
        for text in handle:
            if text.strip():
                counts[json.loads(text)["status"]] += 1
    return dict(sorted(counts.items()))


def _batch(source: Path, target: Path, workers: int, dask: bool = False) -> dict[str, Any]:
    command = [sys.executable, "-m", "pain_asp.cli", "check", str(source), "--format", "jsonl",
               "--output", str(target), "--fail-on", "never", "--workers", str(workers)]
    command += ["--dask", "local"] if dask else []
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with TreeSampler(process.pid) as sampler:
        out, err = process.communicate()
    elapsed = time.perf_counter() - start
    if process.returncode != 0:
        tail = (err.decode("utf-8", "replace").strip().splitlines() or ["(no message)"])[-1]
        raise RuntimeError(f"the batch check exited with {process.returncode}: {tail}")
    shown = ["pain-asp", *command[3:]]  # as a user types it, on the bench's file names
    shown[2], shown[6] = "claims.jsonl", target.name
    return {"workers": workers, "dask": dask, "command": " ".join(shown), "seconds": round(elapsed, 2),
            "peak_rss_mb": round(sampler.peak_rss_mb, 1),
            "peak_pss_mb": round(sampler.peak_pss_mb, 1) if sampler.peak_pss_mb is not None else None,
            "peak_process_mb": round(sampler.peak_process_mb, 1),
            "peak_parent_mb": round(sampler.peak_root_mb, 1), "peak_worker_mb": round(sampler.peak_other_mb, 1),
            "processes_seen": len(sampler.seen), "cpu_s": round(sampler.cpu_seconds, 2),
            "parent_cpu_s": round(sampler.root_cpu_seconds, 2),
            "sha256": _digest(target)}


def _parent_per_claim(source: Path, target: Path, workers: int) -> dict[str, Any]:
    """The command's own CPU per claim without its start-up: :func:`check_files` run in this
    process, the CPU time of its thread around the call against that of the workers below it."""
    from ..engine import Checker
    from ..modes.check import BatchOptions, check_files

    checker = Checker()
    with TreeSampler(os.getpid()) as sampler, open(target, "w", encoding="utf-8") as out:
        before = time.thread_time()
        summary = check_files([source], out, fmt="jsonl", checker=checker, options=BatchOptions(workers=workers))
        parent = time.thread_time() - before
        time.sleep(2 * sampler.interval)  # the last workers' final samples
    workers_cpu = sampler.cpu_seconds - sampler.root_cpu_seconds
    share = parent / workers_cpu if workers_cpu > 0 else None
    return {"workers": workers, "claims": summary.claims, "parent_us": round(1e6 * parent / summary.claims, 1),
            "worker_us": round(1e6 * workers_cpu / summary.claims, 1),
            "share": round(share, 4) if share is not None else None,
            "amdahl_16": round(amdahl_efficiency(share), 3) if share is not None else None}


def _baseline(source: Path, count: int, folder: Path) -> dict[str, Any]:
    from ..engine import Checker, CheckOptions
    from ..history import batch_history
    from ..inputs.readers import read_claims

    sample = folder / "baseline.jsonl"
    with open(source, encoding="utf-8") as handle, open(sample, "w", encoding="utf-8") as out:
        for _, text in zip(range(count), handle):
            out.write(text)
    checker = Checker(CheckOptions(chunk_size=1))
    start = time.perf_counter()
    records = list(read_claims([sample], checker.known_payers()))
    provider = batch_history([r.claim for r in records if r.claim is not None])
    done = sum(1 for _ in checker.check(records, history=provider))
    elapsed = time.perf_counter() - start
    return {"claims": done, "seconds": round(elapsed, 2), "claims_per_s": round(done / elapsed, 2)}


def run_batch_bench(n_claims: int = 100_000, seed: int = 1, baseline: int = 200,
                    workers: tuple[int, ...] = (1, 2), cli_runs: int = 5,
                    workdir: Optional[str | Path] = None, dask: bool = False) -> dict[str, Any]:
    """Run the benchmark (see the module docstring); returns its figures."""
    if n_claims < 1 or baseline < 1 or not workers or min(workers) < 1:
        raise ValueError("claims, baseline and workers must be >= 1")
    import clingo

    from ..kb import rule_catalog
    from .generate import write_jsonl

    figures: dict[str, Any] = {
        "claims": n_claims, "seed": seed, "workers": list(workers), "baseline_claims": min(baseline, n_claims),
        "cpus": os.cpu_count(), "python": platform.python_version(), "clingo": clingo.__version__,
        "platform": platform.platform(terse=True), "rules": len(rule_catalog()),
    }
    try:
        figures["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    with tempfile.TemporaryDirectory(prefix="pain-asp-bench-", dir=workdir) as tmp:
        folder = Path(tmp)
        source = folder / "claims.jsonl"
        start = time.perf_counter()
        write_jsonl(source, n_claims, seed)
        figures["generate_s"] = round(time.perf_counter() - start, 2)
        figures["input_mb"] = round(source.stat().st_size / 1e6, 1)
        runs = []
        for count in workers:
            target = folder / f"results-{count}.jsonl"
            run = _batch(source, target, count)
            run["claims_per_s"] = round(n_claims / run["seconds"], 1)
            run["claims_per_cpu_s"] = round(n_claims / run["cpu_s"], 1) if run["cpu_s"] else None
            worker_cpu = run["cpu_s"] - run["parent_cpu_s"]
            run["parent_share"] = round(run["parent_cpu_s"] / worker_cpu, 4) if worker_cpu > 0 else None
            run["amdahl_16"] = round(amdahl_efficiency(run["parent_share"]), 3) if run["parent_share"] is not None else None
            runs.append(run)
        one = next((r for r in runs if r["workers"] == 1), None)
        for run in runs:
            if one is not None:
                run["efficiency"] = round(run["claims_per_s"] / (run["workers"] * one["claims_per_s"]), 3)
        figures["runs"] = runs
        if dask:
            same = max(runs, key=lambda r: r["workers"])
            run = _batch(source, folder / "results-dask.jsonl", same["workers"], dask=True)
            run["claims_per_s"] = round(n_claims / run["seconds"], 1)
            run["time_ratio"] = round(run["seconds"] / same["seconds"], 2)
            run["identical"] = run["sha256"] == same["sha256"]
            figures["dask_run"] = run
        figures["identical_outputs"] = len({r["sha256"] for r in runs}) == 1
        figures["parent_per_claim"] = _parent_per_claim(source, folder / "results-parent.jsonl", max(workers))
        figures["statuses"] = _statuses(folder / f"results-{workers[0]}.jsonl")
        figures["baseline"] = _baseline(source, figures["baseline_claims"], folder)
        for run in runs:
            run["ratio_to_baseline"] = round(run["claims_per_s"] / figures["baseline"]["claims_per_s"], 1)
        if cli_runs > 0:
            figures.update(cli_wall_of_first_claim(source, folder, cli_runs))
    try:
        figures["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    command = f"pain-asp bench --claims {n_claims} --seed {seed} --baseline {baseline}"
    command += "".join(f" --workers {w}" for w in workers) + (" --dask" if dask else "")
    figures["command"] = command
    return figures


def cli_wall_of_first_claim(source: Path, folder: Path, runs: int) -> dict[str, Any]:
    """Median wall time of ``pain-asp check`` on the first claim of the JSON Lines ``source``,
    as a user runs it: a new interpreter each time (imports, knowledge base, one solve), with
    the package's bytecode, as an installed package has it (a first run writes it where the
    environment says not to, PYTHONDONTWRITEBYTECODE, and is not timed)."""
    import statistics

    import yaml

    with open(source, encoding="utf-8") as handle:
        first = json.loads(handle.readline())
    claim_file = folder / "claim.yaml"
    claim_file.write_text(yaml.safe_dump(first, sort_keys=False), encoding="utf-8")
    command = [sys.executable, "-m", "pain_asp.cli", "check", str(claim_file), "--format", "json"]
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(command, capture_output=True, env=environment, check=False)
    times: list[float] = []
    codes: list[int] = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
        times.append(time.perf_counter() - start)
        codes.append(done.returncode)
        if done.returncode not in (0, 1):
            last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
            return {"cli_ms": None, "cli_note": f"the CLI exited with {done.returncode}: {last[:200]}"}
    return {"cli_ms": round(statistics.median(times) * 1000, 1), "cli_runs": runs,
            "cli_min_ms": round(min(times) * 1000, 1), "cli_exit_codes": sorted(set(codes)),
            "cli_note": "median wall of: python -m pain_asp.cli check claim.yaml --format json (with bytecode)"}


def _verdict(value: Optional[float], target: float, higher: bool = True) -> str:
    if value is None:
        return ""
    return "meets" if (value >= target if higher else value <= target) else ("below" if higher else "above")


def format_batch_report(figures: dict[str, Any]) -> str:
    """The figures as a table with the docs/scaling.md targets and the command that reproduces them."""
    base = figures["baseline"]
    rows: list[tuple[str, str, str, str]] = [("measure", "figure", "target", "")]

    def workers(run: dict[str, Any]) -> str:
        return f"{run['workers']} worker{'s' if run['workers'] > 1 else ''}"

    for run in figures["runs"]:
        target = TARGETS["per_core"] * run["workers"]
        rows.append((f"batch check, {workers(run)} (JSON Lines in and out)",
                     f"{run['claims_per_s']:,.0f} claims/s ({run['seconds']:,.1f} s)",
                     f">= {target:,.0f} claims/s", _verdict(run["claims_per_s"], target)))
    rows.append((f"fresh Control per claim ({base['claims']:,} claims)",
                 f"{base['claims_per_s']:,.1f} claims/s ({base['seconds']:,.1f} s)", "", ""))
    for run in figures["runs"]:
        rows.append((f"{workers(run)} / fresh Control", f"{run['ratio_to_baseline']:,.1f}x",
                     f">= {TARGETS['ratio']:.0f}x", _verdict(run["ratio_to_baseline"], TARGETS["ratio"])))
    for run in figures["runs"]:
        if run.get("efficiency") is not None and run["workers"] > 1:
            rows.append((f"parallel efficiency, {workers(run)} (rate / {run['workers']} x 1 worker)",
                         f"{100 * run['efficiency']:.0f} %", "", ""))
    for run in figures["runs"]:
        if run.get("parent_share") is not None:
            rows.append((f"parent CPU / workers' CPU, {workers(run)}",
                         f"{100 * run['parent_share']:.2f} % ({run['parent_cpu_s']:,.1f} s of {run['cpu_s']:,.1f} s); "
                         f"Amdahl at 16 workers: {100 * run['amdahl_16']:.0f} %",
                         f"<= {100 * TARGETS['parent_share']:.1f} %",
                         _verdict(run["parent_share"], TARGETS["parent_share"], higher=False)))
    parent = figures.get("parent_per_claim")
    if parent is not None and parent["share"] is not None:
        rows.append((f"parent CPU per claim without start-up, {parent['workers']} worker(s)",
                     f"{parent['parent_us']:,.1f} us against a worker's {parent['worker_us']:,.0f} us: "
                     f"{100 * parent['share']:.2f} %; Amdahl at 16 workers: {100 * parent['amdahl_16']:.0f} %",
                     f"<= {100 * TARGETS['parent_share']:.1f} %",
                     _verdict(parent["share"], TARGETS["parent_share"], higher=False)))
    for run in figures["runs"]:
        pss = f", PSS {run['peak_pss_mb']:,.0f} MB" if run.get("peak_pss_mb") is not None else ""
        worker = (f"largest worker {run['peak_worker_mb']:,.0f} MB" if run["peak_worker_mb"]
                  else "no worker process (a small batch is checked in the command's process)")
        rows.append((f"peak memory, {workers(run)}",
                     f"{worker}, parent {run['peak_parent_mb']:,.0f} MB; "
                     f"all processes RSS {run['peak_rss_mb']:,.0f} MB{pss}",
                     f"<= {TARGETS['worker_mb']:.0f} MB a worker",
                     _verdict(run["peak_worker_mb"], TARGETS["worker_mb"], higher=False)))
    for run in figures["runs"]:
        if run.get("claims_per_cpu_s"):
            rows.append((f"CPU time, {workers(run)} (all processes)",
                         f"{run['cpu_s']:,.1f} s: {run['claims_per_cpu_s']:,.0f} claims per CPU-second", "", ""))
    dask = figures.get("dask_run")
    if dask is not None:
        rows.append((f"Dask LocalCluster, {workers(dask)} (--dask local)",
                     f"{dask['claims_per_s']:,.0f} claims/s ({dask['seconds']:,.1f} s): {dask['time_ratio']:.2f}x "
                     f"the time of --workers {dask['workers']}; output identical: {'yes' if dask['identical'] else 'NO'}",
                     f"<= {TARGETS['dask_ratio']}x", _verdict(dask["time_ratio"], TARGETS["dask_ratio"], higher=False)))
        rows.append((f"peak memory, Dask, {workers(dask)}",
                     f"largest process below the command {dask['peak_worker_mb']:,.0f} MB, the command (with the "
                     f"scheduler) {dask['peak_parent_mb']:,.0f} MB", "", ""))
    rows.append(("outputs identical across worker settings", "yes" if figures["identical_outputs"] else "NO", "", ""))
    cli = figures.get("cli_ms")
    if cli is not None or figures.get("cli_note"):
        rows.append(("one claim, CLI wall (median)", f"{cli:,.0f} ms" if cli is not None else figures["cli_note"],
                     f"<= {TARGETS['cli_ms']:.0f} ms", _verdict(cli, TARGETS["cli_ms"], higher=False)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [f"pain-asp bench: {figures['claims']:,} generated claims (seed {figures['seed']}, "
             f"{figures['input_mb']} MB of JSON Lines), {figures['rules']} rules"]
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("results: " + ", ".join(f"{k} {v:,}" for k, v in figures["statuses"].items()))
    load = ""
    if "load_average_before" in figures:
        load = (f"; load average {figures['load_average_before'][0]} before, "
                f"{figures.get('load_average_after', ['?'])[0]} after")
    lines.append(f"machine: {figures['cpus']} CPUs, Python {figures['python']}, clingo {figures['clingo']}, "
                 f"{figures['platform']}{load}")
    lines.append(f"reproduce: {figures['command']}")
    lines.append("its batch runs, on claims.jsonl = pain_asp.bench.generate.write_jsonl(path, claims, seed):")
    for run in figures["runs"] + ([dask] if dask is not None else []):
        lines.append(f"  {run['command']}")
    if parent is not None:
        lines.append(f"  parent CPU per claim without start-up: check_files(['claims.jsonl'], "
                     f"options=BatchOptions(workers={parent['workers']})) in the bench's process")
    return "\n".join(lines) + "\n"
