"""The batch's claim-id check and patient index, built by the workers in buckets (docs/scaling.md).

A large JSON Lines or JSON batch (:func:`pain_asp.modes.check._with_lines`) needs two answers
that depend on the whole batch: which claims repeat a claim id an earlier claim used (the
claim-id check of :func:`pain_asp.inputs.readers.read_claims`), and each claim's patient's
other claims (batch history). The workers find them, in three rounds of tasks, so that the
command only moves bytes between them and a spool file and does no work per claim:

1. **Index pass** (a task per chunk of claims): the worker parses and validates the chunk
   and sorts one :func:`index_row` per claim into buckets (:func:`bucket_rows`): by its
   hashed claim id, and, when the claim passed the batch's checks, by its hashed patient id.
   The command appends the parts to the index spool (:class:`BatchIndex`).
2. **Claim ids** (a task per bucket, :func:`find_repeats`): an original claim whose claim id
   an earlier claim of the batch used is a *repeat*, told where the latest earlier claim with
   that id that was not itself a repeat is; its patient's claims do not see it.
3. **Patients** (a task per bucket, :func:`share_patients`): for each chunk, every claim of
   its patients with two claims or more, by patient in input order, repeats left out.

The check pass then sends each chunk its parts of 2 and 3 (:meth:`BatchIndex.chunk`); the
worker rebuilds each such patient's claims from them (a replacement or void takes the place
of the claim with its claim id). The answers are those of an index over the whole batch at
once (the same rules as :func:`pain_asp.inputs.readers.read_claims` and
:class:`pain_asp.modes.batch_frames.PatientIndex`), whatever the number of chunks or buckets.

No claim id or patient id is kept: a row holds salted hashes of them (a salt drawn for each
batch and never written), where the claim is ("FILE claim N", for the message of a repeated
claim id) and its encoded services. The index spool has no name (like the claims spool) and a
bucket's task sorts its rows in SQLite's private temporary database, which spills to a file
it unlinks as it creates it (``SQLITE_TMPDIR``, ``TMPDIR`` or ``/var/tmp``), so a worker's
memory does not grow with its bucket either.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import sqlite3
import tempfile
from array import array
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from operator import itemgetter
from typing import Any, Optional

import msgspec

from ..errors import PainAspError
from ..models import ORIGINAL

__all__ = ["BatchIndex", "IndexParts", "bucket_count", "bucket_rows", "find_repeats", "identity_hash",
           "index_row", "share_patients"]

_ENCODER = msgspec.msgpack.Encoder()
_PARTS = msgspec.msgpack.Decoder(list[msgspec.Raw])

# Input bytes per bucket: a bucket's part of the index is a fraction of that (about 250
# bytes a claim against some 600 of JSON), so a bucket's task is a few megabytes.
_INPUT_BYTES_PER_BUCKET = 4 << 20
_MAX_BUCKETS = 64


def identity_hash(salt: bytes, text: str) -> bytes:
    """A claim id or patient id as the index keeps it: hashed with the batch's salt."""
    return hashlib.blake2b(text.encode("utf-8"), key=salt, digest_size=16).digest()


def index_row(salt: bytes, number: int, claim_id: str, frequency: int, patient_id: str, place: str,
              services: Optional[bytes]) -> tuple[int, bytes, int, bytes, str, Optional[bytes]]:
    """What a worker keeps of claim ``number`` of the batch: its claim id and patient id hashed
    with the batch's ``salt``; ``services`` None when the claim fails a check of the batch's
    (it then takes part in the claim-id check only)."""
    return number, identity_hash(salt, claim_id), frequency, identity_hash(salt, patient_id), place, services


def bucket_count(input_bytes: int, workers: int) -> int:
    """How many buckets a batch of ``input_bytes`` is indexed in: two tasks a worker at least,
    one for every few megabytes of input, at most 64."""
    return max(2 * workers, min(_MAX_BUCKETS, -(-input_bytes // _INPUT_BYTES_PER_BUCKET)))


def _bucket(digest: bytes, buckets: int) -> int:
    return int.from_bytes(digest[:4], "little") % buckets


class IndexParts(msgspec.Struct, array_like=True):
    """A chunk's index rows sorted into buckets, as a worker sends them: the parts one after the
    other in ``data`` (empty for an empty bucket), the claim-id buckets first, then the patient
    buckets; ``ends[k]`` is where part ``k`` ends."""

    data: bytes
    ends: list[int]


def bucket_rows(rows: Iterable[tuple[int, bytes, int, bytes, str, Optional[bytes]]], buckets: int) -> IndexParts:
    """Sort a chunk's :func:`index_row` rows into ``buckets`` by hashed claim id, and those with
    services into as many by hashed patient id (the index pass, in a worker)."""
    by_id: list[list[Any]] = [[] for _ in range(buckets)]
    by_patient: list[list[Any]] = [[] for _ in range(buckets)]
    for number, claim_id, frequency, patient, place, services in rows:
        patient_bucket = _bucket(patient, buckets)
        by_id[_bucket(claim_id, buckets)].append((number, claim_id, frequency, place, patient_bucket))
        if services is not None:
            by_patient[patient_bucket].append((number, patient, claim_id, frequency, services))
    parts = [_ENCODER.encode(rows) if rows else b"" for rows in by_id + by_patient]
    return IndexParts(b"".join(parts), list(itertools.accumulate(map(len, parts))))


@contextmanager
def _database(schema: str) -> Iterator[sqlite3.Connection]:
    """A private temporary SQLite database; its errors (a full or unwritable temporary folder)
    as a user error."""
    try:
        db = sqlite3.connect("", isolation_level=None)
        try:
            db.executescript("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -4096;"
                             + schema)
            db.execute("BEGIN")
            yield db
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise PainAspError(f"the batch's index could not be kept in the temporary folder "
                           f"(SQLITE_TMPDIR, TMPDIR or /var/tmp): {exc}") from None


def find_repeats(parts: Iterable[bytes], chunk_size: int) -> tuple[list[tuple[int, msgspec.Raw]],
                                                                   list[tuple[int, msgspec.Raw]]]:
    """The repeats among the claims of one claim-id bucket (its ``parts``, a task in a worker):
    by chunk, ``(chunk, [(place in the chunk, where the id was used before)])``, and by patient
    bucket, ``(bucket, [claim number])``, each in input order."""
    with _database("CREATE TABLE claim (number INTEGER PRIMARY KEY, id BLOB, frequency INTEGER, "
                   "place TEXT, bucket INTEGER);") as db:
        for part in parts:
            db.executemany("INSERT INTO claim VALUES (?, ?, ?, ?, ?)", msgspec.msgpack.decode(part))
        db.execute("CREATE INDEX claim_by_id ON claim (id, number)")
        rows = db.execute("SELECT id, number, frequency, place, bucket FROM claim WHERE id IN "
                          "(SELECT id FROM claim GROUP BY id HAVING count(*) > 1) ORDER BY id, number")
        repeats = []
        for _, uses in itertools.groupby(rows, key=itemgetter(0)):
            latest = None  # where the latest use of the id that is not a repeat is
            for _, number, frequency, place, bucket in uses:
                if latest is not None and frequency == ORIGINAL:
                    repeats.append((number, latest, bucket))
                else:
                    latest = place
    repeats.sort()
    by_chunk = [(chunk, msgspec.Raw(_ENCODER.encode([(number - chunk * chunk_size, first)
                                                     for number, first, _ in group])))
                for chunk, group in itertools.groupby(repeats, key=lambda row: row[0] // chunk_size)]
    by_bucket = [(bucket, msgspec.Raw(_ENCODER.encode([row[0] for row in group])))
                 for bucket, group in itertools.groupby(sorted(repeats, key=itemgetter(2, 0)), key=itemgetter(2))]
    return by_chunk, by_bucket


# For each chunk, every claim of the bucket's patients with two claims or more (a void or a
# replacement may still leave one) that have a claim in the chunk, by patient in input order.
_PATIENT_ROWS = """
WITH shared AS (SELECT patient FROM claim GROUP BY patient HAVING count(*) > 1),
     touched AS (SELECT DISTINCT number / ?1 AS chunk, patient FROM claim
                 WHERE patient IN (SELECT patient FROM shared))
SELECT touched.chunk, claim.patient, claim.id, claim.frequency, claim.services
FROM touched JOIN claim INDEXED BY claim_by_patient ON claim.patient = touched.patient
WHERE claim.number NOT IN (SELECT number FROM repeated)
ORDER BY touched.chunk, claim.patient, claim.number
"""


def share_patients(parts: Iterable[bytes], repeated: Iterable[bytes],
                   chunk_size: int) -> list[tuple[int, msgspec.Raw]]:
    """For one patient bucket (its ``parts`` and the numbers of its ``repeated`` claims, a task
    in a worker): ``(chunk, [(patient, claim id, frequency, services)])`` for each chunk with a
    claim of a patient with several claims."""
    with _database("CREATE TABLE claim (number INTEGER PRIMARY KEY, patient BLOB, id BLOB, frequency INTEGER, "
                   "services BLOB); CREATE TABLE repeated (number INTEGER PRIMARY KEY);") as db:
        for part in parts:
            db.executemany("INSERT INTO claim VALUES (?, ?, ?, ?, ?)", msgspec.msgpack.decode(part))
        for part in repeated:
            db.executemany("INSERT INTO repeated VALUES (?)", ((n,) for n in msgspec.msgpack.decode(part)))
        db.execute("CREATE INDEX claim_by_patient ON claim (patient, number)")
        rows = db.execute(_PATIENT_ROWS, (chunk_size,))
        return [(chunk, msgspec.Raw(_ENCODER.encode([row[1:] for row in group])))
                for chunk, group in itertools.groupby(rows, key=itemgetter(0))]


class BatchIndex:
    """The command's side of the index: the parts the workers send, on disk, and the tasks and
    chunk payloads made of them. No part is decoded here (but the repeats of a chunk no
    worker could check, :meth:`first`)."""

    def __init__(self, buckets: int, chunk_size: int, folder: Optional[str] = None) -> None:
        self.salt = os.urandom(16)
        self.buckets = buckets
        self.chunk_size = chunk_size
        # Hashed ids and services: owner-only, without a name (see pain_asp.modes.batch_frames.Spool).
        self._spool = tempfile.TemporaryFile(prefix="pain-asp-index-", dir=folder)
        self._size = 0
        self._parts: dict[tuple[str, int], array] = {}  # (kind, bucket or chunk) -> offset, length, ...

    def _keep(self, kind: str, number: int, data: bytes | memoryview) -> None:
        if not data:
            return
        self._spool.write(data)
        self._parts.setdefault((kind, number), array("q")).extend((self._size, len(data)))
        self._size += len(data)

    def _read(self, kind: str, number: int, drop: bool = True) -> list[msgspec.Raw]:
        spans = self._parts.pop((kind, number), array("q")) if drop else self._parts.get((kind, number), array("q"))
        self._spool.flush()
        fd = self._spool.fileno()
        return [msgspec.Raw(os.pread(fd, spans[k + 1], spans[k])) for k in range(0, len(spans), 2)]

    def add(self, parts: IndexParts) -> None:
        """Keep a chunk's :func:`bucket_rows` parts."""
        data, start = memoryview(parts.data), 0
        for k, end in enumerate(parts.ends):
            kind = "ids" if k < self.buckets else "patients"
            self._keep(kind, k % self.buckets, data[start:end])
            start = end

    def repeat_tasks(self) -> Iterator[tuple[bytes, int]]:
        """The claim-id tasks, one a bucket: payloads for :func:`find_repeats`."""
        for bucket in range(self.buckets):
            yield b"D" + _ENCODER.encode((self.chunk_size, self._read("ids", bucket))), 0

    def add_repeats(self, reply: bytes) -> None:
        """Keep a :func:`find_repeats` reply."""
        by_chunk, by_bucket = msgspec.msgpack.decode(reply, type=tuple[list[tuple[int, msgspec.Raw]],
                                                                       list[tuple[int, msgspec.Raw]]])
        for chunk, part in by_chunk:
            self._keep("repeats", chunk, part)
        for bucket, part in by_bucket:
            self._keep("repeated", bucket, part)

    def patient_tasks(self) -> Iterator[tuple[bytes, int]]:
        """The patient tasks, one a bucket: payloads for :func:`share_patients`."""
        for bucket in range(self.buckets):
            yield b"S" + _ENCODER.encode((self.chunk_size, self._read("patients", bucket),
                                          self._read("repeated", bucket))), 0

    def add_shared(self, reply: bytes) -> None:
        """Keep a :func:`share_patients` reply."""
        for chunk, part in msgspec.msgpack.decode(reply, type=list[tuple[int, msgspec.Raw]]):
            self._keep("rows", chunk, part)

    def chunk(self, number: int) -> tuple[list[msgspec.Raw], list[msgspec.Raw]]:
        """Chunk ``number``'s parts of the repeats (``[(place in the chunk, where the id was
        used before)]`` each) and of its patients' claims (``[(patient, claim id, frequency,
        services)]`` each, by patient in input order), for the check pass."""
        return self._read("repeats", number, drop=False), self._read("rows", number)

    def first(self, number: int) -> Optional[str]:
        """Where an earlier claim used the claim id of claim ``number``, when it repeats one
        (for a chunk no worker checked)."""
        chunk, place = divmod(number, self.chunk_size)
        for part in self._read("repeats", chunk, drop=False):
            for offset, first in msgspec.msgpack.decode(part):
                if offset == place:
                    return first
        return None

    def close(self) -> None:
        self._spool.close()
