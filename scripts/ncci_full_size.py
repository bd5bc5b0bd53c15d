"""Full-size NCCI tables in CMS's layouts, the import time, and check throughput with them.

    python scripts/ncci_full_size.py --out /tmp/ncci-full            # tables, import, bench
    python scripts/ncci_full_size.py --out /tmp/ncci-full --claims 3000 --rounds 3

1. Writes one quarter's downloads as CMS publishes them (no real file is at hand): four
   practitioner PTP archives ``ccipra-v321r0-f<n>.zip`` holding tab-separated text with the
   copyright line and the column header (``--ptp-rows``, default 2,000,000 rows in all), the
   MUE archive (.csv with its header block, about 15,000 codes) and the add-on code archive
   (.xlsx, about 6,000 edits). Codes are drawn from a universe of 12,000 five-character
   codes that holds every code of the knowledge base's catalog, so that the catalog's codes
   have edits in the proportion of any other code (about 170 column-2 codes each).
2. Times ``pain-asp data import-ncci`` on them (the default: every row validated, the rows
   touching a catalog code kept).
3. Checks the same generated claims (``pain_asp.bench.generate.write_jsonl``) with the shipped
   starter tables and with the imported full tables, alternating, ``--rounds`` times each,
   in one process per run (``python -m pain_asp.cli check ... --workers 1``), and prints
   the claims/s of each and their ratio.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from pain_asp.kb import code_catalog
from pain_asp.ncci import PTP_HEADER

COPYRIGHT = "CPT codes and descriptions only are copyright American Medical Association. Generated test table, not CMS values."


def _universe(rng: random.Random, size: int) -> list[str]:
    codes = set(code_catalog())
    while len(codes) < size:
        codes.add(f"{rng.randint(10000, 99999)}" if rng.random() < 0.85 else f"{rng.choice('GJ')}{rng.randint(0, 9999):04}")
    return sorted(codes)


def write_downloads(out: Path, ptp_rows: int, seed: int = 7) -> dict[str, object]:
    rng = random.Random(seed)
    codes = _universe(rng, 12000)
    out.mkdir(parents=True, exist_ok=True)
    per_code = max(1, ptp_rows // len(codes))
    rows = []
    for column1 in codes:
        for column2 in rng.sample(codes, per_code + 1):
            if column2 != column1 and len(rows) < ptp_rows:
                indicator = rng.choice("0111119")
                deletion = "*" if rng.random() < 0.8 else f"20{rng.randint(10, 25)}1231"
                rows.append(f"{column1}\t{column2}\t{'*' if rng.random() < 0.1 else ''}\t20100101\t{deletion}\t{indicator}\tGenerated")
    ptp = []
    quarter = len(rows) // 4 + 1
    for n in range(4):
        name = f"ccipra-v321r0-f{n + 1}"
        text = "\n".join([COPYRIGHT, "", PTP_HEADER, *rows[n * quarter:(n + 1) * quarter]]) + "\n"
        path = out / f"{name}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{name}.txt", text.encode("latin-1"))
        ptp.append(path)
    mue_lines = [f'"{COPYRIGHT}"', "", '"HCPCS/CPT Code","Practitioner Services MUE Values","MUE Adjudication Indicator","MUE Rationale"']
    mue_lines += [f'"{c}","{rng.randint(1, 4)}","{rng.choice(["1 Line Edit", "2 Date of Service Edit: Policy", "3 Date of Service Edit: Clinical"])}","Generated"'
                  for c in rng.sample(codes, 11000)]
    mue = out / "MCR_MUE_PractitionerServices_Eff_04-01-2026.zip"
    with zipfile.ZipFile(mue, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("MCR_MUE_PractitionerServices_Eff_04-01-2026.csv", "\n".join(mue_lines) + "\n")
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["Add-on Code", "Primary Code", "AOC Del Dt", "Primary Code Del Dt", "AOC Edit Type",
                  "AOC Edit Eff Dt", "AOC Edit Del Dt", "Special Instruction Notes"])
    for addon in rng.sample(codes, 900):
        for primary in rng.sample(codes, 6):
            sheet.append([addon, primary, "9999999", "9999999", rng.choice("113"), "2013091", "9999999", "Generated"])
    buffer = io.BytesIO()
    book.save(buffer)
    aoc = out / "AOC_V2026Q2-MCR.zip"
    with zipfile.ZipFile(aoc, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("AOC_V2026Q2-MCR.xlsx", buffer.getvalue())
    return {"ptp": ptp, "mue": mue, "aoc": aoc, "ptp_rows": len(rows)}


def _run(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pain_asp.cli", *args], check=False, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--ptp-rows", type=int, default=2_000_000)
    parser.add_argument("--claims", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    files = write_downloads(args.out, args.ptp_rows)
    data = args.out / "imported"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pain_asp.cli", "data", "import-ncci", "--ptp", *map(str, files["ptp"]),
                    "--mue", str(files["mue"]), "--aoc", str(files["aoc"]), "--into", str(data)], check=True)
    imported = time.perf_counter() - start
    from pain_asp.bench.generate import write_jsonl
    from pain_asp.resources import kb_dir

    claims = args.out / "claims.jsonl"
    write_jsonl(claims, args.claims, seed=1)
    common = ["check", str(claims), "--format", "jsonl", "--fail-on", "never", "--workers", "1", "--output"]
    starter, full = [], []
    for _ in range(args.rounds):
        starter.append(_run([*common, str(args.out / "starter.jsonl"), "--ncci-dir", str(kb_dir() / "data")]))
        full.append(_run([*common, str(args.out / "full.jsonl"), "--ncci-dir", str(data)]))
    s, f = statistics.median(starter), statistics.median(full)
    print(f"PTP rows generated: {files['ptp_rows']:,} in 4 archives; import (validate all, keep catalog rows): {imported:.1f} s")
    print(f"check {args.claims:,} claims, 1 worker, median of {args.rounds}: starter tables {s:.1f} s "
          f"({args.claims / s:,.0f} claims/s), full tables {f:.1f} s ({args.claims / f:,.0f} claims/s); "
          f"full/starter time ratio {f / s:.2f}")


if __name__ == "__main__":
    main()
