"""The per-user cache of derived data: a file whose recorded inputs differ is never used.

Cache file names carry a short key of the inputs' description (pain_asp.cache.stamp_key);
two descriptions may share a key, so each file records its full description and a reader
that finds another one rebuilds the data.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pain_asp import kb
from pain_asp.cache import stamp_key
from pain_asp.resources import kb_dir


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PAIN_ASP_CACHE_DIR", str(tmp_path))
    kb._metadata.cache_clear()
    yield tmp_path
    kb._metadata.cache_clear()


def test_stamp_key_is_short_and_stable() -> None:
    assert stamp_key("a|1|2") == stamp_key("a|1|2")
    assert stamp_key("a|1|2") != stamp_key("a|1|3")
    assert len(stamp_key("anything")) == 8 and int(stamp_key("anything"), 16) >= 0


def test_rule_metadata_file_with_another_stamp_is_rebuilt(cache: Path) -> None:
    stamp = kb._kb_stamp(kb_dir())
    path = cache / f"kb-meta-{stamp_key(stamp)}.json"
    path.write_text(json.dumps({"stamp": stamp + "\nother", "rules": [
        {"id": "planted", "category": "coding", "severity": "deny", "meta": {}, "sources": [],
         "effective": None, "reads": []}], "codes": []}), encoding="utf-8")
    rules = kb.rule_catalog()
    assert "planted" not in rules and "imaging-included" in rules
    assert json.loads(path.read_text(encoding="utf-8"))["stamp"] == stamp
    kb._metadata.cache_clear()
    assert set(kb.rule_catalog()) == set(rules)  # now read from the rebuilt file
