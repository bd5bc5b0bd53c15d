"""Write X12 835 remittances (005010X221A1) for tests, in the implementation guide's shape.

A claim is ``(clp, segments)``: the CLP elements after CLP01, and the 2100/2110 segments that
follow it, each a string without its terminator. Trailer counts and control numbers are
computed, so every file is valid unless a test breaks it on purpose.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

Claim = tuple[str, Sequence[str]]


def isa(control: int, date: str = "260115") -> str:
    return (f"ISA*00*          *00*          *ZZ*PAYERSENDER    *ZZ*CLINICRECV     *{date}*1200*^*00501*"
            f"{control:09d}*0*T*:")


def transaction(number: int, claims: Iterable[Claim], payer: str = "EXAMPLE MAC", paid: str = "0",
                date: str = "20260115") -> list[str]:
    """One ST..SE with its header, payer and payee, and one LX group of claims."""
    body = [
        f"ST*835*{number:04d}",
        f"BPR*I*{paid}*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999988880*DA*98765*{date}",
        f"TRN*1*EFT{number:04d}*1512345678",
        f"DTM*405*{date}",
        f"N1*PR*{payer}",
        "N3*1 PAYER WAY",
        "N4*FARGO*ND*58102",
        "PER*BL*EDI SUPPORT*TE*8005551212",
        "N1*PE*EXAMPLE PAIN CLINIC*XX*1234567893",
        "LX*1",
    ]
    for claim_id, (clp, segments) in claims:
        segments = list(segments)
        body.append(f"CLP*{claim_id}*{clp}")
        while segments and segments[0].startswith("CAS*"):   # claim-level CAS precede the names
            body.append(segments.pop(0))
        body.append("NM1*QC*1*DOE*JANE****MI*123456789A")
        body.extend(segments)
    body.append(f"SE*{len(body) + 1}*{number:04d}")
    return body


def interchange(transactions: Sequence[list[str]], control: int = 101) -> str:
    segments = [isa(control), f"GS*HP*PAYERSENDER*CLINICRECV*20260115*1200*{control}*X*005010X221A1"]
    for body in transactions:
        segments.extend(body)
    segments += [f"GE*{len(transactions)}*{control}", f"IEA*1*{control:09d}"]
    return "~\n".join(segments) + "~\n"


def service(code: str, charge: str, paid: str, *, date: str = "", control: str = "",
            adjustments: Sequence[str] = (), remarks: Sequence[str] = ()) -> list[str]:
    """A 2110 loop: SVC, DTM*472, CAS lines (``"CO*97*80"``), REF*6R, LQ*HE."""
    out = [f"SVC*HC:{code}*{charge}*{paid}**1"]
    if date:
        out.append(f"DTM*472*{date}")
    out.extend(f"CAS*{cas}" for cas in adjustments)
    if control:
        out.append(f"REF*6R*{control}")
    out.extend(f"LQ*HE*{remark}" for remark in remarks)
    return out


def large(claims: int) -> str:
    """An 835 of ``claims`` claims, two service lines each (one paid, one denied CO 97),
    5,000 claims per transaction set: the shape of the reading benchmark (docs/remit.md)."""
    rows = [(f"C{i:06d}", (f"1*900*500*0*MB*PCN{i}*11*1", [
        *service("64483:RT", "780", "500", date="20260302", control=f"{i}-1", adjustments=["CO*45*280"]),
        *service("77003", "120", "0", date="20260302", control=f"{i}-2", adjustments=["CO*97*120"],
                 remarks=["N20"])])) for i in range(claims)]
    return interchange([transaction(k // 5000 + 1, rows[k:k + 5000]) for k in range(0, claims, 5000)])


if __name__ == "__main__":   # python tests/era_files.py 10000 big.835
    import sys

    with open(sys.argv[2], "w", encoding="ascii") as handle:
        handle.write(large(int(sys.argv[1])))
