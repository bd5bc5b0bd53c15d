"""Errors a user can act on: bad input, bad payer files, bad knowledge-base files."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["InputError", "PainAspError", "PayerError", "describe"]


def describe(value: Any) -> str:
    """What a value is, never what it says: errors describe input, they do not quote it
    (docs/architecture.md), so a stray name or date of birth in a claim file is never printed back."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)) or type(value).__name__ == "Decimal":
        return "a number"
    if isinstance(value, str):
        return "empty text" if not value else f"text of {len(value)} character{'s' * (len(value) != 1)}"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} item{'s' * (len(value) != 1)}"
    if isinstance(value, dict):
        return f"a mapping of {len(value)} key{'s' * (len(value) != 1)}"
    return f"a {type(value).__name__} value"


class PainAspError(Exception):
    """Base class for errors reported to the user without a traceback (exit code 2)."""


@dataclass
class InputError(PainAspError):
    """A claim that cannot be read: where it is (file and line), which field, what was there,
    what is expected.

    ``value`` describes the bad value's shape (:func:`describe`), never its text, so no
    patient identifier, birth date or other input is echoed; only the claim id is named.
    """

    file: str
    claim_id: str | None
    field: str
    value: str
    expected: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        if self.claim_id is not None:
            where += f", claim {self.claim_id}"
        field = f", field {self.field}" if self.field else ""
        value = f": got {self.value}" if self.value != "" else ""
        return f"{where}{field}{value}; expected {self.expected}"

    def as_dict(self) -> dict[str, str | int | None]:
        """A JSON-ready record of the error."""
        return {
            "file": self.file,
            "line": self.line,
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
        return f"{at}: {self.key}: {self.expected}" if self.key else f"{at}: {self.expected}"
