"""Generated docs are current; the knowledge base ships with the package."""

from __future__ import annotations

import os
from pathlib import Path

from pain_asp.authoring.docs import generated_docs
from pain_asp.kb import rule_catalog
from pain_asp.resources import cases_dir, kb_dir, payers_dir

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_generated_docs_are_current() -> None:
    for name, text in generated_docs().items():
        assert (DOCS / name).read_text(encoding="utf-8") == text, f"docs/{name} is stale: run pain-asp docs"


def test_every_rule_is_documented() -> None:
    text = (DOCS / "rules.md").read_text(encoding="utf-8")
    for rule_id in rule_catalog():
        assert f"### {rule_id}" in text


def test_kb_and_payers_ship_inside_the_package() -> None:
    assert (kb_dir() / "check.lp").is_file()
    assert (payers_dir() / "medicare.yaml").is_file()
    cases = cases_dir()
    assert cases is not None and (cases / "esi-frequency").is_dir()  # rules test/lint when installed
    if os.environ.get("CI"):
        # CI installs a built wheel (pip install '.[test]', not editable): the files must
        # come from inside the installed package, not from the checkout.
        import pain_asp

        package = Path(pain_asp.__file__).resolve().parent
        assert kb_dir() == package / "kb" and "site-packages" in str(package)
        assert cases == package / "cases"
