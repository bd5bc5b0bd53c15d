"""Batch checking at scale (pain_asp/modes/check.py): streaming, workers, recycling, progress.

The reference for every comparison is the one-pass path the project started with: read
every record, build batch history over all claims, check in this process, render each result
with ``render_result`` and frame them with ``ResultWriter``. The streaming path (spool + patient index + worker processes) must give
the same bytes, whatever the number of workers, chunk size or recycling.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
import tracemalloc
import zlib
from importlib.util import find_spec
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest
from typer.testing import CliRunner

from pain_asp.bench.generate import generate_claims
from pain_asp.cli import app
from pain_asp.engine import Checker
from pain_asp.errors import PainAspError
from pain_asp.history import batch_history
from pain_asp.inputs import readers
from pain_asp.inputs.readers import read_claims
from pain_asp.models import ORIGINAL, REPLACEMENT
from pain_asp.modes.batch_index import BatchIndex, bucket_rows, index_row
from pain_asp.modes.batch_frames import Checked, PatientIndex, checked_chunk
from pain_asp.modes.check import (
    BatchOptions,
    BatchSummary,
    Progress,
    check_files,
    check_partition,
    claim_identity,
    duplicate_positions,
    iter_checked,
    patient_key,
)
from pain_asp.modes.workers import check_task
from pain_asp.render.results import ResultWriter, render_result

runner = CliRunner()


@pytest.fixture(scope="module")
def checker() -> Checker:
    return Checker()


def _batch_lines(n: int = 48, seed: int = 5) -> list[str]:
    """Generated claims (returning patients, history) plus the bad records a real file has."""
    claims = list(generate_claims(n, seed))
    lines = [json.dumps(c) for c in claims]
    lines.insert(3, "{not json")                                     # unreadable line
    duplicate = dict(claims[10], lines=claims[10]["lines"][:1])      # same id as an earlier claim
    lines.insert(20, json.dumps(duplicate))
    lines.insert(30, json.dumps(dict(claims[0], claim_id="BAD-PAYER", payer="medicaree")))
    lines.insert(40, json.dumps({"claim_id": "NO-LINES", "payer": "medicare"}))
    return lines


@pytest.fixture(scope="module")
def batch_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("batch") / "day.jsonl"
    path.write_text("\n".join(_batch_lines()) + "\n", encoding="utf-8")
    return path


def _reference(files: list[Path], fmt: str, checker: Checker) -> str:
    records = list(read_claims(files, checker.known_payers()))
    provider = batch_history([r.claim for r in records if r.claim is not None])
    out = io.StringIO()
    writer = ResultWriter(fmt, out)
    for result in checker.check(records, history=provider):
        writer.write(SimpleNamespace(text=render_result(result, fmt), status=result.status))
    writer.end()
    return out.getvalue()


def _streamed(files: list[Path], fmt: str, checker: Checker, **options: Any) -> tuple[str, BatchSummary]:
    out = io.StringIO()
    summary = check_files(files, out, fmt=fmt, checker=checker, options=BatchOptions(**options))
    return out.getvalue(), summary


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "text"])
def test_small_batches_are_checked_in_process_byte_for_byte(batch_file: Path, checker: Checker, fmt: str) -> None:
    text, summary = _streamed([batch_file], fmt, checker)
    assert summary.mode == "in-process"
    assert text == _reference([batch_file], fmt, checker)


@pytest.mark.parametrize(("fmt", "workers"), [("jsonl", 2), ("json", 1), ("csv", 2), ("text", 1)])
def test_worker_path_gives_the_same_bytes(batch_file: Path, checker: Checker, fmt: str, workers: int) -> None:
    # in_memory_limit=0 forces the spool, the patient index and the worker processes;
    # chunks of 7 split patients across chunks, so batch history must come from the index.
    text, summary = _streamed([batch_file], fmt, checker, workers=workers, in_memory_limit=0, chunk_size=7)
    assert summary.mode == "workers" and summary.workers == workers
    assert text == _reference([batch_file], fmt, checker)
    assert summary.claims == len(_batch_lines()) and summary.errors == 4


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_worker_chunks_go_to_a_file_as_bytes_in_order(tmp_path: Path, batch_file: Path, checker: Checker,
                                                     fmt: str) -> None:
    # A worker's chunk is written to the file's binary buffer (ResultWriter.write_joined):
    # after text already written by the caller, with the JSON separators between chunks, and
    # a non-ASCII claim id as UTF-8.
    accented = tmp_path / "accented.jsonl"
    accented.write_text(batch_file.read_text(encoding="utf-8").replace('"claim_id": "', '"claim_id": "é-', 1),
                        encoding="utf-8")
    target = tmp_path / f"out.{fmt}"
    with target.open("w", encoding="utf-8", newline="") as out:
        out.write("notice ✓\n")
        summary = check_files([accented], out, fmt=fmt, checker=checker,
                              options=BatchOptions(workers=2, in_memory_limit=0, chunk_size=7))
    assert summary.mode == "workers"
    assert target.read_bytes() == ("notice ✓\n" + _reference([accented], fmt, checker)).encode("utf-8")


def test_json_lines_claims_are_parsed_and_validated_in_the_workers(
        batch_file: Path, checker: Checker, monkeypatch: pytest.MonkeyPatch) -> None:
    # The command only cuts a large JSON Lines batch into lines: validating a claim in this
    # process fails the test (the workers start from a clean interpreter, unpatched).
    expected = _reference([batch_file], "jsonl", checker)

    def refused(raw: Any) -> Any:
        raise AssertionError("a claim was validated in the command's own process")

    monkeypatch.setattr("pain_asp.inputs.records.parse_claim", refused)
    text, summary = _streamed([batch_file], "jsonl", checker, workers=2, in_memory_limit=0, chunk_size=6)
    assert summary.mode == "workers" and text == expected


def test_json_lines_are_cut_the_same_whatever_the_block_size(
        tmp_path: Path, checker: Checker, monkeypatch: pytest.MonkeyPatch) -> None:
    # The command reads JSON Lines in blocks (pain_asp/inputs/readers.py); every line keeps its
    # number and its line end, blank lines are skipped, an over-long line is one error record,
    # and the last line needs no line end. The expected lines are worked out here from the
    # bytes; the batch (in the workers) must give the output of the reader.
    import pain_asp.inputs.readers as readers

    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 1500)
    claims = [json.dumps(c) for c in generate_claims(6, 9)]
    rows = [claims[0], "", "   ", "{not json", json.dumps({"pad": "x" * 1600}), claims[1] + "\r",
            claims[2], "[1, ", claims[3], claims[4], claims[5]]
    data = "\n".join(rows).encode("utf-8")  # no line end after the last claim
    path = tmp_path / "cut.jsonl"
    path.write_bytes(data)
    pieces = data.split(b"\n")
    expected = [(number, None if len(piece) > 1500 else piece + b"\n" if number < len(pieces) else piece)
                for number, piece in enumerate(pieces, start=1) if piece.strip()]
    for block in (1, 7, 1500, 1 << 20):
        monkeypatch.setattr(readers, "_BLOCK_BYTES", block)
        with path.open("rb") as handle:
            got = [(item.errors[0].line, None) if isinstance(item, readers.Record) else (item[2], item[3])
                   for item in readers._json_lines(str(path), handle)]
        assert got == expected, block
    monkeypatch.setattr(readers, "_BLOCK_BYTES", 7)
    text, summary = _streamed([path], "jsonl", checker, workers=1, in_memory_limit=0, chunk_size=4)
    assert summary.mode == "workers" and summary.claims == len(expected) and summary.errors == 3
    assert text == _reference([path], "jsonl", checker)
    assert path.read_bytes() == data


def test_replacements_voids_and_reused_ids_across_chunks(tmp_path: Path, checker: Checker) -> None:
    claims = list(generate_claims(30, 17))
    invalid = dict(claims[4], claim_id="REUSED", lines=[])                  # not a claim: its id is free
    reused = dict(claims[4], claim_id="REUSED")
    replacement = dict(claims[2], frequency=7, replaces="PCN-3", lines=claims[2]["lines"][:1])
    void = dict(claims[6], frequency=8, replaces="PCN-7")
    after_replacement = dict(claims[9], claim_id=claims[2]["claim_id"])    # an original reusing the id
    bad_dx = dict(claims[11], claim_id="BAD-DX", lines=[dict(claims[11]["lines"][0], dx=[9])])
    again = dict(claims[12], claim_id="BAD-DX")                            # BAD-DX was still used
    rows = claims[:10] + [invalid, replacement, reused, void, bad_dx, after_replacement, again] + claims[10:]
    path = tmp_path / "life.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    text, summary = _streamed([path], "jsonl", checker, workers=2, in_memory_limit=0, chunk_size=3)
    assert summary.mode == "workers"
    assert text == _reference([path], "jsonl", checker)
    statuses = {row["claim_id"]: row["status"] for row in map(json.loads, text.splitlines())}
    assert statuses["REUSED"] != "error" and summary.errors == 4  # invalid, bad_dx, after_replacement, again


@pytest.mark.parametrize("fmt", ["jsonl", "text"])
def test_half_a_surrogate_pair_is_one_claims_error_in_the_workers(tmp_path: Path, checker: Checker,
                                                                  fmt: str) -> None:
    # A JSON escape of half a surrogate pair (no character) in a claim id or patient id stopped
    # the whole batch with a traceback in the index pass, where the ids are hashed.
    claims = list(generate_claims(12, 21))
    claims[3]["claim_id"] = "C-\ud800"
    claims[7]["patient"] = dict(claims[7]["patient"], id="P-\udfff")
    path = tmp_path / "escapes.jsonl"
    path.write_text("\n".join(json.dumps(c) for c in claims) + "\n", encoding="utf-8")
    text, summary = _streamed([path], fmt, checker, workers=2, in_memory_limit=0, chunk_size=5)
    assert summary.mode == "workers" and summary.claims == 12 and summary.errors == 2
    assert text == _reference([path], fmt, checker)


def test_bad_claims_of_a_json_array_are_their_own_errors_in_the_workers(tmp_path: Path, checker: Checker) -> None:
    # Valid JSON with a repeated key or a number beyond the limits in one claim: that claim is
    # an error record and the others are checked, whichever path reads the file.
    claims = [json.dumps(c) for c in generate_claims(6, 22)]
    claims[1] = '{"claim_id": "B", "claim_id": "B"}'
    claims[4] = '{"claim_id": "E", "units": ' + "9" * 5000 + "}"
    path = tmp_path / "array.json"
    path.write_text("[" + ",\n".join(claims) + "]", encoding="utf-8")
    text, summary = _streamed([path], "jsonl", checker, workers=1, in_memory_limit=0, chunk_size=4)
    assert summary.mode == "workers" and summary.claims == 6 and summary.errors == 2
    assert text == _reference([path], "jsonl", checker)


def test_how_deep_a_json_line_may_nest_does_not_depend_on_the_reader(tmp_path: Path, checker: Checker) -> None:
    # Python's JSON reader stops near 1,000 levels, sooner the deeper its caller's stack: a line
    # nested about 985 deep was read (its claim named) by one path and not by another.
    depths = [100, 600, 980, 984, 988, 992]
    path = tmp_path / "deep.jsonl"
    path.write_text("".join('{"claim_id": "D%d", "clinical": %s}\n' % (n, "[" * n + "]" * n) for n in depths))
    expected = _reference([path], "jsonl", checker)
    assert [json.loads(line)["claim_id"] for line in expected.splitlines()] == ["D100"] + [None] * 5
    text, _ = _streamed([path], "jsonl", checker, workers=1, in_memory_limit=0, chunk_size=3)
    assert text == expected


def test_a_large_batch_of_other_formats_is_read_by_the_command(tmp_path: Path, batch_file: Path,
                                                                checker: Checker) -> None:
    listed = tmp_path / "more.json"
    listed.write_text(json.dumps([dict(c, claim_id=f"J-{n}") for n, c in enumerate(generate_claims(9, 12))]))
    text, summary = _streamed([batch_file, listed], "jsonl", checker, workers=2, in_memory_limit=0, chunk_size=5)
    assert summary.mode == "workers"
    assert text == _reference([batch_file, listed], "jsonl", checker)


def test_one_record_per_claim_in_input_order_across_files(tmp_path: Path, batch_file: Path, checker: Checker) -> None:
    second = tmp_path / "second.jsonl"
    second.write_text("\n".join(json.dumps(dict(c, claim_id=f"S-{n}"))
                                for n, c in enumerate(generate_claims(9, 11))) + "\n")
    text, _ = _streamed([batch_file, second], "jsonl", checker, workers=2, in_memory_limit=5, chunk_size=4)
    rows = [json.loads(line) for line in text.splitlines()]
    assert [(r["file"], r["position"]) for r in rows] == \
        [(str(batch_file), n) for n in range(1, len(_batch_lines()) + 1)] + [(str(second), n) for n in range(1, 10)]
    assert text == _reference([batch_file, second], "jsonl", checker)


def test_workers_retire_and_are_replaced_without_changing_results(batch_file: Path, checker: Checker) -> None:
    text, summary = _streamed([batch_file], "jsonl", checker, workers=2, in_memory_limit=0, chunk_size=5,
                              recycle_claims=10)
    assert summary.workers_retired >= 3 and summary.workers_started >= summary.workers_retired + 2
    assert text == _reference([batch_file], "jsonl", checker)


def test_a_worker_retires_after_one_chunk_by_default(batch_file: Path, checker: Checker) -> None:
    """A second chunk in the same process took a worker past 150 MB (docs/scaling.md)."""
    assert len(_batch_lines()) == 4 * 13
    text, summary = _streamed([batch_file], "jsonl", checker, workers=1, in_memory_limit=0, chunk_size=13)
    assert summary.workers_retired == 4
    assert text == _reference([batch_file], "jsonl", checker)


def test_memory_limit_retires_a_worker_after_each_chunk(batch_file: Path, checker: Checker) -> None:
    text, summary = _streamed([batch_file], "jsonl", checker, workers=1, in_memory_limit=0, chunk_size=20,
                              recycle_mb=1.0)
    chunks = -(-len(_batch_lines()) // 20)
    assert summary.workers_retired == chunks
    assert text == _reference([batch_file], "jsonl", checker)


def _crashing_task(checker: Any, payload: bytes, fmt: str, colour: bool) -> list[tuple[Any, ...]]:
    """Runs in a worker: dies on a chunk holding CRASH-ALWAYS, and once on CRASH-ONCE-<token>."""
    text = payload.decode("latin-1")
    if "CRASH-ALWAYS" in text:
        os._exit(3)
    marker = text.find("CRASH-ONCE-")
    if marker >= 0:
        token = text[marker + 11:marker + 27]
        flag = Path(tempfile.gettempdir()) / f"pain-asp-test-{token}"
        if not flag.exists():
            flag.write_text("crashed once")
            os._exit(4)
    return check_task(checker, payload, fmt, colour)


def _unchecked_task(checker: Any, payload: bytes, fmt: str, colour: bool) -> list[Any]:
    """Runs in a worker: the real index pass, and for the check pass a stand-in result per
    claim (no clingo), so that a test sees the command's own work on a large batch quickly."""
    if payload[:1] != b"L":
        return check_task(checker, payload, fmt, colour)
    lines = msgspec.msgpack.decode(payload[17:])[0]  # after the kind and the batch's salt
    return checked_chunk([Checked(None, None, "clean", 9, 0, "{}\n") for _ in lines], fmt)


@pytest.mark.parametrize("dask", [None, pytest.param("local", marks=pytest.mark.skipif(
    find_spec("distributed") is None, reason="needs pain-asp[scale]"))])
def test_the_command_does_not_grow_with_the_batch(tmp_path: Path, checker: Checker,
                                                 monkeypatch: pytest.MonkeyPatch, dask: str | None) -> None:
    """The claim-id check and the patient index are kept on disk: the command's Python memory
    at its peak is the same for 2,000 and 10,000 claims (three claims a patient, so every
    claim is in the patient index). It held about 0.7 KB a claim when they were in memory.
    The files are read in small blocks, so that where a block ends does not move the peak."""
    monkeypatch.setattr(readers, "_BLOCK_BYTES", 16_384)
    template = next(iter(generate_claims(1, 5)))
    peaks = []
    for count in (2_000, 2_000, 10_000):  # the first run warms up (Dask's first cluster allocates much)
        path = tmp_path / f"day-{count}.jsonl"
        with path.open("w", encoding="utf-8") as out:
            for n in range(count):
                out.write(json.dumps(dict(template, claim_id=f"C{n}", patient=dict(template["patient"], id=f"P{n // 3}"))))
                out.write("\n")
        # With Dask, the client and the LocalCluster's scheduler run here: distributed kept the
        # last 1,000 messages under 1 MB of each connection, every chunk sent among them.
        options = BatchOptions(workers=2, in_memory_limit=0, chunk_size=500, dask=dask)
        tracemalloc.start()
        try:
            claims = sum(1 for _ in iter_checked([path], checker, options=options, task=_unchecked_task))
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert claims == count
    # The peak moves by up to 0.5 MB with how many chunks' results wait at once (and Dask's
    # scheduler keeps some state of each task): under 150 bytes for each claim more, it was 465;
    # with Dask under 500, it was 2,100 while distributed kept the messages.
    assert peaks[2] - peaks[1] < 8_000 * (500 if dask else 150), peaks


def _indexed(rows: list[Any], buckets: int, chunk_size: int) -> BatchIndex:
    """A BatchIndex built from ``rows`` as a batch builds it, its tasks run here as a worker runs them."""
    index = BatchIndex(buckets, chunk_size)
    for start in range(0, len(rows), chunk_size):
        index.add(bucket_rows(rows[start:start + chunk_size], buckets))
    for payload, _ in index.repeat_tasks():
        index.add_repeats(msgspec.msgpack.encode(check_task(None, payload, "jsonl", False)))
    for payload, _ in index.patient_tasks():
        index.add_shared(msgspec.msgpack.encode(check_task(None, payload, "jsonl", False)))
    return index


@pytest.mark.parametrize(("buckets", "chunk_size"), [(1, 6), (3, 6), (4, 2)])
def test_the_batch_index_keeps_hashes_not_ids_and_answers_as_the_claim_id_check(buckets: int,
                                                                                 chunk_size: int) -> None:
    """The command's index on disk holds no claim id or patient id, and finds repeats as
    read_claims does: an original whose id an earlier claim used is told where the latest
    earlier claim with that id that is not itself a repeat is (a replacement counts); the
    answers do not depend on how the batch falls into chunks and buckets."""
    salt = os.urandom(16)
    claims = [("A-1", ORIGINAL, "PAT-1"), ("A-1", ORIGINAL, "PAT-1"), ("A-1", REPLACEMENT, "PAT-1"),
              ("A-1", ORIGINAL, "PAT-2"), ("B-2", ORIGINAL, "PAT-2"), ("C-3", ORIGINAL, "PAT-3")]
    rows = [index_row(salt, n, claim_id, frequency, patient, f"day.jsonl claim {n + 1}", b"S%d" % n)
            for n, (claim_id, frequency, patient) in enumerate(claims)]
    index = _indexed(rows, buckets, chunk_size)
    try:
        index._spool.seek(0)
        stored = index._spool.read()
        assert b"S0" in stored and not any(text in stored for text in (b"A-1", b"B-2", b"C-3", b"PAT-")), \
            "an id is stored"
        assert [index.first(n) for n in range(6)] == [None, "day.jsonl claim 1", None, "day.jsonl claim 3", None, None]
        repeats: list[tuple[int, str]] = []
        by_patient: dict[bytes, list[tuple[int, bytes]]] = {}
        for chunk in range(6 // chunk_size):
            repeat_parts, row_parts = index.chunk(chunk)
            repeats += [(chunk * chunk_size + offset, first)
                        for part in repeat_parts for offset, first in msgspec.msgpack.decode(part)]
            seen: dict[bytes, list[tuple[int, bytes]]] = {}
            for part in row_parts:
                for patient, _, frequency, services in msgspec.msgpack.decode(part):
                    seen.setdefault(patient, []).append((frequency, services))
            for patient, held in seen.items():  # every chunk of a patient is sent all its claims
                assert by_patient.setdefault(patient, held) == held
        assert sorted(repeats) == [(1, "day.jsonl claim 1"), (3, "day.jsonl claim 3")]
        # Every claim of the patients with two claims or more, by patient in input order, the
        # repeat left out (the worker rebuilds each patient's claims and drops one left with one).
        assert sorted(by_patient.values()) == [[(ORIGINAL, b"S0"), (REPLACEMENT, b"S2")], [(ORIGINAL, b"S4")]]
    finally:
        index.close()


def test_a_batch_index_that_cannot_be_written_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A full temporary folder (SQLite spills a bucket of the batch's index there, in a worker)
    is a user error naming the folder, not a traceback (the worker sends it to the command,
    which stops the batch with it)."""
    import sqlite3

    class Full(sqlite3.Connection):
        def executemany(self, *args: Any) -> Any:
            raise sqlite3.OperationalError("database or disk is full")

    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *args, **kwargs: connect(*args, factory=Full, **kwargs))
    salt = os.urandom(16)
    index = BatchIndex(2, 10)
    index.add(bucket_rows([index_row(salt, n, f"C-{n}", ORIGINAL, "P", "f claim 1", b"S") for n in range(4)], 2))
    with pytest.raises(PainAspError, match="temporary folder .*database or disk is full"):
        for payload, _ in index.repeat_tasks():
            check_task(None, payload, "jsonl", False)
    index.close()


def _index_crashing_task(checker: Any, payload: bytes, fmt: str, colour: bool) -> Any:
    """Runs in a worker: dies on every patient task of the batch index."""
    if payload[:1] == b"S":
        os._exit(5)
    return check_task(checker, payload, fmt, colour)


def test_a_bucket_of_the_index_that_cannot_be_built_leaves_every_claim_unchecked(batch_file: Path,
                                                                                  checker: Checker) -> None:
    # Without a bucket of the patient index some claims would be checked without their
    # patient's other claims (a false clean): none is checked, each says why, the batch ends.
    summary = BatchSummary()
    # One worker: two buckets, each task dies twice (four deaths, under the pool's limit).
    items = list(iter_checked([batch_file], checker, summary=summary, task=_index_crashing_task,
                              options=BatchOptions(workers=1, in_memory_limit=0, chunk_size=7)))
    assert len(items) == len(_batch_lines()) and summary.exit_code("never") == 2
    assert all(item.status == "error" for item in items)
    assert all("not checked: the batch's index could not be built (the worker process checking it stopped "
               "twice" in item.text for item in items if "expected a completed check" in item.text)
    assert sum("could not be built" in item.text for item in items) == len(_batch_lines()) - 4  # 4 unreadable


def test_a_dead_worker_is_replaced_and_no_claim_is_lost(tmp_path: Path, checker: Checker) -> None:
    token = os.urandom(8).hex()
    claims = list(generate_claims(30, 21))
    claims[3]["claim_id"] = f"CRASH-ONCE-{token}"
    claims[17]["claim_id"] = "CRASH-ALWAYS"
    path = tmp_path / "crash.jsonl"
    path.write_text("\n".join(json.dumps(c) for c in claims) + "\n")
    out = io.StringIO()
    summary = BatchSummary()
    options = BatchOptions(workers=2, in_memory_limit=0, chunk_size=5)
    try:
        for item in iter_checked([path], checker, options=options, summary=summary, task=_crashing_task):
            out.write(item.text)
    finally:
        (Path(tempfile.gettempdir()) / f"pain-asp-test-{token}").unlink(missing_ok=True)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    reference = [json.loads(line) for line in _reference([path], "jsonl", checker).splitlines()]
    assert len(rows) == 30 and summary.workers_died == 3  # once for CRASH-ONCE, twice for CRASH-ALWAYS
    for n, (row, expected) in enumerate(zip(rows, reference)):
        if 15 <= n < 20:  # the chunk with CRASH-ALWAYS: every claim reported, none checked
            assert row["status"] == "error" and row["claim_id"] == expected["claim_id"]
            assert "not checked" in row["errors"][0]["message"]
        else:
            assert row == expected
    assert summary.exit_code("deny") == 2


def test_patient_index_gives_what_batch_history_gives(tmp_path: Path) -> None:
    records = [r for r in read_claims_from(list(generate_claims(400, 3)), tmp_path)]
    claims = [r.claim for r in records if r.claim is not None]
    index = PatientIndex()
    for claim in claims:
        index.add(claim)
    index.freeze()
    provider = batch_history(claims)
    assert 0 < len(index) < len({c.patient.id for c in claims})  # single-claim patients dropped
    assert sum(1 for c in claims if index.history(c) != list(c.history)) > 10  # the batch adds history
    for claim in claims:
        assert index.history(claim) == provider(claim)


def read_claims_from(raws: list[dict[str, Any]], folder: Path) -> list[Any]:
    path = folder / "c.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in raws) + "\n")
    return list(read_claims([path]))


def test_history_store_is_read_the_same_way_by_workers(tmp_path: Path, checker: Checker) -> None:
    from pain_asp.store import HistoryStore

    earlier = list(generate_claims(60, 8))
    later = [dict(c, claim_id=f"L-{n}") for n, c in enumerate(generate_claims(60, 8))]
    for claim in later:  # the same patients, a year on
        for line in claim["lines"]:
            line["date"] = f"{int(line['date'][:4]) + 1}{line['date'][4:]}".replace("-02-29", "-02-28")
    db = tmp_path / "h.sqlite"
    with HistoryStore(db) as store:
        store.add_claims(r.claim for r in read_claims_from(earlier, tmp_path) if r.claim is not None)
    path = tmp_path / "later.jsonl"
    path.write_text("\n".join(json.dumps(c) for c in later) + "\n")
    outputs = []
    runs = [(1000, None), (0, None)] + ([(0, "local")] if find_spec("distributed") is not None else [])
    for limit, dask in runs:  # in this process, worker processes, a Dask LocalCluster
        out = io.StringIO()
        check_files([path], out, fmt="jsonl", checker=checker, history_db=db,
                    options=BatchOptions(workers=2, in_memory_limit=limit, chunk_size=9, dask=dask))
        outputs.append(out.getvalue())
    assert len(set(outputs)) == 1


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_on_a_terminal_only(batch_file: Path, checker: Checker) -> None:
    terminal, pipe = _Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        check_files([batch_file], io.StringIO(), fmt="jsonl", checker=checker,
                    options=BatchOptions(workers=1, in_memory_limit=0, chunk_size=10),
                    progress=Progress(stream, delay=0.0, interval=0.0))
    shown = terminal.getvalue()
    assert shown.startswith("\r") and shown.endswith("\n")
    final = shown.rsplit("\r", 1)[-1]
    assert f"{len(_batch_lines())}/{len(_batch_lines())} claims" in final
    assert "claims/s" in final and "findings" in final and "denied" in final and "100%" in final
    assert pipe.getvalue() == ""


def test_progress_stays_quiet_for_a_quick_check(batch_file: Path, checker: Checker) -> None:
    terminal = _Terminal()
    check_files([batch_file], io.StringIO(), fmt="jsonl", checker=checker, progress=Progress(terminal, delay=60.0))
    assert terminal.getvalue() == ""


def test_cli_workers_option(tmp_path: Path, batch_file: Path) -> None:
    plain = runner.invoke(app, ["check", str(batch_file), "--format", "jsonl"])
    two = runner.invoke(app, ["check", str(batch_file), "--format", "jsonl", "--workers", "2"])
    assert plain.exit_code == two.exit_code == 2  # the batch holds unreadable records
    assert plain.stdout == two.stdout and "claims/s" not in two.output
    bad = runner.invoke(app, ["check", str(batch_file), "--workers", "0"])
    assert bad.exit_code == 2 and "--workers" in bad.output


def test_partitions_by_patient_give_the_one_machine_output(batch_file: Path, checker: Checker) -> None:
    """What docs/scaling.md does with Dask, in plain Python: partition by patient, check, merge."""
    rows: list[tuple[int, Any]] = []
    for position, text in enumerate(batch_file.read_text().splitlines(), start=1):
        try:
            rows.append((position, json.loads(text)))
        except json.JSONDecodeError:
            rows.append((position, text))  # an unreadable line stays a (bad) record
    duplicates = duplicate_positions((p, claim_identity(raw)) for p, raw in rows)
    assert duplicates == {21: 12}  # the copy of the 11th claim (position 12 after the bad line)
    partitions: dict[int, list[tuple[int, Any]]] = {}
    for position, raw in rows:
        key = patient_key(raw)
        bucket = zlib.crc32(key.encode()) % 3 if key is not None else position % 3
        partitions.setdefault(bucket, []).append((position, raw))
    merged = sorted(pair for part in partitions.values()
                    for pair in check_partition(part, file=str(batch_file), duplicates=duplicates,
                                                checker=checker))
    expected = _reference([batch_file], "jsonl", checker).splitlines(keepends=True)
    got = [text for _, text in merged]
    # The unreadable JSON line is reported by the file reader with its line number; a
    # partition sees only the parsed value, so that one record says "a claim mapping".
    assert len(got) == len(expected)
    for n, (a, b) in enumerate(zip(got, expected), start=1):
        if n == 4:
            assert json.loads(a)["status"] == json.loads(b)["status"] == "error"
        else:
            assert a == b, n


needs_dask = pytest.mark.skipif(find_spec("distributed") is None,
                                reason="Dask is not installed (pip install 'pain-asp[scale]')")


@needs_dask
def test_dask_local_cluster_gives_the_same_bytes(batch_file: Path, checker: Checker) -> None:
    """Workers render as with --workers and the command frames: one format covers both parts."""
    text, summary = _streamed([batch_file], "json", checker, workers=2, dask="local", in_memory_limit=0,
                              chunk_size=7)
    assert summary.mode == "dask" and summary.claims == 52
    assert text == _reference([batch_file], "json", checker)


@needs_dask
def test_dask_workers_check_each_chunk_in_a_process_that_retires(batch_file: Path, checker: Checker) -> None:
    """A Dask worker hands its chunks to a checking process of its own, which retires at the
    memory limit after each chunk as a --workers worker does; no Dask worker is restarted."""
    text, summary = _streamed([batch_file], "jsonl", checker, workers=2, dask="local", in_memory_limit=0,
                              chunk_size=7, recycle_mb=1.0)
    assert summary.workers_retired == -(-len(_batch_lines()) // 7)
    assert text == _reference([batch_file], "jsonl", checker)


@needs_dask
def test_dask_scheduler_that_does_not_answer_is_an_error_not_a_wait(
        batch_file: Path, checker: Checker, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    import time

    from pain_asp.errors import PainAspError

    monkeypatch.setattr("pain_asp.modes.dask_pool.CONNECT_TIMEOUT_S", 1.0, raising=False)
    with socket.socket() as probe:  # a port on loopback where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(PainAspError, match=f"--dask tcp://127.0.0.1:{port}: no Dask scheduler answered"):
        _streamed([batch_file], "jsonl", checker, dask=f"tcp://127.0.0.1:{port}", in_memory_limit=0)
    assert time.monotonic() - started < 10


def _stuck_task(checker: Any, payload: bytes, fmt: str, colour: bool) -> list[Any]:
    """Runs in a checking process: a chunk holding the claim STUCK takes 20 s."""
    if b"STUCK" in payload:
        time.sleep(20)
    return check_task(checker, payload, fmt, colour)


@needs_dask
def test_dask_workers_that_stop_answering_stop_the_batch(tmp_path: Path, checker: Checker,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from pain_asp.errors import PainAspError

    monkeypatch.setattr("pain_asp.modes.dask_pool.SILENCE_S", 2.0, raising=False)
    claims = list(generate_claims(10, 21))
    claims[0]["claim_id"] = "STUCK"
    path = tmp_path / "stuck.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in claims), encoding="utf-8")
    options = BatchOptions(workers=1, in_memory_limit=0, chunk_size=5, dask="local")
    started = time.monotonic()
    with pytest.raises(PainAspError, match="no chunk came back from the Dask workers in 2 s"):
        list(iter_checked([path], checker, options=options, task=_stuck_task))
    assert time.monotonic() - started < 15


def test_cli_dask_option_names_what_it_expects(batch_file: Path) -> None:
    done = runner.invoke(app, ["check", str(batch_file), "--dask", "cluster-1"])
    assert done.exit_code == 2 and "--dask cluster-1: expected local or tcp://HOST:PORT" in done.output


def _json_array_file(folder: Path, name: str = "day.json") -> Path:
    """The claims of the batch file (valid JSON only) and a value that is not a claim, as one JSON array."""
    items: list[Any] = []
    for text in _batch_lines():
        try:
            items.append(json.loads(text))
        except json.JSONDecodeError:
            items.append(42)
    path = folder / name
    path.write_text(json.dumps(items, indent=1), encoding="utf-8")
    return path


def test_json_array_claims_are_parsed_by_the_workers(tmp_path: Path, checker: Checker,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The command cuts a JSON array into its elements; the workers parse and validate them."""
    array = _json_array_file(tmp_path)
    expected = _reference([array, tmp_path / "day.json"], "jsonl", checker)
    monkeypatch.setattr("pain_asp.inputs.readers.validate_record", None)  # not callable in this process
    text, summary = _streamed([array, tmp_path / "day.json"], "jsonl", checker, workers=2, in_memory_limit=0,
                              chunk_size=7)
    assert summary.claims == 2 * len(_batch_lines()) and text == expected


def test_json_that_does_not_cut_apart_is_read_whole(tmp_path: Path, checker: Checker) -> None:
    """A repeated key inside an element is that claim's error (the others are read), and a value
    Python's JSON reads but msgspec does not (NaN) is read as always, as when the command reads
    the file itself."""
    array = _json_array_file(tmp_path).read_text(encoding="utf-8")
    repeated = tmp_path / "repeated.json"
    repeated.write_text(array.replace('"payer":', '"payer": "medicare", "payer":', 1), encoding="utf-8")
    nan = tmp_path / "nan.json"
    nan.write_text(array.replace("42", "NaN", 1), encoding="utf-8")
    for path in (repeated, nan):
        text, _ = _streamed([path], "jsonl", checker, workers=1, in_memory_limit=0, chunk_size=20)
        assert text == _reference([path], "jsonl", checker) and len(text.splitlines()) == len(_batch_lines())


def test_837p_files_stream_through_the_same_path(checker: Checker) -> None:
    folder = Path(__file__).resolve().parent / "data" / "x12"
    files = sorted(folder.glob("*.837"))
    assert len(files) >= 3
    text, summary = _streamed(files, "jsonl", checker, workers=2, in_memory_limit=0, chunk_size=2)
    assert summary.mode == "workers" and summary.claims >= 4
    assert text == _reference(files, "jsonl", checker)


def _one_patient(tmp_path: Path, n: int) -> Path:
    """A JSON Lines file of ``n`` generated claims (with their own history), all of one patient."""
    claims = list(generate_claims(n, 31))
    for claim in claims:
        claim["patient"] = claims[0]["patient"]
    path = tmp_path / "one_patient.jsonl"
    path.write_text("\n".join(json.dumps(c) for c in claims) + "\n", encoding="utf-8")
    return path


def test_a_solve_holds_a_bounded_history(tmp_path: Path, checker: Checker,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A patient with many claims in a batch: every claim carries the others' services, so a
    solve of the whole chunk would hold their square. A chunk is solved in parts of at most
    HISTORY_PER_SOLVE history entries (one claim alone may hold more), with the same results."""
    path = _one_patient(tmp_path, 12)
    expected = _reference([path], "jsonl", checker)
    solved: list[list[int]] = []
    solve = Checker._solve

    def recording(self: Checker, claims: list[Any], history: Any) -> Any:
        solved.append([len(history(claim)) for claim in claims])
        return solve(self, claims, history)

    monkeypatch.setattr(Checker, "_solve", recording)
    monkeypatch.setattr("pain_asp.engine.HISTORY_PER_SOLVE", 30, raising=False)
    assert _reference([path], "jsonl", checker) == expected
    assert sum(len(sizes) for sizes in solved) == 12 and sum(map(sum, solved)) > 30 and len(solved) > 1
    assert all(sum(sizes) <= 30 or len(sizes) == 1 for sizes in solved)


def test_amdahl_efficiency_of_the_parent_share() -> None:
    from pain_asp.bench.batch import amdahl_efficiency

    assert amdahl_efficiency(0.0) == pytest.approx(1.0)
    assert amdahl_efficiency(0.015) == pytest.approx((1 + 0.015) / (1 + 16 * 0.015))  # 81.9 %
    assert amdahl_efficiency(0.02) < 0.80 < amdahl_efficiency(0.015)
    assert amdahl_efficiency(1.0, workers=2) == pytest.approx(2 / 3)  # half the time serial: 1.33x of 2


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_tree_sampler_reports_a_peak_reached_between_two_samples() -> None:
    """A worker's peak is its high-water mark, not the largest resident set a sample happened to see."""
    import subprocess
    import sys

    from pain_asp.bench.batch import TreeSampler

    script = ("import sys, time\nblock = bytearray(80 << 20)\nblock[::4096] = b'x' * len(block[::4096])\n"
              "del block\nprint('freed', flush=True)\ntime.sleep(5)\n")
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "freed\n"
        with TreeSampler(child.pid, interval=0.05) as sampler:
            time.sleep(0.1)
    finally:
        child.kill()
        child.wait()
    assert sampler.peak_root_mb >= 80 and sampler.peak_process_mb >= 80


def test_bench_command_reports_figures_from_one_run() -> None:
    done = runner.invoke(app, ["bench", "--claims", "40", "--baseline", "3", "--cli-runs", "0",
                               "--workers", "1", "--workers", "2", "--json"])
    assert done.exit_code == 0, done.output
    figures = json.loads(done.stdout)
    assert [r["workers"] for r in figures["runs"]] == [1, 2] and figures["identical_outputs"]
    assert sum(figures["statuses"].values()) == 40
    assert figures["baseline"]["claims"] == 3 and figures["baseline"]["claims_per_s"] > 0
    assert figures["parent_per_claim"]["claims"] == 40 and figures["parent_per_claim"]["parent_us"] > 0
    assert figures["runs"][0]["efficiency"] == 1.0 and figures["runs"][1]["efficiency"] > 0
    for run in figures["runs"]:
        assert run["claims_per_s"] > 0 and run["ratio_to_baseline"] > 0
        assert run["parent_cpu_s"] > 0 and run["peak_parent_mb"] >= 0
        if Path("/proc/self/status").exists():
            assert run["peak_rss_mb"] > 20 and run["peak_process_mb"] > 20
    assert figures["command"] == "pain-asp bench --claims 40 --seed 1 --baseline 3 --workers 1 --workers 2"
    from pain_asp.bench.batch import format_batch_report

    text = format_batch_report(figures)
    assert "fresh Control per claim (3 claims)" in text and "2 workers / fresh Control" in text
    assert "\nreproduce: " + figures["command"] + "\n" in text
    assert figures["runs"][1]["command"] == ("pain-asp check claims.jsonl --format jsonl --output results-2.jsonl "
                                             "--fail-on never --workers 2")
    assert all(f"\n  {run['command']}\n" in text for run in figures["runs"])


def test_workers_start_under_a_deep_temporary_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fork server's Unix socket does not fit under a deep $TMPDIR (107 bytes at most):
    the workers are then spawned, and the batch is checked as under a short one."""
    deep = tmp_path / ("t" * 90)
    deep.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    source = tmp_path / "claims.jsonl"
    source.write_text("".join(json.dumps(c) + "\n" for c in generate_claims(1100, 5)), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["check", str(source), "-f", "jsonl", "--workers", "2", "--fail-on", "never",
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["position"] for line in out.read_text().splitlines()] == list(range(1, 1101))


def test_workers_never_import_code_from_the_current_folder(tmp_path: Path) -> None:
    # The fork server starts as `python -c`, which puts the current folder first on the import
    # path, and Python 3.11's fork server imports its preloaded modules (clingo, the engine)
    # before it takes the command's path: a clingo.py or pain_asp/ in the folder a user checks
    # claims from ran in every worker (or an older checkout's code did).
    import subprocess
    import sys

    folder, scripts = tmp_path / "claims", tmp_path / "bin"
    folder.mkdir()
    scripts.mkdir()
    (folder / "clingo.py").write_text("open('IMPORTED', 'w').close()\nraise SystemExit(9)\n")
    (folder / "claims.jsonl").write_text("\n".join(json.dumps(c) for c in generate_claims(30, 3)) + "\n")
    # Run as a console script is (`pain-asp`): its path starts with the script's own folder.
    (scripts / "run.py").write_text(
        "import sys\nfrom pain_asp.modes.check import BatchOptions, check_files\n"
        "if __name__ == '__main__':\n"
        "    s = check_files(['claims.jsonl'], sys.stdout, fmt='jsonl', "
        "options=BatchOptions(workers=2, in_memory_limit=0, chunk_size=8))\n    print(s.claims, s.errors)\n")
    child = subprocess.run([sys.executable, str(scripts / "run.py")], cwd=folder, capture_output=True, text=True,
                           timeout=120)
    assert not (folder / "IMPORTED").exists(), child.stderr[-400:]
    assert child.returncode == 0 and child.stdout.splitlines()[-1] == "30 0", child.stderr[-400:]


def _recording_task(checker: Any, payload: bytes, fmt: str, colour: bool) -> Any:
    """Runs in a worker: adds the size of each payload of the check pass to a file the name of
    which the batch's claim ids give (``SIZES-<token>``)."""
    marker = payload.find(b"SIZES-")
    if payload[:1] in (b"L", b"X", b"R") and marker >= 0:
        sizes = Path(tempfile.gettempdir()) / f"pain-asp-test-{payload[marker:marker + 22].decode()}"
        with sizes.open("a", encoding="utf-8") as handle:
            handle.write(f"{len(payload)}\n")
    return check_task(checker, payload, fmt, colour)


@pytest.mark.parametrize("suffix", [".jsonl", ".yaml"])
def test_a_patients_services_go_to_a_worker_once_a_chunk(tmp_path: Path, checker: Checker, suffix: str) -> None:
    """The check pass sends a chunk's claims with their patients' services, each patient's
    once, not once per claim (40 claims of one patient: 40 services, not 40 x 39), whether
    the workers parse the claims (JSON Lines) or the command does (YAML)."""
    import yaml

    token = "SIZES-" + os.urandom(8).hex()
    path = _one_patient(tmp_path, 40)
    claims = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    claims[0]["claim_id"] = token + claims[0]["claim_id"]
    if suffix == ".yaml":
        path = path.with_suffix(".yaml")
        path.write_text(yaml.safe_dump_all(claims), encoding="utf-8")
    else:
        path.write_text("\n".join(json.dumps(c) for c in claims) + "\n", encoding="utf-8")
    sizes = Path(tempfile.gettempdir()) / f"pain-asp-test-{token}"
    options = BatchOptions(workers=1, in_memory_limit=0, chunk_size=40)
    try:
        text = "".join(item.text for item in iter_checked([path], checker, options=options, task=_recording_task))
        sent = [int(size) for size in sizes.read_text(encoding="utf-8").split()]
    finally:
        sizes.unlink(missing_ok=True)
    assert text == _reference([path], "jsonl", checker)
    assert len(sent) == 1 and sent[0] < 4 * path.stat().st_size  # 40 x 39 services: about 10 times


def _837p_of_sets(folder: Path, name: str, ge01: int | None = None) -> Path:
    """An 837P of four transaction sets taken from the test files (one with segment errors),
    closed by a GE that counts them (or ``ge01``)."""
    data = Path(__file__).resolve().parent / "data" / "x12"
    opening: list[str] = []
    sets: list[list[str]] = []
    for number, source in enumerate(("multi_claim", "broken_segment", "two_line_rtlt", "multi_claim"), start=1):
        segments = [s.strip() for s in (data / f"{source}.837").read_text(encoding="utf-8").split("~") if s.strip()]
        opening = segments[:2]
        body = segments[next(i for i, s in enumerate(segments) if s.startswith("ST*")):
                        next(i for i, s in enumerate(segments) if s.startswith("SE*"))]
        body[0] = f"ST*837*{number:04d}*005010X222A1"
        sets.append(body + [f"SE*{len(body) + 1}*{number:04d}"])
    closing = [f"GE*{ge01 or len(sets)}*101", "IEA*1*000000101"]
    path = folder / name
    path.write_text("~\n".join(opening + [s for body in sets for s in body] + closing) + "~\n", encoding="utf-8")
    return path


def test_837p_claims_are_parsed_by_the_workers(tmp_path: Path, checker: Checker,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The command cuts an 837P into its transaction sets; the workers parse and validate them
    (segment and claim numbers, errors and results as the whole file's reader gives them)."""
    files = sorted((Path(__file__).resolve().parent / "data" / "x12").glob("*.837"))
    files += [_837p_of_sets(tmp_path, "day.txt")]
    expected = {fmt: _reference(files, fmt, checker) for fmt in ("jsonl", "text")}
    monkeypatch.setattr("pain_asp.inputs.x12._scan_parts", None)  # not callable in this process
    monkeypatch.setattr("pain_asp.inputs.x12.PIECE_CLAIMS", 5)  # day.txt in two pieces: sets 1-2, 3-4
    for fmt, workers, chunk_size in (("jsonl", 2, 3), ("text", 1, 1500)):
        text, summary = _streamed(files, fmt, checker, workers=workers, in_memory_limit=0, chunk_size=chunk_size)
        assert summary.claims == 23 and text == expected[fmt]


def test_837p_that_does_not_cut_apart_is_read_whole(tmp_path: Path, checker: Checker) -> None:
    """A GE that miscounts the transaction sets: the file is read by the command's reader,
    which gives the GE error as always."""
    path = _837p_of_sets(tmp_path, "day.837", ge01=3)
    text, summary = _streamed([path], "jsonl", checker, workers=1, in_memory_limit=0, chunk_size=2)
    assert text == _reference([path], "jsonl", checker) and summary.claims == 14
    assert "GE01 equal to the number of transaction sets" in text


def test_yaml_files_are_read_by_a_worker(tmp_path: Path, checker: Checker, monkeypatch: pytest.MonkeyPatch) -> None:
    """A YAML file is read whole by one worker (its anchors and aliases may reach across its
    claims), its claims checked by all; the command does not parse it."""
    import yaml

    claims = list(generate_claims(30, 41))
    documents = tmp_path / "day.yaml"
    documents.write_text(yaml.safe_dump_all(claims), encoding="utf-8")
    listed = tmp_path / "more.yml"
    first = dict(claims[0], claim_id="ANCHOR-1")
    second = dict(claims[1], claim_id="ANCHOR-2", patient=first["patient"])  # dumped as an anchor and an alias
    listed.write_text(yaml.safe_dump([dict(c, claim_id=f"Y-{n}") for n, c in enumerate(claims[:9])] + [first, second])
                      + "- {claim_id: NO-LINES, payer: medicare}\n", encoding="utf-8")
    assert "&id001" in listed.read_text(encoding="utf-8")
    files = [documents, listed]
    expected = {fmt: _reference(files, fmt, checker) for fmt in ("jsonl", "text")}

    def refused(*args: Any) -> Any:
        raise AssertionError("the command parsed a YAML file")

    monkeypatch.setattr("pain_asp.inputs.yamlsafe.compose_all", refused)
    for fmt, workers in (("jsonl", 2), ("text", 1)):
        text, summary = _streamed(files, fmt, checker, workers=workers, in_memory_limit=0, chunk_size=7)
        assert summary.mode == "workers" and summary.claims == 42 and summary.errors == 1
        assert text == expected[fmt]
