"""Record what check, fix, explain and code print, to prove a refactor changes no behaviour.

usage: python scripts/snapshot_outputs.py OUT_DIR [--claims N] [--seed S] [--pain-asp PATH]

Writes into OUT_DIR one file per output: check (json and text) and fix (json) and explain
(json) of the bundled examples and of N generated claims (default 5,000, seed 7), and the code
mode's json for every description in tests/code_pairs.yaml. Run it with the old tree's
``pain-asp`` and the new one's into two folders, then ``diff -r`` them: a refactor is proven
when the folders are byte-identical.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def run(pain_asp: str, args: list[str], out: Path) -> None:
    done = subprocess.run([pain_asp, *args], capture_output=True, cwd=out.parent)
    out.write_bytes(done.stdout + f"\n--- exit {done.returncode}\n".encode() + done.stderr)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--claims", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pain-asp", default=str(Path(sys.executable).parent / "pain-asp"))
    options = parser.parse_args()
    out: Path = options.out
    out.mkdir(parents=True, exist_ok=True)
    generated = out / "generated.jsonl"
    sys.path.insert(0, str(ROOT))
    from pain_asp.bench.generate import write_jsonl  # the generator of the tree being measured

    write_jsonl(generated, options.claims, options.seed)
    # The inputs are copied beside the outputs and named relatively, so the file names that
    # the outputs carry are the same in every snapshot.
    examples = "examples.yaml"
    (out / examples).write_bytes((ROOT / "docs/examples/claims.yaml").read_bytes())
    (out / "encounter.yaml").write_bytes((ROOT / "docs/examples/encounter.yaml").read_bytes())
    for name, source in (("examples", examples), ("generated", generated.name)):
        run(options.pain_asp, ["check", source, "-f", "json", "--fail-on", "never", "--workers", "1"],
            out / f"{name}.check.json")
        run(options.pain_asp, ["check", source, "-f", "text", "--fail-on", "never", "--workers", "1"],
            out / f"{name}.check.txt")
        run(options.pain_asp, ["fix", source, "-f", "json"], out / f"{name}.fix.json")
        run(options.pain_asp, ["explain", source, "-f", "json"], out / f"{name}.explain.json")
    run(options.pain_asp, ["explain", examples], out / "examples.explain.txt")
    run(options.pain_asp, ["code", "encounter.yaml", "-f", "json"], out / "encounter.code.json")
    pairs = yaml.safe_load((ROOT / "tests/code_pairs.yaml").read_text(encoding="utf-8"))
    with (out / "code_pairs.jsonl").open("wb") as sink:
        for pair in pairs:
            if "text" not in pair:
                continue
            args = ["code", pair["text"], "--payer", pair["payer"], "--pos", pair.get("pos", "11"),
                    "--date", str(pair.get("date", "2026-03-02")), "-f", "json"]
            for dx in pair.get("dx", []):
                args += ["--dx", dx]
            done = subprocess.run([options.pain_asp, *args], capture_output=True, cwd=ROOT)
            sink.write(json.dumps({"id": pair["id"], "exit": done.returncode}).encode() + b"\n")
            sink.write(done.stdout + done.stderr)
    for name in (generated.name, examples, "encounter.yaml"):
        (out / name).unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
