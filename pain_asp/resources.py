"""Locate the knowledge base, payer files and rule cases, installed or in a source checkout."""

from __future__ import annotations

from pathlib import Path

__all__ = ["cases_dir", "kb_dir", "payers_dir"]

_PACKAGE = Path(__file__).resolve().parent


def _shipped(name: str) -> Path:
    """Return the packaged copy of ``name`` (wheel), else the checkout's top-level one."""
    inside = _PACKAGE / name
    if inside.is_dir():
        return inside
    return _PACKAGE.parent / name


def kb_dir() -> Path:
    """The directory holding ``check.lp`` and the rule files."""
    return _shipped("kb")


def payers_dir() -> Path:
    """The directory holding the shipped payer policy files."""
    return _shipped("payers")


def cases_dir() -> Path | None:
    """The rule case folders that go with :func:`kb_dir` (``pain_asp/cases`` in a wheel, else
    the checkout's ``tests/cases``); None when neither is there."""
    for folder in (_PACKAGE / "cases", _PACKAGE.parent / "tests" / "cases"):
        if folder.is_dir():
            return folder
    return None
