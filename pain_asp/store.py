"""The patient history store: earlier services in one SQLite file (docs/architecture.md).

``pain-asp history add`` records checked claims here; ``check --history DB`` reads a
patient's earlier services back through :func:`store_history`; ``history forget`` erases a
patient.

What the file holds, and what it does not
-----------------------------------------
* One row per service line: the date (as the knowledge base's day number and as ISO text),
  code, modifiers, units, the documented results the history rules read (purpose, relief
  percentage and duration, levels, side), the claim it came from (its claim id and first
  date of service) and when it was imported.
* **No patient identifier in clear.** Each row carries ``HMAC-SHA256(salt, patient id)``,
  where ``salt`` is 32 random bytes made when the database is created and kept in its
  ``meta`` table. Looking a patient up needs the id; reading the file shows only keys, and
  the same id gives different keys in different databases. This is pseudonymisation, not
  encryption: the salt is in the same file, so someone holding the file and a candidate id
  can test whether that patient is in it. Dates of service are still PHI, so the file is
  created readable and writable by its owner only (mode 0600, set before anything is
  written) and must be kept like any other PHI store. SQLite gives the ``-wal`` and
  ``-shm`` files beside it the same mode. Birth dates and names are never stored.
* ``forget`` deletes the patient's rows with SQLite's ``secure_delete`` on (freed pages
  are overwritten with zeros) and checkpoints the write-ahead log, so the deleted rows do
  not linger in the file.

Reliability
-----------
* Write-ahead logging (WAL): readers never block the writer and always see the state
  before or after a commit, never a half-written import.
* :meth:`HistoryStore.add_claims` writes a whole batch in one transaction; an error
  anywhere in it rolls everything back. A stored claim is the rows of one patient and
  claim id with one ``claim_day`` (the claim's first date of service when it was added).
  A claim that is :func:`pain_asp.history.same_claim` as a stored one (same patient, same
  claim id, a date of service in common) replaces its rows (a corrected claim supersedes
  the original), so importing a file twice is harmless, while the same claim id with
  another patient or on other dates is another claim (practice systems number claims per
  batch); it is kept, with a warning.
* A database of an earlier schema version is upgraded when it is opened (version 1 keyed
  claims by claim id alone; its claims get their first date of service from their rows).
* A replacement (claim frequency 7) replaces the patient's stored claim with its claim id,
  whatever its dates, and a void (8) deletes it and records nothing.
* Errors the user can act on (a path that cannot be opened, a file that is not a pain-asp
  history database, a read-only file) are :class:`~pain_asp.errors.PainAspError` with the
  path and what went wrong; they never name a patient.
* Rows read back are validated as :class:`~pain_asp.models.HistoryEntry` again before they
  reach the knowledge base, so an edited file cannot inject anything into the facts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import random
import secrets
import sqlite3
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from msgspec import ValidationError

from .errors import PainAspError
from .facts import day_number, from_day_number
from .history import ClaimKey, claim_key, claim_services, same_claim
from .models import ORIGINAL, VOID, Claim, HistoryEntry, parse_history_entry

__all__ = ["SCHEMA_VERSION", "Adjudicated", "HistoryStore", "Recorded", "bench_lookup", "store_history"]

#: Version of the table layout written by this module (1: claims keyed by claim id alone;
#: 2: by patient, claim id and dates of service; ``claim_day`` tells stored claims apart;
#: 3: each service's adjudication from the payer's 835, and the rules' observed precision).
SCHEMA_VERSION = 3

#: ``PRAGMA application_id`` of a pain-asp history database ("pAsp").
APPLICATION_ID = 0x70417370

_SALT_BYTES = 32
_BUSY_TIMEOUT_S = 30.0

# Each comparison's counts per rule and payer (remit --record), for rules list --remit-stats.
_REMIT_STATS = """
CREATE TABLE remit_stats (
    comparison  TEXT    NOT NULL,
    rule        TEXT    NOT NULL,
    payer       TEXT    NOT NULL,
    predicted   INTEGER NOT NULL,
    confirmed   INTEGER NOT NULL,
    false_alarm INTEGER NOT NULL,
    carc_agreed INTEGER NOT NULL,
    recorded_at TEXT    NOT NULL,
    PRIMARY KEY (comparison, rule, payer)
) WITHOUT ROWID
"""

_SCHEMA = """
CREATE TABLE schema_version (
    version    INTEGER NOT NULL,
    applied_at TEXT    NOT NULL
);
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE services (
    id                     INTEGER PRIMARY KEY,
    patient_key            BLOB    NOT NULL,
    day                    INTEGER NOT NULL,
    date                   TEXT    NOT NULL,
    code                   TEXT    NOT NULL,
    modifiers              TEXT    NOT NULL,
    units                  INTEGER NOT NULL,
    purpose                TEXT,
    relief_pct             INTEGER,
    relief_duration_months INTEGER,
    levels                 TEXT,
    side                   TEXT,
    claim_id               TEXT    NOT NULL,
    imported_at            TEXT    NOT NULL,
    claim_day              INTEGER NOT NULL,
    outcome                TEXT
);
CREATE INDEX services_patient_day ON services (patient_key, day);
CREATE INDEX services_claim ON services (claim_id);
""" + _REMIT_STATS

_COLUMNS = (
    "patient_key, day, date, code, modifiers, units, purpose, relief_pct, "
    "relief_duration_months, levels, side, claim_id, imported_at, claim_day"
)
_INSERT = f"INSERT INTO services ({_COLUMNS}) VALUES ({', '.join('?' * 14)})"

# Version 1 to 2: each stored claim (one claim id, one patient: version 1 replaced by claim
# id) learns its first date of service from its rows.
_MIGRATE_FROM_1 = """
ALTER TABLE services ADD COLUMN claim_day INTEGER NOT NULL DEFAULT 0;
UPDATE services SET claim_day = (SELECT min(s.day) FROM services AS s
                                 WHERE s.claim_id = services.claim_id
                                 AND s.patient_key = services.patient_key)
"""
# Version 2 to 3: services learn their adjudication (none yet), and the rules' observed
# precision gets its table.
_MIGRATE_FROM_2 = "ALTER TABLE services ADD COLUMN outcome TEXT;" + _REMIT_STATS
_MIGRATIONS = {1: _MIGRATE_FROM_1, 2: _MIGRATE_FROM_2}

#: What the payer did with a stored service (``services.outcome``; NULL: not adjudicated yet).
PAID, DENIED, REVERSED = "paid", "denied", "reversed"
_SELECT = (
    "SELECT id, date, code, modifiers, units, purpose, relief_pct, relief_duration_months, "
    "levels, side, claim_id, imported_at, outcome FROM services"
)

Row = tuple[object, ...]


@dataclass
class Recorded:
    """What :meth:`HistoryStore.add_claims` did: service rows written, claims new to the store,
    claims that replaced the same claim stored before, and warnings (claim ids that came back
    with another patient or on other dates of service; they name no patient)."""

    services: int = 0
    added: int = 0
    replaced: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass
class Adjudicated:
    """What :meth:`HistoryStore.record_adjudications` marked: services paid, denied and
    reversed, remitted lines with no stored service, and remitted claims not in the store or
    matching more than one stored claim (claim ids, no patient)."""

    paid: int = 0
    denied: int = 0
    reversed: int = 0
    lines_not_found: int = 0
    not_stored: list[str] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)


class HistoryStore:
    """A patient history database in one SQLite file.

    ``HistoryStore(path)`` opens the database, creating it (mode 0600) when the file does not
    exist; with ``create=False`` a missing file is an error instead, which suits readers
    such as ``check --history`` where a mistyped path should not silently mean "no
    history". One instance may be shared by threads (calls are serialised); separate
    instances, in threads or processes, may read while another writes.
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        created = self._prepare_file(create)
        try:
            self._conn = sqlite3.connect(
                str(self.path), timeout=_BUSY_TIMEOUT_S, isolation_level=None,
                check_same_thread=False,
            )
            self._conn.execute("PRAGMA secure_delete = ON")
            self._conn.execute("PRAGMA synchronous = FULL")
            self._initialise(created)
            self._salt = self._read_salt()
        except sqlite3.Error as exc:
            self._close_quietly()
            if getattr(exc, "sqlite_errorname", "") == "SQLITE_NOTADB":
                raise PainAspError(f"{self.path}: is not a pain-asp history database") from None
            raise self._error("cannot be opened", exc) from None
        except PainAspError:
            self._close_quietly()
            raise

    # -- opening ----------------------------------------------------------------------

    def _prepare_file(self, create: bool) -> bool:
        """Create the file with mode 0600 if it is missing; True if it is new (empty)."""
        if self.path.is_dir():
            raise PainAspError(f"{self.path}: is a folder; expected a history database file")
        if not create and not self.path.exists():
            raise PainAspError(f"{self.path}: no such history database")
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            try:
                size = self.path.stat().st_size
            except OSError as exc:
                raise self._error("cannot be opened", exc) from None
            if size == 0:
                # An empty file (e.g. from mktemp) becomes a new database: tighten it first.
                self._owner_only()
            return size == 0
        except OSError as exc:
            raise self._error("cannot be created", exc) from None
        else:
            try:
                os.fchmod(fd, 0o600)  # the umask may only remove bits; make it exact
            finally:
                os.close(fd)
            return True

    def _owner_only(self) -> None:
        try:
            os.chmod(self.path, 0o600)
        except OSError as exc:
            raise self._error("cannot be made private (chmod 0600)", exc) from None

    def _initialise(self, created: bool) -> None:
        conn = self._connection()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            if not created:
                self._owner_only()
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Another process may have initialised the file while we waited for the lock.
                if conn.execute("SELECT 1 FROM sqlite_master WHERE name='meta'").fetchone() is None:
                    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute("INSERT INTO schema_version VALUES (?, ?)",
                                 (SCHEMA_VERSION, _now()))
                    conn.execute("INSERT INTO meta VALUES ('salt', ?)",
                                 (secrets.token_bytes(_SALT_BYTES),))
                    conn.execute("INSERT INTO meta VALUES ('format', 'pain-asp history')")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        if app_id != APPLICATION_ID or not {"schema_version", "meta", "services"} <= _tables(conn):
            raise PainAspError(f"{self.path}: is not a pain-asp history database")
        version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
        if version in _MIGRATIONS:
            self._migrate(conn, version)
            version = SCHEMA_VERSION
        if version != SCHEMA_VERSION:
            raise PainAspError(
                f"{self.path}: history database schema version {version}; this pain-asp "
                f"reads version {SCHEMA_VERSION}"
            )
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")

    def _migrate(self, conn: sqlite3.Connection, version: int) -> None:
        """Upgrade a database of an earlier version, step by step, in one transaction
        (nothing changes if it fails)."""
        failed = (f"of schema version {version} cannot be upgraded to version {SCHEMA_VERSION} "
                  "(it needs write access once)")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._error(failed, exc) from None
        try:
            # Another process may have upgraded the file while we waited for the lock.
            current = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
            while current in _MIGRATIONS:
                for statement in _MIGRATIONS[current].split(";"):
                    conn.execute(statement)
                current += 1
                conn.execute("INSERT INTO schema_version VALUES (?, ?)", (current, _now()))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise self._error(failed, exc) from None

    def _same_stored_claims(self, conn: sqlite3.Connection, claim: Claim) -> list[int]:
        """The ``claim_day`` of every stored claim that is :func:`~pain_asp.history.same_claim`
        as ``claim`` (the patient is matched by its keyed hash)."""
        key = claim_key(claim)
        dates: dict[int, set[dt.date]] = {}
        for claim_day, day in conn.execute(
                "SELECT claim_day, day FROM services WHERE claim_id = ? AND patient_key = ?",
                (key.claim_id, self.patient_key(key.patient_id))):
            dates.setdefault(claim_day, set()).add(from_day_number(day))
        return sorted(claim_day for claim_day, days in dates.items()
                      if same_claim(key, ClaimKey(key.patient_id, key.claim_id, frozenset(days))))

    def _read_salt(self) -> bytes:
        row = self._connection().execute("SELECT value FROM meta WHERE key='salt'").fetchone()
        if row is None or not isinstance(row[0], bytes) or len(row[0]) < 16:
            raise PainAspError(f"{self.path}: history database has no valid salt in its meta table")
        return row[0]

    # -- helpers ------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise PainAspError(f"{self.path}: history database is closed")
        return self._conn

    def _error(self, what: str, exc: BaseException) -> PainAspError:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return PainAspError(f"{self.path}: history database {what} ({reason})")

    def _close_quietly(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def patient_key(self, patient_id: str) -> bytes:
        """The keyed hash that stands for ``patient_id`` in this database."""
        return hmac.new(self._salt, str(patient_id).strip().encode("utf-8"),
                        hashlib.sha256).digest()

    @contextmanager
    def _transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed entirely, or rolled back entirely on any error."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._error(f"cannot {what}", exc) from None
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._error(f"cannot {what}", exc) from None
                raise

    def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[Row]:
        with self._lock:
            try:
                return self._connection().execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._error("cannot be read", exc) from None

    # -- writing ------------------------------------------------------------------------

    def add_claims(self, claims: Iterable[Claim]) -> Recorded:
        """Record every line of every claim in one transaction; says what was recorded.

        An original that is :func:`~pain_asp.history.same_claim` as a stored claim replaces
        its rows (a corrected claim supersedes the original; within one batch the later copy
        wins). A new claim whose id the store already holds for another patient or on other
        dates of service is kept beside it, with a warning. A replacement or void replaces or
        removes the patient's claim with its claim id (:func:`_remove_replaced`). If anything fails,
        including the iteration over ``claims``, nothing is written and the error propagates.
        """
        imported = _now()
        out = Recorded()
        with self._transaction("record claims") as conn:
            for claim in claims:
                key, claim_id = self.patient_key(claim.patient.id), claim.claim_id
                rows = [_service_row(key, entry, claim_id, imported, day_number(claim.first_day))
                        for entry in claim_services(claim)]
                if claim.frequency == ORIGINAL:
                    same = self._same_stored_claims(conn, claim)
                    if same:
                        conn.executemany(
                            "DELETE FROM services WHERE claim_id = ? AND patient_key = ? AND claim_day = ?",
                            [(claim_id, key, claim_day) for claim_day in same])
                        out.replaced += 1
                    else:
                        out.added += 1
                        out.warnings.extend(_reused_id_warnings(conn, key, claim_id))
                else:
                    if _remove_replaced(conn, key, claim):
                        out.replaced += 1
                    else:
                        out.added += 1
                    if claim.frequency == VOID:
                        continue
                conn.executemany(_INSERT, rows)
                out.services += len(rows)
        return out

    def record_adjudications(self, standing: Iterable[Any], reversed_claims: Iterable[Any]) -> Adjudicated:
        """Mark stored services with what the payer did, from its 835s (:mod:`pain_asp.modes.remit`).

        ``standing`` are the last adjudications of claims (:class:`~pain_asp.inputs.era.RemitClaim`),
        ``reversed_claims`` the claims whose payment was reversed or voided. A remitted claim
        matches the stored claim with its claim id and a date of service in common; the
        remittance names no patient pain-asp can use (it never reads member ids), so when that
        is more than one stored claim nothing is marked and the claim is reported. Its lines
        match stored services by code and date: ``paid`` or ``denied`` (a claim adjudicated
        without lines gives its outcome to every service of the claim). A reversed claim's
        services become ``reversed``, and reversed services are never read back as history.
        """
        out = Adjudicated()
        with self._transaction("record adjudications") as conn:
            for claim, reversed_ in [*((c, False) for c in standing), *((c, True) for c in reversed_claims)]:
                target = self._remitted_claim(conn, claim, out)
                if target is None:
                    continue
                rows = conn.execute("SELECT id, date, code FROM services WHERE claim_id = ? AND patient_key = ? "
                                    "AND claim_day = ? ORDER BY id", (claim.claim_id, *target)).fetchall()
                if reversed_ or not claim.lines:
                    outcome = REVERSED if reversed_ else (DENIED if claim.denied else PAID)
                    marks = [(outcome, rid) for rid, _, _ in rows]
                else:
                    free = list(rows)
                    marks = []
                    for line in claim.lines:
                        day = line.date.isoformat() if line.date else None
                        match = next((r for r in free if r[2] == line.code and (day is None or r[1] == day)), None)
                        if match is None:
                            out.lines_not_found += 1
                            continue
                        free.remove(match)
                        marks.append((DENIED if line.denied else PAID, match[0]))
                conn.executemany("UPDATE services SET outcome = ? WHERE id = ?", marks)
                for outcome, _ in marks:
                    setattr(out, outcome, getattr(out, outcome) + 1)
        return out

    def _remitted_claim(self, conn: sqlite3.Connection, claim: Any, out: Adjudicated) -> tuple[bytes, int] | None:
        """(patient key, claim day) of the one stored claim a remitted claim is, else None."""
        days = {line.date.isoformat() for line in claim.lines if line.date} or (
            {claim.service_date.isoformat()} if claim.service_date else set())
        found = {(key, claim_day) for key, claim_day, date in conn.execute(
            "SELECT patient_key, claim_day, date FROM services WHERE claim_id = ?", (claim.claim_id,))
            if not days or date in days}
        if len(found) == 1:
            return found.pop()
        if found:
            out.ambiguous.append(claim.claim_id)
        else:
            out.not_stored.append(claim.claim_id)
        return None

    def record_rule_precision(self, comparison: str, counts: Mapping[tuple[str, str], Any]) -> None:
        """Keep one comparison's per-rule, per-payer counts (``remit --record``); recording the
        same comparison again (same remittances and results) replaces it."""
        now = _now()
        with self._transaction("record rule precision") as conn:
            conn.execute("DELETE FROM remit_stats WHERE comparison = ?", (comparison,))
            conn.executemany("INSERT INTO remit_stats VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [
                (comparison, rule, payer, c.predicted_denied, c.confirmed, c.false_alarm, c.carc_agreed, now)
                for (rule, payer), c in sorted(counts.items())])

    def rule_precision(self) -> dict[tuple[str, str], tuple[int, int, int, int]]:
        """(rule, payer) -> (predicted, confirmed, false alarms, CARC agreed), over every
        recorded comparison."""
        return {(rule, payer): (p, c, f, a) for rule, payer, p, c, f, a in self._query(
            "SELECT rule, payer, sum(predicted), sum(confirmed), sum(false_alarm), sum(carc_agreed) "
            "FROM remit_stats GROUP BY rule, payer ORDER BY rule, payer", ())}

    def forget(self, patient_id: str) -> int:
        """Delete every row of the patient; returns how many were deleted.

        Freed pages are zeroed (``secure_delete``) and the write-ahead log is checkpointed
        so the deleted services are gone from the files, not just unlinked (a reader
        holding an older snapshot at that moment delays the log's reset to a later commit).
        """
        with self._transaction("forget a patient") as conn:
            deleted = conn.execute("DELETE FROM services WHERE patient_key = ?",
                                   (self.patient_key(patient_id),)).rowcount
        with self._lock:
            try:
                self._connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                raise self._error("cannot be checkpointed after forgetting a patient",
                                  exc) from None
        return deleted

    # -- reading ------------------------------------------------------------------------

    def _rows(self, patient_id: str, before: dt.date | None, window_days: int | None,
              exclude_claim: Claim | None = None, replaced: Collection[str] = ()) -> list[Row]:
        if window_days is not None:
            if before is None:
                raise ValueError("window_days needs a 'before' date to count back from")
            if window_days < 0:
                raise ValueError("window_days must be 0 or more")
        sql = _SELECT + f" WHERE patient_key = ? AND (outcome IS NULL OR outcome <> '{REVERSED}')"
        params: list[object] = [self.patient_key(patient_id)]
        if before is not None:
            sql += " AND day <= ?"
            params.append(day_number(before))
            if window_days is not None:
                sql += " AND day >= ?"
                params.append(day_number(before) - window_days)
        if exclude_claim is not None:
            with self._lock:
                try:
                    same = self._same_stored_claims(self._connection(), exclude_claim)
                except sqlite3.Error as exc:
                    raise self._error("cannot be read", exc) from None
            if same:
                sql += f" AND NOT (claim_id = ? AND claim_day IN ({', '.join('?' * len(same))}))"
                params.extend([exclude_claim.claim_id, *same])
        if replaced:  # claims a replacement or void of the batch takes the place of
            sql += f" AND claim_id NOT IN ({', '.join('?' * len(replaced))})"
            params.extend(replaced)
        sql += " ORDER BY day, code, id"
        return self._query(sql, tuple(params))

    def services(self, patient_id: str, before: dt.date | None = None,
                 window_days: int | None = None) -> list[HistoryEntry]:
        """The patient's stored services, sorted by date (then code).

        ``before`` keeps services dated on or before that date; ``window_days`` (needs
        ``before``) also drops those more than that many days earlier, so the range is
        ``before - window_days <= date <= before``, both ends included. 730 days covers
        every rolling-window rule.
        """
        return [self._entry(row) for row in self._rows(patient_id, before, window_days)]

    def _entry(self, row: Row) -> HistoryEntry:
        (rid, date, code, modifiers, units, purpose, relief_pct, relief_months,
         levels, side, _claim, _imported, outcome) = row
        try:
            return parse_history_entry({
                "date": date, "code": code, "modifiers": json.loads(str(modifiers)), "units": units,
                "purpose": purpose, "relief_pct": relief_pct, "relief_duration_months": relief_months,
                "levels": json.loads(str(levels)) if levels is not None else None, "side": side,
                "outcome": outcome,
            })
        except (ValidationError, ValueError, TypeError):
            raise PainAspError(
                f"{self.path}: stored service row {rid} is not a valid service "
                "(the database was edited outside pain-asp)"
            ) from None

    def show(self, patient_id: str) -> list[dict[str, object]]:
        """Every stored row of the patient as JSON-ready dicts, sorted by date.

        The patient id itself is not stored, so it is not in the output either.
        """
        out = []
        for row in self._rows(patient_id, None, None):
            (rid, date, code, modifiers, units, purpose, relief_pct, relief_months,
             levels, side, claim_id, imported, outcome) = row
            out.append({
                "date": date, "code": code, "modifiers": json.loads(str(modifiers)),
                "units": units, "purpose": purpose, "relief_pct": relief_pct,
                "relief_duration_months": relief_months,
                "levels": json.loads(str(levels)) if levels is not None else None,
                "side": side, "claim_id": claim_id, "imported_at": imported, "outcome": outcome,
            })
        return out

    def count(self) -> int:
        """How many services the store holds (all patients)."""
        return int(self._query("SELECT count(*) FROM services")[0][0])

    # -- life cycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Close the database (idempotent)."""
        with self._lock:
            self._close_quietly()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HistoryStore({str(self.path)!r})"


def _remove_replaced(conn: sqlite3.Connection, key: bytes, claim: Claim) -> bool:
    """Delete the stored rows that a replacement or void takes the place of, before it is
    recorded; says whether there were any.

    A replacement (frequency 7) or a void (8) carries the claim id of the claim it replaces:
    every stored row of that patient and claim id goes, whatever its date of service (a
    replacement may correct the date); a void then records nothing. (An original replaces
    only the same claim: :meth:`HistoryStore._same_stored_claims`.)
    """
    return conn.execute("DELETE FROM services WHERE patient_key = ? AND claim_id = ?",
                        (key, claim.claim_id)).rowcount > 0


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _reused_id_warnings(conn: sqlite3.Connection, key: bytes, claim_id: str) -> list[str]:
    """Warnings for a claim new to the store whose id is already stored for another claim."""
    same_patient = {bool(same) for (same,) in conn.execute(
        "SELECT DISTINCT patient_key = ? FROM services WHERE claim_id = ?", (key, claim_id))}
    out = []
    if False in same_patient:
        out.append(f"claim {claim_id}: the store already holds a claim {claim_id} of another "
                   "patient; both are kept")
    if True in same_patient:
        out.append(f"claim {claim_id}: the store already holds a claim {claim_id} of this "
                   "patient on other dates of service; both are kept")
    return out


def _service_row(key: bytes, entry: HistoryEntry, claim_id: str, imported: str,
                 claim_day: int) -> Row:
    return (
        key, day_number(entry.date), entry.date.isoformat(), entry.code,
        json.dumps(list(entry.modifiers)), entry.units, entry.purpose, entry.relief_pct,
        entry.relief_duration_months,
        json.dumps(list(entry.levels)) if entry.levels is not None else None,
        entry.side, claim_id, imported, claim_day,
    )


# -- the provider the engine uses -----------------------------------------------------------

HistoryProvider = Callable[[Claim], list[HistoryEntry]]


def _dedupe_key(entry: HistoryEntry) -> tuple[dt.date, str, tuple[str, ...]]:
    return (entry.date, entry.code, tuple(sorted(entry.modifiers)))


def _merge(sources: Iterable[list[HistoryEntry]]) -> list[HistoryEntry]:
    """Merge sources so a service seen in several of them counts once.

    For each (date, code, modifiers) the result holds as many entries as the source that
    has the most of them (two identical lines on one claim stay two), taken from the
    earliest source first: the claim's own history, then ``base``, then the store.
    """
    taken: Counter[tuple[dt.date, str, tuple[str, ...]]] = Counter()
    out: list[HistoryEntry] = []
    for source in sources:
        seen: Counter[tuple[dt.date, str, tuple[str, ...]]] = Counter()
        before = Counter(taken)
        for entry in source:
            key = _dedupe_key(entry)
            seen[key] += 1
            if seen[key] > before[key]:
                out.append(entry)
                taken[key] += 1
    out.sort(key=lambda e: (e.date, e.code))
    return out


class StoreHistory:
    """A history provider backed by a :class:`HistoryStore` (see :func:`store_history`)."""

    def __init__(self, store: HistoryStore, base: HistoryProvider | None = None,
                 window_days: int | None = None) -> None:
        self.store, self.base, self.window_days = store, base, window_days

    def __call__(self, claim: Claim) -> list[HistoryEntry]:
        first_day = claim.first_day
        replaced = getattr(self.base, "replaced_ids", None)
        rows = self.store._rows(claim.patient.id, first_day, self.window_days, exclude_claim=claim,
                                replaced=sorted(replaced(claim.patient.id)) if replaced else ())
        stored = [self.store._entry(row) for row in rows]
        sources = [list(claim.history)]
        if self.base is not None:
            sources.append(self.base(claim))
        sources.append(stored)
        return _merge(sources)

    def replacing(self, replacements: Mapping[int, Claim]) -> StoreHistory:
        """The same store over the batch with claims replaced (see
        :meth:`pain_asp.history.BatchHistory.replacing`; a base without batch claims stays)."""
        replace = getattr(self.base, "replacing", None)
        return StoreHistory(self.store, replace(replacements) if replace else self.base, self.window_days)


def store_history(store: HistoryStore, base: HistoryProvider | None = None,
                  window_days: int | None = None) -> StoreHistory:
    """A history provider for :meth:`pain_asp.engine.Checker.check` backed by ``store``.

    For a claim it merges the claim's own ``history``, ``base(claim)`` if given (e.g.
    :func:`pain_asp.history.batch_history`), and the store's services of the patient dated
    on or before the claim's first date of service, leaving out the rows of a stored claim
    that is this claim (:func:`pain_asp.history.same_claim`: a re-check of an imported
    claim, or of its correction, must not see itself). A service present
    in several sources counts once (same date, code and modifiers). ``window_days`` limits
    how far back the store is read (None: all of it).
    """
    return StoreHistory(store, base, window_days)


# -- benchmark --------------------------------------------------------------------------

_BENCH_CODES = ("62321", "62323", "64483", "64484", "64490", "64493", "64494", "64633",
                "64635", "64636", "20552", "20553", "27096", "64451", "64454", "99214")


def bench_lookup(n_services: int, n_patients: int, lookups: int,
                 window_days: int = 730, seed: int = 7) -> dict[str, float | int]:
    """Time ``services(patient, before, window_days)`` on a generated store.

    Fills a temporary database with ``n_services`` services spread over ``n_patients``
    patients and five years (one ``executemany`` in one transaction), then looks up
    ``lookups`` random patients at random dates. Returns sizes, fill time, and the mean,
    p95 and max lookup time in milliseconds (each lookup includes building and validating
    the ``HistoryEntry`` objects).
    """
    if n_services < 1 or n_patients < 1 or lookups < 1:
        raise ValueError("n_services, n_patients and lookups must be at least 1")
    rng = random.Random(seed)
    start_day = day_number(dt.date(2021, 1, 1))
    span = 5 * 365
    with tempfile.TemporaryDirectory(prefix="pain-asp-bench-") as folder:
        path = Path(folder) / "history.db"
        with HistoryStore(path) as store:
            keys = [store.patient_key(f"BENCH-{p}") for p in range(n_patients)]
            imported = _now()

            def rows() -> Iterator[Row]:
                for i in range(n_services):
                    day = start_day + rng.randrange(span)
                    date = dt.date.fromordinal(day)
                    yield (keys[rng.randrange(n_patients)], day, date.isoformat(),
                           rng.choice(_BENCH_CODES),
                           json.dumps(rng.choice([[], ["50"], ["RT"], ["LT"]])),
                           1, rng.choice([None, "diagnostic", "therapeutic"]),
                           rng.choice([None, 50, 80]), None, json.dumps(["L4-L5"]),
                           rng.choice([None, "left", "right", "bilateral"]),
                           f"BENCH-C{i // 3}", imported, day)

            t0 = time.perf_counter()
            with store._transaction("fill the benchmark store") as conn:
                conn.executemany(_INSERT, rows())
            fill = time.perf_counter() - t0
            times: list[float] = []
            found = 0
            for _ in range(lookups):
                patient = f"BENCH-{rng.randrange(n_patients)}"
                before = dt.date.fromordinal(start_day + rng.randrange(span))
                t = time.perf_counter()
                got = store.services(patient, before=before, window_days=window_days)
                times.append(time.perf_counter() - t)
                found += len(got)
        size = path.stat().st_size  # closed: the write-ahead log is checkpointed into it
    times.sort()
    p95 = times[min(len(times) - 1, max(0, round(0.95 * len(times)) - 1))]
    return {
        "n_services": n_services,
        "n_patients": n_patients,
        "lookups": lookups,
        "window_days": window_days,
        "fill_seconds": round(fill, 3),
        "file_bytes": size,
        "mean_rows": round(found / lookups, 2),
        "mean_ms": round(statistics.fmean(times) * 1000, 4),
        "p95_ms": round(p95 * 1000, 4),
        "max_ms": round(times[-1] * 1000, 4),
    }
