"""Strict patterns for everything that reaches clingo as a token.

Claim text never becomes ASP source (docs/architecture.md): codes, modifiers and diagnoses are checked
against these patterns, spinal levels are parsed into segment numbers, and names of nerves
are mapped to a fixed vocabulary. Anything else stays in Python.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = [
    "CODE_RE",
    "DX_RE",
    "MODIFIER_RE",
    "PAYER_ID_RE",
    "SEGMENTS",
    "normalise_dx",
    "npi_status",
    "parse_level",
    "parse_spinal_level",
    "nerve_token",
    "segment_name",
]

# CPT (5 digits), CPT Category II/III (4 digits + F/T/U), HCPCS Level II (letter + 4 digits).
CODE_RE = re.compile(r"^(?:[0-9]{5}|[0-9]{4}[FTU]|[A-V][0-9]{4})$")
MODIFIER_RE = re.compile(r"^[0-9A-Z]{2}$")
# A payer's identifier as 837P files carry it (2010BB NM109): letters and digits.
PAYER_ID_RE = re.compile(r"^[0-9A-Z]{1,80}$")
# ICD-10-CM: letter, digit, alphanumeric, then up to four more after an optional dot.
DX_RE = re.compile(r"^[A-TV-Z][0-9][0-9A-Z](?:\.?[0-9A-Z]{1,4})?$")

# Vertebral segments numbered top to bottom: C1=1 .. C7=7, T1=8 .. T12=19, L1=20 .. L5=24, S1=25.
SEGMENTS: dict[str, int] = {}
for _i in range(1, 8):
    SEGMENTS[f"C{_i}"] = _i
for _i in range(1, 13):
    SEGMENTS[f"T{_i}"] = 7 + _i
for _i in range(1, 6):
    SEGMENTS[f"L{_i}"] = 19 + _i
SEGMENTS["S1"] = 25
_NAMES = {v: k for k, v in SEGMENTS.items()}

_LEVEL_RE = re.compile(r"^([CTLS])(\d{1,2})\s*[-/]\s*([CTLS]?)(\d{1,2})$")


def normalise_dx(text: str) -> str | None:
    """Return ``text`` as a dotted upper-case ICD-10-CM code, or None if it is not one."""
    code = text.strip()
    if not code.isascii():
        return None
    code = code.upper()
    if not DX_RE.match(code):
        return None
    bare = code.replace(".", "")
    return bare if len(bare) == 3 else f"{bare[:3]}.{bare[3:]}"


@lru_cache(maxsize=1024)
def parse_level(text: str) -> tuple[int, int] | None:
    """Parse a spinal level such as ``L4-L5``, ``L4-5``, ``L5-S1`` or ``T12-L1``.

    Returns the (upper, lower) segment numbers of adjacent segments, or None.
    """
    m = _LEVEL_RE.match(text.strip().upper())
    if not m:
        return None
    region, first, region2, second = m.group(1), m.group(2), m.group(3) or m.group(1), m.group(4)
    upper = SEGMENTS.get(f"{region}{int(first)}")
    lower = SEGMENTS.get(f"{region2}{int(second)}")
    if upper is None or lower is None or lower != upper + 1:
        return None
    return upper, lower


def parse_spinal_level(text: str) -> tuple[int, int] | None:
    """Parse an interspace level (``L4-L5``, as :func:`parse_level`) or one vertebral body
    (``T12``, ``L1``, ``S1``: vertebral augmentation and basivertebral nerve ablation treat
    bodies, not interspaces).

    A vertebral body N is returned as ``(N, N)``; None when ``text`` is neither.
    """
    level = parse_level(text)
    if level is not None:
        return level
    body = SEGMENTS.get(text.strip().upper())
    return None if body is None else (body, body)


def segment_name(number: int) -> str:
    """``23`` -> ``L4``."""
    return _NAMES[number]


_NERVES = {
    "superolateral genicular": "superolateral_genicular",
    "superomedial genicular": "superomedial_genicular",
    "inferomedial genicular": "inferomedial_genicular",
    "inferolateral genicular": "inferolateral_genicular",
    "medial branch": "medial_branch",
    "greater occipital": "greater_occipital",
    "lesser occipital": "lesser_occipital",
    "third occipital": "third_occipital",
    "suprascapular": "suprascapular",
    "lateral branch": "lateral_branch",
}


def nerve_token(name: str) -> str:
    """Map a documented nerve name to the vocabulary the knowledge base knows, else ``other``."""
    key = " ".join(name.lower().replace("_", " ").replace("-", " ").split())
    key = key.removesuffix(" nerve").removesuffix(" branch nerve")
    return _NERVES.get(key, "other")


def npi_status(text: str) -> str:
    """``valid``, ``invalid`` or ``missing`` for a National Provider Identifier: 10 digits
    whose last is the Luhn (ISO/IEC 7812 mod 10 "double-add-double") check digit of the first
    nine with the card-issuer prefix 80840 in front, as CMS specifies it."""
    npi = text.strip()
    if not npi:
        return "missing"
    if len(npi) != 10 or not (npi.isascii() and npi.isdigit()) or npi[0] not in "12":
        return "invalid"
    total = 0
    for n, digit in enumerate(reversed("80840" + npi[:9])):   # the rightmost digit is doubled
        value = int(digit) * (2 if n % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return "valid" if (10 - total % 10) % 10 == int(npi[9]) else "invalid"
