"""The worker side of a batch (:mod:`pain_asp.modes.check`): worker processes that check chunks.

:class:`WorkerPool` starts worker processes (from a fork server that has imported clingo and
the engine), sends each chunk's payload, and gives back the results in chunk order; a worker
that dies is replaced and its chunk tried again once. In a worker, :func:`check_task` reads
the payload's kind (records, JSON Lines, a piece's records, an index pass, a bucket of the
batch index), checks and renders the claims, and replies with msgpack. Workers retire after a
number of claims or past a resident memory, and are replaced by fresh ones.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Optional

import msgspec

from ..errors import InputError, PainAspError
from ..memory import rss_mb
from ..models import Claim, HistoryEntry
from ..processes import worker_context
from .batch_frames import (ENCODER, NIL, CheckedChunk, PatientIndex, Spooled, Unparsed, checked_chunk, checked_item,
                           decoder, merge_history, spooled)

__all__ = ["WorkerPool", "check_task", "validated_line"]


def check_task(checker: Any, payload: bytes, fmt: str, colour: bool) -> Any:
    """Run one chunk in a worker; the payload's first byte says what to do with the rest.

    * ``R``: check validated records (msgpack ``Task`` list, and the services of the chunk's
      patients with several claims, :meth:`PatientIndex.table`) and render each result;
    * ``L``: the same for JSON Lines claims as read (after the batch's salt, 16 bytes: a
      ``Unparsed`` frame and the chunk's parts of the batch index,
      :meth:`pain_asp.modes.batch_index.BatchIndex.chunk`): parse, validate, check, render;
    * ``X``: the same for a piece's records (an 837P's, a YAML file's) validated in the
      index pass (``Spooled``);
    * ``I``: parse and validate a ``Unparsed`` frame for the index pass (after the batch's salt,
      16 bytes, the number of the frame's first claim, 8, and the number of buckets, 4): one
      :func:`pain_asp.modes.batch_index.index_row` per claim (none for a line that is not
      a claim), its services None when the claim fails a check of the batch's
      (:func:`pain_asp.inputs.records.cross_check`: a diagnosis pointer, the payer), sorted
      into buckets (:func:`pain_asp.modes.batch_index.bucket_rows`), with a piece's records
      (an 837P's transaction sets, a YAML file) as validated (``Spooled``); or only the
      file's name in a list when an element of a JSON array or an 837P's transaction sets
      do not read on their own;
    * ``D`` and ``S``: a bucket's task of the batch index,
      :func:`pain_asp.modes.batch_index.find_repeats` and
      :func:`pain_asp.modes.batch_index.share_patients`.

    A checked chunk gives a :class:`CheckedChunk` of its claims, in order.
    """
    kind, body = payload[:1], payload[1:]
    if kind == b"I":
        return _index_lines(checker, body)
    if kind == b"D":
        from .batch_index import find_repeats

        chunk_size, parts = decoder("repeat task").decode(body)
        return find_repeats(parts, chunk_size)
    if kind == b"S":
        from .batch_index import share_patients

        chunk_size, parts, repeated = decoder("patient task").decode(body)
        return share_patients(parts, repeated, chunk_size)
    if kind in (b"L", b"X"):
        return _check_lines(checker, body, fmt, colour, validated=kind == b"X")
    from ..inputs.records import Record

    records = []
    past: dict[int, Callable[[], list[HistoryEntry]]] = {}
    tasks, table = decoder("tasks").decode(body)
    index = PatientIndex.of_table(table)
    for task in tasks:
        errors = [InputError(*e) for e in task.errors]
        records.append(Record(task.file, task.position, claim=task.claim, errors=errors,
                              claim_id=task.claim_id))
        if task.claim is not None:
            past[id(task.claim)] = functools.partial(list, task.history) if task.history is not None \
                else functools.partial(_merged_others, index, task.claim, task.claim.patient.id, task.claim_id)
    return _check_records(checker, records, past, fmt, colour)


def _line_record(line: Unparsed) -> Any:
    """The record of a JSON Lines or JSON claim (:func:`pain_asp.inputs.readers.record_from_line`)."""
    from ..inputs.readers import record_from_line
    from ..inputs.records import Record

    if line.errors:
        return Record(line.file, line.position, errors=[InputError(*e) for e in line.errors])
    return record_from_line(line.file, line.position, line.line, line.text)


def _line_records(line: Unparsed) -> Iterable[Any]:
    """The records of a JSON Lines or JSON claim, of an 837P's transaction sets
    (:func:`pain_asp.inputs.x12.records_from_piece`, read a set at a time), or of a YAML file
    (:func:`pain_asp.inputs.readers.file_records`, read whole)."""
    if not line.claims:  # a JSON claim (the common case: nothing imported for it)
        return [_line_record(line)]
    from ..inputs.readers import WHOLE_FILE, file_records

    if line.line == WHOLE_FILE:
        return file_records(Path(line.file))
    from ..inputs.x12 import records_from_piece

    return records_from_piece(line.file, line.position, line.line, line.text, line.claims)


def _index_lines(checker: Any, body: bytes) -> Any:
    from ..history import claim_services
    from ..inputs.readers import Unsplittable
    from ..inputs.records import cross_check
    from .batch_index import bucket_rows, index_row

    salt, start = body[:16], int.from_bytes(body[16:24], "little")
    buckets, chunk_size = int.from_bytes(body[24:28], "little"), int.from_bytes(body[28:32], "little")
    payers = set(checker.known_payers())
    rows: list[Any] = []
    pieces: list[Spooled] = []  # a piece's records, validated: the check pass does not read it again
    offset = 0
    lines = decoder("lines").decode(memoryview(body)[32:])
    for line in lines:
        try:
            for record in _line_records(line):
                claim = record.claim
                if claim is not None:
                    cross_check(record, payers, {})
                    services = ENCODER.encode(claim_services(claim)) if record.claim is not None else None
                    rows.append(index_row(salt, start + offset, claim.claim_id, claim.frequency, claim.patient.id,
                                          f"{record.file} claim {record.position}", services))
                if line.claims:
                    pieces.append(spooled(record, False))
                offset += 1
        except Unsplittable:  # the command reads the batch itself (_checked_chunks)
            return [line.file]
    parts = bucket_rows(rows, buckets)
    if not any(line.claims for line in lines):
        return parts
    # In frames of a chunk's size: the check pass checks each in a task of its own.
    return parts, [msgspec.Raw(ENCODER.encode(pieces[k:k + chunk_size]))
                   for k in range(0, len(pieces), chunk_size)], len(pieces)


def validated_line(line: Unparsed, payers: set[str], first: Optional[str]) -> Any:
    """The record of a JSON Lines claim with the batch's checks; ``first``: where an earlier
    claim of the batch used its claim id (see :func:`pain_asp.inputs.readers.read_claims`)."""
    from ..inputs.records import cross_check

    record = _line_record(line)
    if record.claim is not None:
        cross_check(record, payers, {record.claim.claim_id: first} if first is not None else {})
    record.line_at = None
    return record


def _check_lines(checker: Any, body: bytes, fmt: str, colour: bool, validated: bool = False) -> CheckedChunk:
    """The check pass of a chunk with its parts of the batch index: lines to parse, or
    (``validated``) a piece's records validated in the index pass; see :func:`check_task`."""
    from ..inputs.records import Record, cross_check
    from .batch_index import identity_hash

    salt = body[:16]
    frame, repeats, rows, first = decoder("line tasks").decode(memoryview(body)[16:])
    firsts = dict(itertools.chain.from_iterable(map(decoder("repeats").decode, repeats)))
    index = PatientIndex()  # the chunk's patients with several claims, keyed by hashed ids
    for part in rows:
        for patient, claim_id, frequency, services in decoder("patient rows").decode(part):
            index.add_services(patient, claim_id, frequency, services)
    index.freeze()
    payers = set(checker.known_payers())
    records = []
    if validated:  # a piece's records: the batch's claim-id check to add
        for offset, entry in enumerate(decoder("spooled").decode(frame)):
            claim = None if bytes(entry.claim) == bytes(NIL) else decoder("claim").decode(entry.claim)
            record = Record(entry.file, entry.position, claim=claim, claim_id=entry.claim_id,
                            errors=[InputError(*e) for e in entry.errors])
            if record.claim is not None and first + offset in firsts:
                cross_check(record, payers, {record.claim.claim_id: firsts[first + offset]})
            records.append(record)
    else:
        records = [validated_line(line, payers, firsts.get(offset))
                   for offset, line in enumerate(decoder("lines").decode(frame))]
    past: dict[int, Callable[[], list[HistoryEntry]]] = {}
    for record in records:
        claim = record.claim
        if claim is not None:
            past[id(claim)] = functools.partial(_merged_others, index, claim, identity_hash(salt, claim.patient.id),
                                                identity_hash(salt, claim.claim_id))
    return _check_records(checker, records, past, fmt, colour)


def _merged_others(index: PatientIndex, claim: Claim, patient: bytes, claim_id: bytes) -> list[HistoryEntry]:
    return merge_history(claim, index.others(patient, claim_id))


def _check_records(checker: Any, records: list[Any], past: dict[int, Callable[[], list[HistoryEntry]]],
                   fmt: str, colour: bool) -> CheckedChunk:
    """Check and render ``records``; a claim's history is merged (``past``) only when the
    claim joins a solve, so a chunk never holds every claim's merged history at once (a
    patient with many claims would make it their square)."""
    return checked_chunk([checked_item(result, fmt, colour)
                          for result in checker.check(records, history=lambda claim: past[id(claim)]())], fmt)


def _worker_main(conn: Any, options: Any, fmt: str, colour: bool, recycle_claims: int,
                 recycle_mb: float, task: Callable[..., list[Any]]) -> None:
    """A worker: one Checker, chunks in, rendered results out, until it is told to stop or retires.

    Replies are ``b"R"`` (results) or ``b"X"`` (retiring after these results) followed by
    msgpack ``(chunk number, items)``; ``b"U"`` + message for a user error (the knowledge
    base or a payer file did not load); ``b"B"`` + traceback for a bug.
    """
    import signal

    from ..engine import Checker

    # Ctrl-C reaches the whole process group: the parent stops the workers, they do not
    # print tracebacks of their own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        checker = Checker(options)
    except PainAspError as exc:
        conn.send_bytes(b"U" + str(exc).encode("utf-8", "replace"))
        return
    done = 0
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if not message:
            return
        number = int.from_bytes(message[:8], "little")
        try:
            items = task(checker, message[8:], fmt, colour)
        except PainAspError as exc:
            conn.send_bytes(b"U" + str(exc).encode("utf-8", "replace"))
            return
        except Exception:  # noqa: BLE001 - reported to the parent with its traceback
            import traceback

            conn.send_bytes(b"B" + traceback.format_exc().encode("utf-8", "replace"))
            return
        # The index passes ground nothing (clingo does not grow): only checks count towards retiring.
        checked = message[8:9] in (b"L", b"X", b"R")
        done += len(items) if checked else 0
        retire = checked and (done >= recycle_claims or rss_mb() >= recycle_mb)
        try:
            conn.send_bytes((b"X" if retire else b"R") + ENCODER.encode((number, items)))
        except OSError:  # the parent is gone (stopped or killed): nothing to report to
            return
        if retire:
            return


class _Worker:
    def __init__(self, context: Any, args: tuple[Any, ...]) -> None:
        parent, child = context.Pipe(duplex=True)
        self.conn = parent
        self.process = context.Process(target=_worker_main, args=(child, *args), daemon=True)
        self.process.start()
        child.close()
        self.chunk: Optional[int] = None

    def stop(self, wait: float = 5.0) -> None:
        try:
            self.conn.send_bytes(b"")
        except (OSError, ValueError):
            pass
        self.process.join(wait)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(wait)
        self.conn.close()


def _context() -> Any:
    # Workers fork from a server that has already imported clingo and the engine; the server
    # starts from a clean interpreter, so no state of this process is shared.
    return worker_context(["pain_asp.modes.workers", "pain_asp.engine", "clingo"])


class WorkerPool:
    """Worker processes that check chunks; results come back in chunk order.

    ``task(checker, payload, fmt, colour)`` is run in a worker for each chunk (default
    :func:`check_task`; it must be importable by name). Workers retire after
    ``recycle_claims`` claims or past ``recycle_mb`` of resident memory and are replaced.
    """

    def __init__(self, workers: int, options: Any, fmt: str, colour: bool,
                 recycle_claims: int, recycle_mb: float,
                 task: Callable[..., list[Any]] = check_task) -> None:
        self.size = max(1, workers)
        self._context = _context()
        self._args = (options, fmt, colour, max(1, recycle_claims), recycle_mb, task)
        self._workers: list[_Worker] = []
        self.started = 0
        self.retired = 0
        self.died = 0
        self._streak = 0  # deaths since the last chunk checked

    def start(self, count: int) -> None:
        """Start workers now (up to ``count`` in all), e.g. while the batch is still being read."""
        while len(self._workers) < min(count, self.size):
            self._spawn()

    def _spawn(self) -> _Worker:
        worker = _Worker(self._context, self._args)
        self._workers.append(worker)
        self.started += 1
        return worker

    def run(self, chunks: Iterable[tuple[bytes, int]],
            on_failure: Callable[[int, str], list[Any]]) -> Iterator[Any]:
        """Check ``(payload, claims)`` chunks; yield each chunk's items, msgpack-encoded, in chunk order.

        ``on_failure(chunk number, why)`` gives the items for a chunk whose worker died twice.
        """
        from multiprocessing.connection import wait

        source = iter(chunks)
        payloads: dict[int, bytes] = {}
        attempts: dict[int, int] = {}
        retry: list[int] = []
        done: dict[int, Any] = {}
        next_in = next_out = 0
        exhausted = False
        window = 2 * self.size
        try:
            self.start(self.size)
            while True:
                for worker in self._workers:
                    if worker.chunk is not None:
                        continue
                    if retry:
                        number = retry.pop(0)
                    elif not exhausted and next_in - next_out < window:
                        try:
                            payload, _ = next(source)
                        except StopIteration:
                            exhausted = True
                            continue
                        number = next_in
                        next_in += 1
                        payloads[number] = payload
                        attempts[number] = 0
                    else:
                        continue
                    worker.chunk = number
                    try:
                        worker.conn.send_bytes(number.to_bytes(8, "little") + payloads[number])
                    except (OSError, ValueError):
                        pass  # the worker is gone; its sentinel says so below
                busy = [w for w in self._workers if w.chunk is not None]
                if not busy:
                    if exhausted and not retry:
                        break
                    if not self._workers:
                        self._spawn()
                    continue
                ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
                for worker in busy:
                    if worker.conn in ready or worker.conn.poll():
                        if not self._receive(worker, done, payloads):
                            self._died(worker, attempts, retry, done, payloads, on_failure)
                    elif worker.process.sentinel in ready:
                        self._died(worker, attempts, retry, done, payloads, on_failure)
                while next_out in done:
                    yield done.pop(next_out)
                    next_out += 1
        except BaseException:  # stopped early or failed; after a full run the workers stay for the next
            self.close()
            raise

    def _receive(self, worker: _Worker, done: dict[int, Any],
                 payloads: dict[int, bytes]) -> bool:
        """Take a worker's reply; False when there was none (the worker died)."""
        try:
            message = worker.conn.recv_bytes()
        except (EOFError, OSError):
            message = b""
        kind, body = message[:1], message[1:]
        if kind == b"U":
            raise PainAspError(body.decode("utf-8", "replace"))
        if kind == b"B":
            raise RuntimeError("a batch worker failed:\n" + body.decode("utf-8", "replace"))
        if kind not in (b"R", b"X"):  # the pipe closed without a reply: the worker died
            return False
        number, items = decoder("results").decode(body)
        self._streak = 0
        done[number] = items
        payloads.pop(number, None)
        worker.chunk = None
        if kind == b"X":
            self.retired += 1
            self._workers.remove(worker)
            worker.process.join(5.0)
            worker.conn.close()
            self._spawn()
        return True

    def _died(self, worker: _Worker, attempts: dict[int, int], retry: list[int],
              done: dict[int, Any], payloads: dict[int, bytes],
              on_failure: Callable[[int, str], list[Any]]) -> None:
        number = worker.chunk
        worker.process.join(1.0)
        code = worker.process.exitcode
        self.died += 1
        self._streak += 1
        self._workers.remove(worker)
        worker.conn.close()
        if self._streak > 2 * self.size + 2:
            raise PainAspError(f"the worker processes keep stopping without checking anything "
                               f"(last exit code {code}); try --workers 1 or a smaller batch")
        self._spawn()
        if number is None:
            return
        attempts[number] += 1
        if attempts[number] >= 2:
            done[number] = ENCODER.encode(
                on_failure(number, f"the worker process checking it stopped twice (exit code {code})"))
            payloads.pop(number, None)
        else:
            retry.append(number)

    def close(self) -> None:
        """Stop every worker."""
        workers, self._workers = self._workers, []
        for worker in workers:
            try:
                worker.conn.send_bytes(b"")
            except (OSError, ValueError):
                pass
        for worker in workers:
            worker.stop()


