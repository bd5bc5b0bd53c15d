"""Errors a user can act on: bad input, bad payer files, bad knowledge-base files."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["InputError", "PainAspError", "PayerError"]


class PainAspError(Exception):
    """Base class for errors reported to the user without a traceback (exit code 2)."""


@dataclass
class InputError(PainAspError):
    """A claim that cannot be read: where it is, which field, what was there, what is expected.

    The value is shown only for fields that carry no PHI (codes, dates of service, counts);
    patient identifiers and birth dates are never echoed.
    """

    file: str
    claim_id: str | None
    field: str
    value: str
    expected: str

    def __str__(self) -> str:
        where = self.file
        if self.claim_id is not None:
            where += f", claim {self.claim_id}"
        field = f", field {self.field}" if self.field else ""
        value = f": got {self.value}" if self.value != "" else ""
        return f"{where}{field}{value}; expected {self.expected}"

    def as_dict(self) -> dict[str, str | None]:
        """A JSON-ready record of the error."""
        return {
            "file": self.file,
            "claim_id": self.claim_id,
            "field": self.field,
            "value": self.value,
            "expected": self.expected,
            "message": str(self),
        }


@dataclass
class PayerError(PainAspError):
    """A payer policy file that does not validate: file, line, key, what is expected."""

    file: str
    line: int | None
    key: str
    expected: str

    def __str__(self) -> str:
        at = f"{self.file}:{self.line}" if self.line else self.file
        return f"{at}: {self.key}: {self.expected}"
