"""The per-user cache of derived data: a file whose recorded inputs differ is never used.

Cache file names carry a short key of the inputs' description (pain_asp.cache.stamp_key);
two descriptions may share a key, so each file records its full description and a reader
that finds another one rebuilds the data.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from pain_asp import kb
from pain_asp.cache import read_cached, stamp_key, write_cached
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


def test_a_reader_never_sees_half_a_file_while_others_write_it(cache: Path) -> None:
    """Processes that start together (pytest-xdist workers, batch workers, serve workers) write the
    same cache file at the same time: at every moment the file is absent or one writer's whole
    text, never a part. (Threads here: the file system sees the same calls.)"""
    texts = {f"stamp {n}": chr(ord("a") + n) * 2_000_000 for n in range(2)}  # files of one size
    path = cache / "shared.txt"
    writing = threading.Event()
    sizes: set[int] = set()

    def write(stamp: str) -> None:
        for _ in range(8):
            write_cached(path.name, stamp, texts[stamp])

    def watch() -> None:
        while writing.is_set():
            try:
                sizes.add(path.stat().st_size)
            except FileNotFoundError:
                pass

    writers = [threading.Thread(target=write, args=(stamp,)) for stamp in texts]
    writing.set()
    watcher = threading.Thread(target=watch)
    watcher.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    writing.clear()
    watcher.join()
    assert sizes == {path.stat().st_size}, sorted(sizes)
    assert sorted(read_cached(path.name, stamp) == text for stamp, text in texts.items()) == [False, True]
    assert list(cache.iterdir()) == [path]  # no temporary file left


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


def test_payer_data_comes_from_the_cache_only_for_the_same_text(cache: Path, tmp_path: Path) -> None:
    from pain_asp.payers import _cached_load

    policy = tmp_path / "policy.yaml"
    policy.write_text("id: p\nparameters:\n  esi_max_sessions: 4\n", encoding="utf-8")
    first = _cached_load(policy, policy.read_text(encoding="utf-8"))
    assert first == {"id": "p", "parameters": {"esi_max_sessions": 4}}
    assert len(list(cache.glob("payer-*.json"))) == 1
    assert _cached_load(policy, policy.read_text(encoding="utf-8")) == first  # from the cache
    policy.write_text("id: p\nparameters:\n  esi_max_sessions: 6\n", encoding="utf-8")  # same size
    assert _cached_load(policy, policy.read_text(encoding="utf-8"))["parameters"] == {"esi_max_sessions": 6}


def test_payer_data_json_cannot_carry_is_not_cached(cache: Path, tmp_path: Path) -> None:
    from pain_asp.payers import _cached_load

    policy = tmp_path / "policy.yaml"
    policy.write_text("id: p\ncodes:\n  1: one\n", encoding="utf-8")
    assert _cached_load(policy, policy.read_text(encoding="utf-8")) == {"id": "p", "codes": {1: "one"}}
    assert not list(cache.glob("payer-*.json"))


def test_icd_table_file_with_another_stamp_is_rebuilt(cache: Path) -> None:
    from pain_asp import icd

    icd._table.cache_clear()
    icd.dx_marks.cache_clear()
    try:
        real = icd.dx_marks("M47.816")
        icd._table.cache_clear()
        icd.dx_marks.cache_clear()
        (path,) = cache.glob("icd10cm-*.tsv")
        text = path.read_text(encoding="utf-8")
        size, rest = text.split("\n", 1)
        stamp = rest[:int(size)] + "|other"
        path.write_text(f"{len(stamp)}\n{stamp}M47.816\t{'-' * len(real)}\n", encoding="utf-8")
        assert icd.dx_marks("M47.816") == real and "B" in real
    finally:
        icd._table.cache_clear()
        icd.dx_marks.cache_clear()


def test_one_json_claim_is_checked_without_importing_yaml(cache: Path, tmp_path: Path) -> None:
    """A JSON claim needs no YAML parser once the payer files are cached (start-up, docs/scaling.md)."""
    import subprocess
    import sys

    import yaml

    claims = yaml.safe_load((Path(__file__).parents[1] / "docs" / "examples" / "claims.yaml").read_text(
        encoding="utf-8"))
    claim = claims[0] if isinstance(claims, list) else claims
    source = tmp_path / "claim.json"
    source.write_text(json.dumps(claim, default=str), encoding="utf-8")
    # app(), not main(): main() leaves the process as soon as check is done (pain_asp/cli.py)
    script = ("import sys\nfrom pain_asp.cli import app\nsys.argv = ['pain-asp', 'check', sys.argv[1], "
              "'--format', 'json', '--fail-on', 'never']\ntry:\n    app()\nexcept SystemExit:\n    pass\n"
              "sys.stderr.write('yaml imported' if 'yaml' in sys.modules else 'no yaml')\n")
    runs = [subprocess.run([sys.executable, "-c", script, str(source)], capture_output=True, text=True,
                           check=True) for _ in range(2)]  # the first fills the cache
    assert runs[1].stderr.endswith("no yaml"), runs[1].stderr[-300:]
    assert runs[0].stdout == runs[1].stdout and '"claim_id"' in runs[1].stdout


def test_a_cache_that_cannot_be_written_only_costs_time(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed cache write (full disk, read-only folder: the output module turns it into a
    PainAspError) never stops the work that wanted the cache."""
    from pain_asp import cache as cache_module
    from pain_asp.errors import PainAspError

    def refuse(path: Path, text: str) -> None:
        raise PainAspError(f"{path}: cannot write in {path.parent} (No space left on device)")

    monkeypatch.setattr("pain_asp.outputs.write_output", refuse)
    write_cached("full-disk.txt", "stamp", "text")
    assert read_cached("full-disk.txt", "stamp") is None
    cache_module.write_atomic(cache / "other.txt", "text")
    assert not (cache / "other.txt").exists()


def test_entries_of_a_kind_not_written_for_30_days_are_removed_on_the_next_write(cache: Path) -> None:
    """Every install (another folder, another version) and every edit of a payer file writes
    new entries; without pruning the cache only grows. A write removes its kind's entries
    written more than 30 days ago (a kind: the name up to its key), and leaves every other
    kind, and this kind's recent entries, alone; an entry still in use is written again."""
    import os
    import time

    day = 86_400
    entries = {"icd10cm-00000000.tsv": 40, "icd10cm-11111111.tsv": 1, "program-22222222.lp": 40,
               "payer-medicare-33333333.json": 40, "payer-medicare-44444444.json": 29,
               "payer-commercial-55555555.json": 40}
    for name, age in entries.items():
        (cache / name).write_text("x", encoding="utf-8")
        os.utime(cache / name, (time.time() - age * day,) * 2)
    write_cached("icd10cm-66666666.tsv", "stamp", "text")
    write_cached("payer-medicare-77777777.json", "stamp", "{}")
    assert sorted(p.name for p in cache.iterdir()) == [
        "icd10cm-11111111.tsv", "icd10cm-66666666.tsv", "payer-commercial-55555555.json",
        "payer-medicare-44444444.json", "payer-medicare-77777777.json", "program-22222222.lp"]
