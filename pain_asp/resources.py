"""Locate the knowledge base and payer files, installed or in a source checkout."""

from __future__ import annotations

from pathlib import Path

__all__ = ["kb_dir", "payers_dir"]

_PACKAGE = Path(__file__).resolve().parent


def _shipped(name: str) -> Path:
    """Return the packaged copy of ``name`` (wheel), else the checkout's top-level one."""
    inside = _PACKAGE / name
    if inside.is_dir():
        return inside
    return _PACKAGE.parent / name


def kb_dir() -> Path:
    """The directory holding ``main.lp`` and the rule files."""
    return _shipped("kb")


def payers_dir() -> Path:
    """The directory holding the shipped payer policy files."""
    return _shipped("payers")
