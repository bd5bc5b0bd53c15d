"""The shipped benchmark (SPEC §12): batch throughput, the fresh-Control baseline, memory, CLI.

Every figure comes from one run on generated claims (:mod:`pain_asp.generate`):

- **batch**: ``n_claims`` claims as JSON Lines in, results as JSON Lines out, through
  :class:`~pain_asp.engine.Checker` with about a thousand claims per clingo Control.
  Reading, validation, batch history (a patient's other claims in the file), solving and
  writing are all inside the timing, and so is loading the knowledge base. With
  ``workers > 1`` the claims are split into chunks that keep each patient's claims
  together (so batch history sees all of them), checked in recycled worker processes,
  and merged back into input order;
- **baseline**: the first ``baseline_claims`` claims of the same file, a fresh Control per
  claim (``CheckOptions(chunk_size=1)``), in the same process, after the batch. The
  Checker is built before the clock starts, so the baseline is timed in its favour and
  the ratio is, if anything, understated;
- **memory**: peak resident set size (``getrusage``) of the process that ran the batch, and
  of the largest worker when there are workers;
- **CLI**: wall time of ``python -m pain_asp.cli check claim.yaml --format json`` on one
  claim, median of several runs (skipped with a note when the CLI is not installed).

``python -m pain_asp.bench --claims 20000 --seed 1 --baseline 300 --workers 2`` runs it.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import importlib.util
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

from .generate import write_jsonl

__all__ = ["run_bench", "format_report", "check_jsonl", "check_jsonl_parallel", "main"]

# A worker is replaced after this many chunks: clingo keeps every term it has seen (about
# 8 KB a claim), so a long-lived worker grows without bound.
RECYCLE_AFTER = 5

# SPEC §12 targets, shown beside the figures.
TARGETS = {
    "batch_1": 3000.0,       # claims/s, one process
    "batch_2": 6000.0,       # claims/s, two workers
    "ratio": 60.0,           # batch / fresh Control per claim
    "memory_mb": 500.0,      # peak for the batch
    "cli_ms": 200.0,         # one claim, wall
}


# --- checking a JSON Lines file -----------------------------------------------------------

def _dump(result: Any) -> str:
    return json.dumps(result.as_dict(), ensure_ascii=False, separators=(",", ":"))


def check_jsonl(source: str | Path, target: str | Path, options: Any = None,
                checker: Any = None) -> Counter[str]:
    """Check every claim of JSON Lines ``source`` in one process; results to ``target``.

    Batch history applies: each claim sees its patient's other claims in the file. Returns
    the count of results per status. ``options`` (a :class:`~pain_asp.engine.CheckOptions`)
    or a ready ``checker`` say how to check.
    """
    from .engine import Checker
    from .history import batch_history
    from .readers import read_claims

    checker = checker or Checker(options)
    records = list(read_claims([source], checker.known_payers()))
    provider = batch_history([r.claim for r in records if r.claim is not None])
    statuses: Counter[str] = Counter()
    with open(target, "w", encoding="utf-8") as out:
        for result in checker.check(records, history=provider):
            statuses[result.status] += 1
            out.write(_dump(result))
            out.write("\n")
    return statuses


_WORKER: dict[str, Any] = {}


def _worker_init(options: Any) -> None:
    from .engine import Checker

    _WORKER["checker"] = Checker(options)


# (position, claim id, status) of each result a worker wrote
_Index = list[tuple[int, Optional[str], str]]


def _worker_chunk(task: tuple[str, str, str]) -> tuple[str, _Index, float]:
    """Check one chunk file of ``position<TAB>line number<TAB>json`` rows.

    Writes ``position<TAB>result json`` rows next to it and returns their index
    (position, claim id, status) so that the parent can merge and check claim ids, and the
    worker's peak RSS so far in MB (a forkserver's workers are not the parent's children,
    so the parent cannot read their usage itself).
    """
    from .errors import InputError
    from .history import batch_history
    from .readers import Record, validate_claim

    chunk_path, result_path, name = task
    checker = _WORKER["checker"]
    payers = checker.known_payers()
    records: list[Record] = []
    with open(chunk_path, encoding="utf-8") as rows:
        for row in rows:
            position, number, text = row.rstrip("\n").split("\t", 2)
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as exc:
                records.append(Record(name, int(position), errors=[InputError(
                    f"{name}:{number}", None, "", "", f"a JSON object ({exc.msg})")]))
                continue
            records.append(validate_claim(raw, name, int(position), payers))
    provider = batch_history([r.claim for r in records if r.claim is not None])
    index: _Index = []
    with open(result_path, "w", encoding="utf-8") as out:
        for result in checker.check(records, history=provider):
            index.append((result.position, result.claim_id, result.status))
            out.write(f"{result.position}\t{_dump(result)}\n")
    return result_path, index, _rss_mb(resource.RUSAGE_SELF)


def _rows(path: str) -> Iterator[tuple[int, str]]:
    with open(path, encoding="utf-8") as rows:
        for row in rows:
            position, text = row.rstrip("\n").split("\t", 1)
            yield int(position), text


def _patient_key(raw: Any) -> str | None:
    if isinstance(raw, dict):
        patient = raw.get("patient")
        if isinstance(patient, dict) and isinstance(patient.get("id"), (str, int)):
            return str(patient["id"]).strip()
    return None


def check_jsonl_parallel(source: str | Path, target: str | Path, workers: int = 2,
                         options: Any = None, recycle_after: int = RECYCLE_AFTER,
                         scratch: str | Path | None = None) -> tuple[Counter[str], float]:
    """Check JSON Lines ``source`` with ``workers`` processes; results to ``target`` in input order.

    Claims are dealt into chunks of about ``options.chunk_size`` by patient (a hash of the patient
    id), so a patient's claims are checked together and batch history is complete. A worker
    is replaced after ``recycle_after`` chunks, which bounds its memory (clingo keeps every
    term it has seen). A claim id used twice gets the same error record as in a
    one-process run. Returns the count of results per status and the largest worker's
    peak RSS in MB.
    """
    import multiprocessing

    from .engine import CheckOptions

    options = options or CheckOptions()
    chunk_size = max(1, options.chunk_size)
    name = str(source)
    with open(source, encoding="utf-8") as handle:
        count = sum(1 for text in handle if text.strip())
    buckets = max(1, math.ceil(count / chunk_size))
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        paths = [os.path.join(tmp, f"chunk-{i:05d}.tsv") for i in range(buckets)]
        files = [open(p, "w", encoding="utf-8") for p in paths]
        try:
            position = 0
            with open(source, encoding="utf-8") as handle:
                for number, text in enumerate(handle, start=1):
                    if not text.strip():
                        continue
                    position += 1
                    try:
                        key = _patient_key(json.loads(text))
                    except json.JSONDecodeError:
                        key = None
                    spread = (zlib.crc32(key.encode("utf-8", "surrogatepass")) if key is not None
                              else position)
                    row = text.rstrip("\r\n")
                    files[spread % buckets].write(f"{position}\t{number}\t{row}\n")
        finally:
            for f in files:
                f.close()
        tasks = [(p, p + ".out", name) for p in paths]
        # Workers start from a clean interpreter (not a fork of this one), so their memory
        # is their own and no clingo state is shared.
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        index: _Index = []
        outputs: list[str] = []
        peak = 0.0
        with context.Pool(workers, initializer=_worker_init, initargs=(options,),
                          maxtasksperchild=recycle_after) as pool:
            for result_path, part, worker_peak in pool.imap_unordered(_worker_chunk, tasks):
                outputs.append(result_path)
                index.extend(part)
                peak = max(peak, worker_peak)
            pool.close()
            pool.join()
        duplicates = _duplicates(index, name)
        with open(target, "w", encoding="utf-8") as out:
            for position, text in heapq.merge(*(_rows(p) for p in sorted(outputs))):
                out.write(duplicates.get(position, text))
                out.write("\n")
        statuses: Counter[str] = Counter(
            "error" if position in duplicates else status for position, _, status in index)
    return statuses, peak


def _duplicates(index: _Index, name: str) -> dict[int, str]:
    """Error records for valid claims whose id an earlier valid claim already used."""
    from .errors import InputError

    first: dict[str, int] = {}
    out: dict[int, str] = {}
    for position, claim_id, status in sorted(index):
        if status == "error" or claim_id is None:
            continue
        if claim_id in first:
            error = InputError(name, claim_id, "claim_id", claim_id,
                               "a claim id unique in the batch "
                               f"(already used in {name} claim {first[claim_id]})")
            record = {"claim_id": claim_id, "file": name, "position": position, "payer": None,
                      "status": "error", "errors": [error.as_dict()]}
            out[position] = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        else:
            first[claim_id] = position
    return out


# --- measurements ---------------------------------------------------------------------------

def _rss_mb(who: int) -> float:
    peak = resource.getrusage(who).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _cli_wall(claim_file: Path, runs: int) -> dict[str, Any]:
    if importlib.util.find_spec("pain_asp.cli") is None:
        return {"cli_ms": None,
                "cli_note": "pain_asp.cli is not installed yet; CLI wall time not measured"}
    command = [sys.executable, "-m", "pain_asp.cli", "check", str(claim_file), "--format", "json"]
    times: list[float] = []
    codes: list[int] = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
        codes.append(done.returncode)
        if done.returncode not in (0, 1):
            first = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
            return {"cli_ms": None,
                    "cli_note": f"the CLI exited with {done.returncode}: {first[:200]}"}
    return {"cli_ms": round(statistics.median(times) * 1000, 1), "cli_runs": runs,
            "cli_min_ms": round(min(times) * 1000, 1), "cli_exit_codes": sorted(set(codes)),
            "cli_note": "median wall of: python -m pain_asp.cli check claim.yaml --format json"}


def cli_wall_of_first_claim(source: Path, folder: Path, runs: int) -> dict[str, Any]:
    """Median wall time of ``pain-asp check`` on the first claim of the JSON Lines ``source``."""
    import yaml

    with open(source, encoding="utf-8") as handle:
        first = json.loads(handle.readline())
    claim_file = folder / "claim.yaml"
    claim_file.write_text(yaml.safe_dump(first, sort_keys=False), encoding="utf-8")
    return _cli_wall(claim_file, runs)


def run_bench(n_claims: int, seed: int, baseline_claims: int, workers: int = 1, *,
              chunk_size: int = 1000, cli_runs: int = 5, recycle_after: int = RECYCLE_AFTER,
              workdir: str | Path | None = None, kb_dir: str | None = None) -> dict[str, Any]:
    """Run the benchmark and return its figures (see the module docstring).

    ``kb_dir`` checks against another knowledge base (e.g. a branch) instead of the shipped one.
    """
    if n_claims < 1 or baseline_claims < 1 or workers < 1:
        raise ValueError("n_claims, baseline_claims and workers must be >= 1")
    import clingo

    from .engine import Checker, CheckOptions
    from .kb import code_catalog, rule_catalog

    figures: dict[str, Any] = {
        "claims": n_claims, "seed": seed, "workers": workers, "chunk_size": chunk_size,
        "baseline_claims": min(baseline_claims, n_claims),
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "clingo": clingo.__version__, "platform": platform.platform(terse=True),
    }
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        folder = Path(tmp)
        source = folder / "claims.jsonl"
        start = time.perf_counter()
        write_jsonl(source, n_claims, seed)
        figures["generate_s"] = round(time.perf_counter() - start, 3)
        figures["input_mb"] = round(source.stat().st_size / 1e6, 2)

        # batch
        output = folder / "results.jsonl"
        start = time.perf_counter()
        options = CheckOptions(chunk_size=chunk_size, kb_dir=kb_dir)
        if workers == 1:
            statuses = check_jsonl(source, output, options)
            worker_peak = None
        else:
            statuses, worker_peak = check_jsonl_parallel(source, output, workers, options,
                                                         recycle_after, scratch=folder)
        elapsed = time.perf_counter() - start
        figures["batch_s"] = round(elapsed, 3)
        figures["batch_claims_per_s"] = round(n_claims / elapsed, 1)
        figures["peak_rss_mb"] = round(_rss_mb(resource.RUSAGE_SELF), 1)
        figures["worker_peak_rss_mb"] = round(worker_peak, 1) if worker_peak is not None else None
        figures["statuses"] = dict(sorted(statuses.items()))
        figures["output_sha256"] = _digest(output)
        figures["rules"] = len(rule_catalog(kb_dir))
        figures["codes"] = len(code_catalog(kb_dir))

        # baseline: a fresh Control per claim, same claims, same process
        sample = folder / "baseline.jsonl"
        count = figures["baseline_claims"]
        with open(source, encoding="utf-8") as handle, open(sample, "w", encoding="utf-8") as out:
            for _, text in zip(range(count), handle):
                out.write(text)
        checker = Checker(CheckOptions(chunk_size=1, kb_dir=kb_dir))
        start = time.perf_counter()
        check_jsonl(sample, folder / "baseline-results.jsonl", checker=checker)
        elapsed = time.perf_counter() - start
        figures["baseline_s"] = round(elapsed, 3)
        figures["baseline_claims_per_s"] = round(count / elapsed, 1)
        ratio = figures["batch_claims_per_s"] / figures["baseline_claims_per_s"]
        figures["ratio"] = round(ratio, 1)

        # one claim through the command line
        if cli_runs > 0:
            figures.update(cli_wall_of_first_claim(source, folder, cli_runs))
        else:
            figures.update({"cli_ms": None, "cli_note": "CLI wall time not measured (cli_runs=0)"})
    command = (f"python -m pain_asp.bench --claims {n_claims} --seed {seed} "
               f"--baseline {baseline_claims} --workers {workers}")
    if chunk_size != 1000:
        command += f" --chunk-size {chunk_size}"
    if workers > 1 and recycle_after != RECYCLE_AFTER:
        command += f" --recycle-after {recycle_after}"
    figures["command"] = command
    return figures


# --- report ----------------------------------------------------------------------------------

def _verdict(value: float | None, target: float, higher_is_better: bool = True) -> str:
    if value is None:
        return "n/a"
    good = value >= target if higher_is_better else value <= target
    return "meets" if good else "below" if higher_is_better else "above"


def format_report(figures: dict[str, Any], command: str | None = None) -> str:
    """The figures as a small table, with the command that reproduces them."""
    workers = figures["workers"]
    batch_target = TARGETS["batch_1"] if workers == 1 else TARGETS["batch_2"]
    memory = figures["peak_rss_mb"]
    memory_text = f"{memory:,.0f} MB"
    memory_total = memory
    if figures.get("worker_peak_rss_mb") is not None:
        worker = figures["worker_peak_rss_mb"]
        memory_total = memory + workers * worker
        memory_text = (f"{memory_total:,.0f} MB (parent {memory:,.0f} + {workers} x worker "
                       f"{worker:,.0f})")
    cli = figures.get("cli_ms")
    rows = [
        ("measure", "figure", "target (SPEC §12)", "status"),
        (f"batch check, {workers} process{'es' if workers > 1 else ''} "
         f"(JSON Lines in/out, validation incl.)",
         f"{figures['batch_claims_per_s']:,.0f} claims/s ({figures['batch_s']:.2f} s)",
         f">= {batch_target:,.0f} claims/s",
         _verdict(figures["batch_claims_per_s"], batch_target)),
        (f"fresh Control per claim ({figures['baseline_claims']:,} claims)",
         f"{figures['baseline_claims_per_s']:,.1f} claims/s", "", ""),
        ("batch / fresh Control", f"{figures['ratio']:,.1f}x", f">= {TARGETS['ratio']:.0f}x",
         _verdict(figures["ratio"], TARGETS["ratio"])),
        ("peak memory of the batch (RSS)", memory_text, f"<= {TARGETS['memory_mb']:.0f} MB",
         _verdict(memory_total, TARGETS["memory_mb"], higher_is_better=False)),
        ("one claim, CLI wall (median)", f"{cli:,.0f} ms" if cli is not None else "not measured",
         f"<= {TARGETS['cli_ms']:.0f} ms",
         _verdict(cli, TARGETS["cli_ms"], higher_is_better=False)),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [f"pain-asp bench: {figures['claims']:,} generated claims (seed {figures['seed']}), "
             f"{figures['rules']} rules, chunks of {figures['chunk_size']}"]
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    statuses = ", ".join(f"{k} {v:,}" for k, v in figures.get("statuses", {}).items())
    lines.append(f"results: {statuses}")
    if figures.get("cli_note") and cli is None:
        lines.append(f"note: {figures['cli_note']}")
    lines.append(f"machine: {figures['cpus']} CPUs, Python {figures['python']}, "
                 f"clingo {figures['clingo']}, {figures['platform']}")
    lines.append(f"reproduce: {command or figures['command']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m pain_asp.bench``: run the benchmark and print the report."""
    parser = argparse.ArgumentParser(prog="python -m pain_asp.bench",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=20000, help="claims in the batch")
    parser.add_argument("--seed", type=int, default=1, help="generator seed")
    parser.add_argument("--baseline", type=int, default=300,
                        help="claims for the fresh-Control baseline")
    parser.add_argument("--workers", type=int, default=1, help="worker processes for the batch")
    parser.add_argument("--chunk-size", type=int, default=1000, help="claims per clingo Control")
    parser.add_argument("--cli-runs", type=int, default=5,
                        help="runs of the one-claim CLI (0 skips)")
    parser.add_argument("--recycle-after", type=int, default=RECYCLE_AFTER,
                        help="chunks a worker checks before it is replaced (bounds its memory)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = run_bench(args.claims, args.seed, args.baseline, args.workers,
                        chunk_size=args.chunk_size, cli_runs=args.cli_runs,
                        recycle_after=args.recycle_after)
    print(json.dumps(figures, indent=2) if args.json else format_report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
