"""The fix benchmark: fix throughput on generated claims with deny findings (docs/scaling.md).

``python -m pain_asp.bench.fix --claims 2000`` prints the figures (``--json`` for JSON).
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..modes.fix import Repairer, RepairOptions

__all__ = ["bench_fix"]


def bench_fix(n: int, seed: int, *, claims_per_solve: int = 100, workers: int = 1,
              timeout: float = 20.0, attribute: bool = True) -> dict[str, Any]:
    """Fix throughput on ``n`` generated claims that have deny findings (docs/scaling.md).

    Claims come from :func:`pain_asp.bench.generate.generate_claims` (``seed``), in order; a first,
    untimed check keeps the first ``n`` with at least one deny finding (correctable or not).
    Each claim is judged with its own ``history`` (no batch history, so that the selection
    and the timed run see the same facts). The timed part is what ``pain-asp fix`` does
    after reading: loading the knowledge base, validation, the check, the repair solves
    (``claims_per_solve`` claims per clingo Control), the replays that attribute findings
    to edits, and the corrected claims with their findings. With ``workers > 1`` the claims
    are split into that many contiguous parts, each fixed by its own process. A result is
    counted as optimal only when the solver proved it.
    """
    import os
    import platform

    import clingo

    from ..inputs.records import validate_claim
    from .generate import generate_claims

    if n < 1 or workers < 1 or claims_per_solve < 1:
        raise ValueError("n, workers and claims_per_solve must be >= 1")
    options = RepairOptions(claims_per_solve=claims_per_solve, timeout=timeout, attribute=attribute)
    repairer = Repairer(options)
    payers = repairer.known_payers()
    chosen: list[dict[str, Any]] = []
    produced = 0
    stream = generate_claims(10 * n + 1000, seed)
    while len(chosen) < n:
        batch = [raw for _, raw in zip(range(2000), stream)]
        if not batch:
            break
        produced += len(batch)
        records = [validate_claim(raw, "bench", i, payers) for i, raw in enumerate(batch, 1)]
        for raw, result in zip(batch, repairer.checker.check(records)):
            if any(f.severity == "deny" for f in result.findings) and len(chosen) < n:
                chosen.append(raw)
    import resource

    start = time.perf_counter()
    cpu_self = resource.getrusage(resource.RUSAGE_SELF)
    cpu_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if workers == 1:
        summaries = _bench_part(chosen, options)
    else:
        from concurrent.futures import ProcessPoolExecutor

        size = -(-len(chosen) // workers)
        parts = [chosen[i:i + size] for i in range(0, len(chosen), size)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            summaries = [s for part in pool.map(_bench_part, parts, [options] * len(parts)) for s in part]
    elapsed = time.perf_counter() - start
    cpu = 0.0
    for who, before in ((resource.RUSAGE_SELF, cpu_self), (resource.RUSAGE_CHILDREN, cpu_children)):
        now = resource.getrusage(who)
        cpu += (now.ru_utime - before.ru_utime) + (now.ru_stime - before.ru_stime)
    statuses: dict[str, int] = {}
    for status, _, _ in summaries:
        statuses[status] = statuses.get(status, 0) + 1
    solved = [s for s in summaries if s[0] not in ("error", "timeout")]
    edits = [s[2] for s in solved]
    return {
        "claims": len(chosen), "generated": produced, "seed": seed, "workers": workers,
        "claims_per_solve": claims_per_solve, "seconds": round(elapsed, 3),
        "claims_per_s": round(len(chosen) / elapsed, 1) if elapsed else None,
        "cpu_seconds": round(cpu, 3), "claims_per_cpu_s": round(len(chosen) / cpu, 1) if cpu else None,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "optimal": sum(1 for s in solved if s[1]), "not_proven": sum(1 for s in solved if not s[1]),
        "statuses": dict(sorted(statuses.items())),
        "edits_total": sum(edits), "edits_max": max(edits, default=0),
        "cpus": os.cpu_count(), "python": platform.python_version(), "clingo": clingo.__version__,
        "command": f"python -m pain_asp.bench.fix --claims {n} --seed {seed} --per-solve {claims_per_solve} "
                   f"--workers {workers}",
    }


def _bench_part(raws: list[dict[str, Any]], options: RepairOptions) -> list[tuple[str, bool, int]]:
    from ..inputs.records import validate_claim

    repairer = Repairer(options)
    payers = repairer.known_payers()
    records = [validate_claim(raw, "bench", i, payers) for i, raw in enumerate(raws, 1)]
    return [(f.status, f.optimal, len(f.edits)) for f in repairer.fix(records)]


def main(argv: list[str] | None = None) -> int:
    """``python -m pain_asp.bench.fix``: the fix benchmark (figures as text, or JSON)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pain_asp.bench.fix",
                                     description="Fix throughput on generated claims with deny findings.")
    parser.add_argument("--claims", type=int, default=2000, help="claims with deny findings to fix")
    parser.add_argument("--seed", type=int, default=1, help="generator seed")
    parser.add_argument("--per-solve", type=int, default=100, help="claims per clingo Control")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = bench_fix(args.claims, args.seed, claims_per_solve=args.per_solve, workers=args.workers)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"pain-asp fix bench: {figures['claims']:,} claims with deny findings "
              f"(of {figures['generated']:,} generated, seed {figures['seed']}), "
              f"{figures['claims_per_solve']} per solve, {figures['workers']} process(es)")
        print(f"  {figures['claims_per_s']:,.1f} claims/s ({figures['seconds']:.2f} s wall); target >= 500")
        print(f"  {figures['claims_per_cpu_s']:,.1f} claims per CPU second ({figures['cpu_seconds']:.2f} s CPU); "
              f"load average at the end {figures['load_average']}")
        print(f"  optimal (proven): {figures['optimal']:,}; not proven: {figures['not_proven']:,}; "
              f"statuses: {figures['statuses']}")
        print(f"  edits: {figures['edits_total']:,} in all, at most {figures['edits_max']} on a claim")
        print(f"  machine: {figures['cpus']} CPUs, Python {figures['python']}, clingo {figures['clingo']}")
        print(f"  reproduce: {figures['command']}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
