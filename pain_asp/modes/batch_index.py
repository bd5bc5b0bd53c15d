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

* an original claim whose claim id an earlier claim of the batch used is a *repeat*: it is
  told where the latest earlier claim with that id that was not itself a repeat is, and
  its patient's claims do not see it;
* every other claim with services enters its patient's claims; a replacement or void takes
  the place of the patient's earlier claim with its claim id, and a void leaves nothing;
* a claim whose patient holds two claims or more is sent its patient's other claims (those
  with another claim id), in input order.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import sqlite3
from collections.abc import Iterable
from operator import itemgetter
from typing import Any, Optional

from ..models import ORIGINAL, VOID

__all__ = ["BatchIndex", "index_row"]


def _hash(salt: bytes, text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), key=salt, digest_size=16).digest()


def index_row(salt: bytes, number: int, claim_id: str, frequency: int, patient_id: str, place: str,
              services: Optional[bytes]) -> tuple[int, bytes, int, bytes, str, Optional[bytes]]:
    """What a worker sends back for claim ``number`` of the batch: its claim id and patient id
    hashed with the batch's ``salt``; ``services`` None when the claim fails a check of the
    batch's (it then takes part in the claim-id check only)."""
    return number, _hash(salt, claim_id), frequency, _hash(salt, patient_id), place, services


_SCHEMA = """
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -4096;
CREATE TABLE claim (number INTEGER PRIMARY KEY, id BLOB, frequency INTEGER, patient BLOB,
                    place TEXT, services BLOB);
CREATE TABLE repeated (number INTEGER PRIMARY KEY, first TEXT);
CREATE TABLE held (patient BLOB, number INTEGER, id BLOB, services BLOB);
"""

# The claims each patient holds at the end (the last of each claim id, unless a void), kept
# only for patients with two or more.
_HELD = (f"""
INSERT INTO held
SELECT c.patient, c.number, c.id, c.services
FROM (SELECT max(number) AS number FROM claim
      WHERE services IS NOT NULL AND number NOT IN (SELECT number FROM repeated)
      GROUP BY patient, id) AS last
JOIN claim AS c ON c.number = last.number
WHERE c.frequency != {VOID}""",
         "DELETE FROM held WHERE patient IN (SELECT patient FROM held GROUP BY patient HAVING count(*) = 1)",
         "CREATE INDEX held_by_patient ON held (patient, number)")

# For the claims numbered start..stop: the services of their patients' other claims, in order.
_OTHERS = """
SELECT c.number, h.services FROM claim AS c JOIN held AS h ON h.patient = c.patient
WHERE c.number BETWEEN ? AND ? AND c.services IS NOT NULL AND h.id != c.id
  AND c.number NOT IN (SELECT number FROM repeated)
ORDER BY c.number, h.number
"""


class BatchIndex:
    """The claim-id check and patient index of one batch, in a temporary SQLite database.

    :meth:`add` the workers' rows as they come (any order of chunks), :meth:`finish` once
    all are in, then :meth:`extras` for each chunk of the check pass."""

    def __init__(self) -> None:
        self.salt = os.urandom(16)
        self._db = sqlite3.connect("", isolation_level=None)
        self._db.executescript(_SCHEMA)
        self._db.execute("BEGIN")  # one transaction: nothing here needs to outlive the batch

    def add(self, rows: Iterable[Any]) -> None:
        """Keep the :func:`index_row` rows of a chunk."""
        self._db.executemany("INSERT INTO claim VALUES (?, ?, ?, ?, ?, ?)", rows)

    def finish(self) -> None:
        """Find the repeated claim ids and each patient's claims (after the last :meth:`add`)."""
        db = self._db
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
        for statement in _HELD:
            db.execute(statement)

    def first(self, number: int) -> Optional[str]:
        """Where an earlier claim used the claim id of claim ``number``, when it repeats one."""
        row = self._db.execute("SELECT first FROM repeated WHERE number = ?", (number,)).fetchone()
        return row[0] if row else None

    def extras(self, start: int, stop: int) -> list[tuple[int, Optional[str], Optional[list[bytes]]]]:
        """For the claims numbered ``start`` to ``stop - 1`` that need them, in order:
        ``(number - start, where its claim id was used before, its patient's other claims)``."""
        db = self._db
        found: dict[int, list[Any]] = {}
        for number, first in db.execute("SELECT number, first FROM repeated WHERE number BETWEEN ? AND ?",
                                        (start, stop - 1)):
            found[number] = [first, None]
        for number, rows in itertools.groupby(db.execute(_OTHERS, (start, stop - 1)), key=itemgetter(0)):
            found.setdefault(number, [None, None])[1] = [services for _, services in rows]
        return [(number - start, first, others) for number, (first, others) in sorted(found.items())]

    def close(self) -> None:
        self._db.close()
