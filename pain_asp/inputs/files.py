"""Which files hold claims, and in which format: named by suffix, or an X12 837P found by content."""

from __future__ import annotations

from pathlib import Path

__all__ = ["CLAIM_SUFFIXES", "X12_SUFFIXES", "is_x12"]

X12_SUFFIXES = {".837", ".x12", ".edi"}  # X12 837P, read by pain_asp/inputs/x12.py
CLAIM_SUFFIXES = {".json", ".jsonl", ".ndjson", ".yaml", ".yml"} | X12_SUFFIXES


def is_x12(path: Path) -> bool:
    """True when the file is read as X12: named .837, .x12 or .edi, or starting with an ISA
    segment (after a UTF-8 byte order mark or white space) whatever its name, as 837P
    exports are often named .txt or .dat."""
    if path.suffix.lower() in X12_SUFFIXES:
        return True
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    head = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    return head.startswith(b"ISA") and len(head) > 3 and not chr(head[3]).isalnum()
