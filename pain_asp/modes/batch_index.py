"""The batch's claim-id check and patient index, on disk (docs/scaling.md).

A large JSON Lines or JSON batch is indexed by the workers (:func:`pain_asp.modes.check._with_lines`):
for each claim a worker sends back one :func:`index_row`. The command keeps those rows here,
in SQLite's private temporary database, so its memory does not grow with the batch: SQLite
holds a few megabytes of pages and spills the rest to a file it unlinks as it creates it
(in ``SQLITE_TMPDIR``, ``TMPDIR`` or ``/var/tmp``), which the system frees when the process
ends however it ends; :meth:`BatchIndex.close` frees it at once. No claim id or patient id
is stored: a row holds salted hashes of them (a salt drawn for each batch and never
written), where the claim is ("FILE claim N", for the message of a repeated claim id) and
its encoded services.

The answers are those of the command's in-memory check and index before (the same rules as
:func:`pain_asp.inputs.readers.read_claims` and :class:`pain_asp.modes.check.PatientIndex`):
an original claim whose claim id an earlier claim of the batch used is a *repeat*, told where
the latest earlier claim with that id that was not itself a repeat is (:meth:`BatchIndex.first`),
and its patient's claims do not see it. For each chunk of the check pass,
:meth:`BatchIndex.chunk` gives those repeats and, for the chunk's patients with two claims or
more, the rows of all their claims in input order: the worker rebuilds each such patient's
claims from them (a replacement or void takes the place of the claim with its claim id) and
gives each claim its patient's other claims, so this process does no work per claim.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from operator import itemgetter
from typing import Any, Optional

from ..errors import PainAspError
from ..models import ORIGINAL

__all__ = ["BatchIndex", "identity_hash", "index_row"]


def identity_hash(salt: bytes, text: str) -> bytes:
    """A claim id or patient id as the index keeps it: hashed with the batch's salt."""
    return hashlib.blake2b(text.encode("utf-8"), key=salt, digest_size=16).digest()


def index_row(salt: bytes, number: int, claim_id: str, frequency: int, patient_id: str, place: str,
              services: Optional[bytes]) -> tuple[int, bytes, int, bytes, str, Optional[bytes]]:
    """What a worker sends back for claim ``number`` of the batch: its claim id and patient id
    hashed with the batch's ``salt``; ``services`` None when the claim fails a check of the
    batch's (it then takes part in the claim-id check only)."""
    return number, identity_hash(salt, claim_id), frequency, identity_hash(salt, patient_id), place, services


_SCHEMA = """
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -4096;
CREATE TABLE claim (number INTEGER PRIMARY KEY, id BLOB, frequency INTEGER, patient BLOB,
                    place TEXT, services BLOB);
CREATE TABLE repeated (number INTEGER PRIMARY KEY, first TEXT);
CREATE TABLE shared (patient BLOB PRIMARY KEY) WITHOUT ROWID;
"""

# The claims that enter their patient's claims (with services, not repeats), by patient.
_INDEXED = "CREATE INDEX claim_by_patient ON claim (patient, number) WHERE services IS NOT NULL"
# The patients with two such claims or more (a void or a replacement may still leave one).
_SHARED = ("INSERT INTO shared SELECT patient FROM claim INDEXED BY claim_by_patient "
           "WHERE services IS NOT NULL GROUP BY patient HAVING count(*) > 1")

# The claims of the shared patients of the claims numbered start..stop, by patient, in input order.
_PATIENT_ROWS = """
SELECT patient, id, frequency, services FROM claim INDEXED BY claim_by_patient
WHERE patient IN (SELECT c.patient FROM claim AS c JOIN shared USING (patient)
                  WHERE c.number BETWEEN ?1 AND ?2)
  AND services IS NOT NULL AND number NOT IN (SELECT number FROM repeated)
ORDER BY patient, number
"""


@contextmanager
def _written() -> Iterator[None]:
    """SQLite's errors (a full or unwritable temporary folder) as a user error."""
    try:
        yield
    except sqlite3.Error as exc:
        raise PainAspError(f"the batch's index could not be kept in the temporary folder "
                           f"(SQLITE_TMPDIR, TMPDIR or /var/tmp): {exc}") from None


class BatchIndex:
    """The claim-id check and patient index of one batch, in a temporary SQLite database.

    :meth:`add` the workers' rows as they come (any order of chunks), :meth:`finish` once
    all are in, then :meth:`chunk` for each chunk of the check pass."""

    def __init__(self) -> None:
        self.salt = os.urandom(16)
        self._db = sqlite3.connect("", isolation_level=None)
        self._db.executescript(_SCHEMA)
        self._db.execute("BEGIN")  # one transaction: nothing here needs to outlive the batch

    def add(self, rows: Iterable[Any]) -> None:
        """Keep the :func:`index_row` rows of a chunk."""
        with _written():
            self._db.executemany("INSERT INTO claim VALUES (?, ?, ?, ?, ?, ?)", rows)

    def finish(self) -> None:
        """Find the repeated claim ids and the patients with several claims (after the last :meth:`add`)."""
        with _written():
            db = self._db
            db.execute("CREATE INDEX claim_by_id ON claim (id)")
            rows = db.execute("SELECT id, number, frequency, place FROM claim WHERE id IN "
                              "(SELECT id FROM claim GROUP BY id HAVING count(*) > 1) ORDER BY id, number")
            repeats = []
            for _, uses in itertools.groupby(rows, key=itemgetter(0)):
                latest = None  # where the latest use of the id that is not a repeat is
                for _, number, frequency, place in uses:
                    if latest is not None and frequency == ORIGINAL:
                        repeats.append((number, latest))
                    else:
                        latest = place
            db.executemany("INSERT INTO repeated VALUES (?, ?)", repeats)
            db.execute(_INDEXED)
            db.execute(_SHARED)

    def first(self, number: int) -> Optional[str]:
        """Where an earlier claim used the claim id of claim ``number``, when it repeats one."""
        with _written():
            row = self._db.execute("SELECT first FROM repeated WHERE number = ?", (number,)).fetchone()
            return row[0] if row else None

    def chunk(self, start: int, stop: int) -> tuple[list[tuple[int, str]], list[tuple[bytes, bytes, int, bytes]]]:
        """For the claims numbered ``start`` to ``stop - 1``: the repeats, as ``(number - start,
        where the claim id was used before)``, and ``(patient, claim id, frequency, services)``
        of every claim of their patients with several claims, by patient in input order."""
        with _written():
            db = self._db
            repeats = db.execute("SELECT number - ?1, first FROM repeated WHERE number BETWEEN ?1 AND ?2",
                                 (start, stop - 1)).fetchall()
            return repeats, db.execute(_PATIENT_ROWS, (start, stop - 1)).fetchall()

    def close(self) -> None:
        self._db.close()
