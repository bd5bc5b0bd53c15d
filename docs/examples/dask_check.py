"""Check a JSON Lines batch on Dask, partitioned by patient (see docs/scaling.md).

    pip install 'pain-asp[scale]'            # pain-asp with Dask
    python docs/examples/dask_check.py claims.jsonl results.jsonl --partitions 8

The output is byte for byte what ``pain-asp check claims.jsonl --format jsonl`` writes,
except for an unparsable JSON line, which a partition reports as "a claim mapping" instead
of naming the JSON syntax error. Nothing here needs the whole batch in one process: the file
is read in blocks, claims are shuffled to partitions by a hash of the patient id, each
partition writes its results sorted by position to a part file, and the part files are
merged in input order at the end.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import dask.bag as db

from pain_asp.modes.check import check_partition, claim_identity, patient_key


def _claims(block: list[str]) -> list[str]:
    return [text for text in block if text.strip()]


def _numbered(block: list[str], first: int) -> list[tuple[int, Any]]:
    """A block's claims with their position in the file (1 = first claim)."""
    out = []
    for position, text in enumerate(_claims(block), start=first):
        try:
            out.append((position, json.loads(text)))
        except json.JSONDecodeError:
            out.append((position, text))  # stays a record: the check reports it
    return out


def _bucket(partitions: int) -> Any:
    def bucket(row: tuple[int, Any]) -> int:
        key = patient_key(row[1])
        return zlib.crc32(key.encode("utf-8", "surrogatepass")) % partitions if key is not None \
            else row[0] % partitions
    return bucket


def _check_part(group: tuple[int, list[tuple[int, Any]]], file: str, duplicates: dict[int, int],
                folder: str) -> str:
    """Check one partition (every claim of its patients); write its results sorted by position."""
    number, rows = group
    path = os.path.join(folder, f"part-{number:05d}.tsv")
    with open(path, "w", encoding="utf-8") as out:
        for position, text in sorted(check_partition(rows, file=file, duplicates=duplicates)):
            out.write(f"{position}\t{text}")
    return path


def _rows(path: str) -> Iterator[tuple[int, str]]:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            position, text = line.split("\t", 1)
            yield int(position), text


def check_on_dask(source: str | Path, target: str | Path, partitions: int = 4,
                  blocksize: str = "16MiB", scheduler: str = "processes") -> int:
    """Check ``source`` (JSON Lines) with Dask; write results to ``target``; return the claim count."""
    name = str(source)
    with dask.config.set(scheduler=scheduler):
        blocks = db.read_text(name, blocksize=blocksize).to_delayed()
        # 1. positions: count the claims of each block, then number them
        counts = dask.compute(*[dask.delayed(lambda b: len(_claims(b)))(b) for b in blocks])
        starts = [1 + sum(counts[:i]) for i in range(len(counts))]
        rows = db.from_delayed([dask.delayed(_numbered)(b, s) for b, s in zip(blocks, starts)])
        # 2. claim ids used twice: only the later claims become error records (as in one run)
        ids = (rows.map(lambda row: (claim_identity(row[1]), row[0]))
               .filter(lambda pair: pair[0] is not None)
               .foldby(lambda pair: pair[0], lambda acc, pair: acc + [pair[1]], [],
                       lambda a, b: a + b, []))
        duplicates = {p: min(ps) for _, ps in ids.filter(lambda kv: len(kv[1]) > 1).compute()
                      for p in ps if p != min(ps)}
        # 3. partition by patient, check each partition, merge the sorted part files
        with tempfile.TemporaryDirectory(prefix="pain-asp-dask-") as folder:
            parts = (rows.groupby(_bucket(partitions), npartitions=partitions)
                     .map(_check_part, file=name, duplicates=duplicates, folder=folder)
                     .compute())
            total = 0
            with open(target, "w", encoding="utf-8") as out:
                for _, text in heapq.merge(*(_rows(p) for p in sorted(parts))):
                    out.write(text)
                    total += 1
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="claims, JSON Lines")
    parser.add_argument("target", help="results, JSON Lines")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--blocksize", default="16MiB", help="bytes of input per read block")
    parser.add_argument("--scheduler", default="processes", choices=["processes", "threads", "synchronous"])
    args = parser.parse_args(argv)
    total = check_on_dask(args.source, args.target, args.partitions, args.blocksize, args.scheduler)
    print(f"checked {total} claims in {args.partitions} partitions -> {args.target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
