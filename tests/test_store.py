"""The patient history store (pain_asp.store): docs/scaling.md, README.md."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from pain_asp.errors import PainAspError
from pain_asp.history import batch_history
from pain_asp.models import Claim, HistoryEntry, parse_claim
from pain_asp.store import SCHEMA_VERSION, HistoryStore, bench_lookup, store_history

D = dt.date


def make_claim(claim_id: str, patient: str, *lines: dict,
               history: list[dict] | None = None) -> Claim:
    """A valid claim; each line is a dict with at least code and date."""
    return parse_claim({
        "claim_id": claim_id,
        "payer": "medicare",
        "place_of_service": "11",
        "patient": {"id": patient, "birth_date": "1950-04-03"},
        "diagnoses": ["M47.816"],
        "lines": [{"dx": [1], **line} for line in lines],
        "history": history or [],
    })


def line(code: str, date: dt.date, *mods: str, **documented: object) -> dict:
    out: dict = {"code": code, "date": date, "modifiers": list(mods)}
    if documented:
        out["documented"] = documented
    return out


def keys(entries: list[HistoryEntry]) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(e.date.isoformat(), e.code, tuple(e.modifiers)) for e in entries]


def file_bytes(path: Path) -> bytes:
    data = b""
    for suffix in ("", "-wal", "-shm"):
        part = Path(str(path) + suffix)
        if part.exists():
            data += part.read_bytes()
    return data


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "history.db"


# -- creation, permissions, PHI at rest ------------------------------------------------------


def test_new_database_is_owner_only_even_with_an_open_umask(db: Path) -> None:
    old = os.umask(0)
    try:
        with HistoryStore(db) as store:
            store.add_claims([make_claim("C-1", "P-1", line("64483", D(2026, 1, 5)))])
            for suffix in ("", "-wal", "-shm"):
                part = Path(str(db) + suffix)
                if part.exists():
                    assert stat.S_IMODE(os.stat(part).st_mode) == 0o600, suffix
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600


def test_existing_empty_file_is_made_private_before_use(db: Path) -> None:
    db.touch()
    os.chmod(db, 0o644)
    with HistoryStore(db) as store:
        assert store.count() == 0
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600


def test_schema_has_version_table_and_patient_day_index(db: Path) -> None:
    HistoryStore(db).close()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        index = conn.execute("PRAGMA index_info(services_patient_day)").fetchall()
        assert [row[2] for row in index] == ["patient_key", "day"]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        plan = " ".join(str(r) for r in conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM services WHERE patient_key = ? AND day <= ? "
            "AND day >= ?", (b"x", 1, 0)))
        assert "services_patient_day" in plan
    finally:
        conn.close()


def test_patient_id_is_never_stored_in_clear(db: Path) -> None:
    secret = "MRN-SECRET-4711"
    with HistoryStore(db) as store:
        store.add_claims([make_claim("C-1", secret, line("64483", D(2026, 1, 5)))])
        key = store.patient_key(secret)
    data = file_bytes(db)
    assert secret.encode() not in data
    assert b"1950-04-03" not in data  # birth dates are never stored
    assert key in data
    # The key is salted per database: the same id gives another key elsewhere.
    with HistoryStore(db.with_name("other.db")) as other:
        assert other.patient_key(secret) != key
        assert len(other.patient_key(secret)) == 32


# -- add / show / forget / count -------------------------------------------------------------


def test_add_show_count_and_forget(db: Path) -> None:
    with HistoryStore(db) as store:
        added = store.add_claims([
            make_claim("C-1", "P-1",
                       line("64493", D(2026, 1, 5), "50", purpose="diagnostic", relief_pct=80,
                            levels=["L4-L5"], side="bilateral"),
                       line("64494", D(2026, 1, 5), "50")),
            make_claim("C-2", "P-2", line("62323", D(2026, 2, 1))),
        ])
        assert added.services == 3
        assert store.count() == 3
        shown = store.show("P-1")
        assert [(r["date"], r["code"], r["modifiers"]) for r in shown] == [
            ("2026-01-05", "64493", ["50"]), ("2026-01-05", "64494", ["50"])]
        first = shown[0]
        assert first["purpose"] == "diagnostic" and first["relief_pct"] == 80
        assert first["levels"] == ["L4-L5"] and first["side"] == "bilateral"
        assert first["claim_id"] == "C-1" and first["imported_at"]
        assert "P-1" not in repr(shown)
        entry = store.services("P-1")[0]
        assert entry == HistoryEntry(date=D(2026, 1, 5), code="64493", modifiers=["50"],
                                     purpose="diagnostic", relief_pct=80, levels=["L4-L5"],
                                     side="bilateral")
        assert store.forget("P-1") == 2
        assert store.show("P-1") == [] and store.services("P-1") == []
        assert store.count() == 1
        assert store.forget("P-1") == 0
        assert store.forget("nobody") == 0
        assert keys(store.services("P-2")) == [("2026-02-01", "62323", ())]


def test_forget_leaves_no_trace_of_the_rows_in_the_file(db: Path) -> None:
    with HistoryStore(db) as store:
        store.add_claims([make_claim("CLAIM-TRACE-9913", "P-1", line("64635", D(2026, 1, 5))),
                          make_claim("C-KEEP", "P-2", line("62323", D(2026, 1, 6)))])
        key = store.patient_key("P-1")
        assert store.forget("P-1") == 1
        data = file_bytes(db)
        assert b"CLAIM-TRACE-9913" not in data
        assert key not in data
    assert b"C-KEEP" in file_bytes(db)


def test_patient_id_lookup_ignores_surrounding_whitespace(db: Path) -> None:
    with HistoryStore(db) as store:
        store.add_claims([make_claim("C-1", "P-1", line("64483", D(2026, 1, 5)))])
        assert len(store.services("  P-1 ")) == 1
        assert store.services("p-1") == []  # ids are case-sensitive


def test_readding_a_claim_replaces_its_rows(db: Path) -> None:
    with HistoryStore(db) as store:
        original = make_claim("C-1", "P-1", line("64483", D(2026, 1, 5)),
                              line("64484", D(2026, 1, 5)))
        first = store.add_claims([original])
        assert (first.services, first.added, first.replaced, first.warnings) == (2, 1, 0, [])
        again = store.add_claims([original])
        assert (again.services, again.added, again.replaced, again.warnings) == (2, 0, 1, [])
        assert store.count() == 2
        corrected = make_claim("C-1", "P-1", line("64483", D(2026, 1, 5), "RT"))
        assert store.add_claims([corrected]).replaced == 1
        assert keys(store.services("P-1")) == [("2026-01-05", "64483", ("RT",))]
        # Within one batch the later copy of a claim wins.
        twice = store.add_claims([make_claim("C-2", "P-1", line("62321", D(2026, 3, 1))),
                                  make_claim("C-2", "P-1", line("62323", D(2026, 3, 1)))])
        assert (twice.added, twice.replaced) == (1, 1)
        assert keys(store.services("P-1")) == [("2026-01-05", "64483", ("RT",)), ("2026-03-01", "62323", ())]
        assert store.count() == 2


def test_a_reused_claim_id_of_another_patient_or_date_is_another_claim(db: Path) -> None:
    """A claim is the same claim as a stored one only with the same patient, the same claim id
    and a date of service in common (history.same_claim): a practice numbering claims per batch
    sends "1" again and again, and none of them erases another; the store says which ids came
    back with another patient or on other dates."""
    with HistoryStore(db) as store:
        store.add_claims([make_claim("1", "P-1", line("62323", D(2026, 1, 5))),
                          make_claim("2", "P-2", line("62323", D(2026, 1, 5)))])
        later = store.add_claims([make_claim("1", "P-2", line("64483", D(2026, 3, 2))),
                                  make_claim("2", "P-2", line("64483", D(2026, 3, 2)))])
        assert (later.added, later.replaced) == (2, 0)
        assert later.warnings == [
            "claim 1: the store already holds a claim 1 of another patient; both are kept",
            "claim 2: the store already holds a claim 2 of this patient on other dates of service; "
            "both are kept",
        ]
        assert keys(store.services("P-1")) == [("2026-01-05", "62323", ())]
        assert keys(store.services("P-2")) == [("2026-01-05", "62323", ()), ("2026-03-02", "64483", ()),
                                               ("2026-03-02", "64483", ())]
        # A claim "2" of P-2 on 2026-03-02 and 2026-03-09 is the stored March claim "2" (a date in
        # common): it sees the January claim "2" but not itself.
        current = make_claim("2", "P-2", line("64483", D(2026, 3, 2)), line("64484", D(2026, 3, 9)))
        assert keys(store_history(store)(current)) == [("2026-01-05", "62323", ()),
                                                       ("2026-03-02", "64483", ())]


def test_a_correction_that_drops_the_first_line_is_still_the_same_claim(db: Path) -> None:
    """pain-asp fix may drop a claim's earliest line, moving its first date: the corrected claim
    replaces the stored original, and never sees the original's services as its history."""
    with HistoryStore(db) as store:
        store.add_claims([make_claim("C-7", "P-7", line("64484", D(2025, 3, 3)), line("64483", D(2025, 3, 17))),
                          make_claim("C-6", "P-7", line("64483", D(2025, 1, 6)))])
        corrected = make_claim("C-7", "P-7", line("64483", D(2025, 3, 17)))
        assert keys(store_history(store)(corrected)) == [("2025-01-06", "64483", ())]
        again = store.add_claims([corrected])
        assert (again.added, again.replaced, again.warnings) == (0, 1, [])
        assert keys(store.services("P-7")) == [("2025-01-06", "64483", ()), ("2025-03-17", "64483", ())]


def test_batch_history_tells_claims_with_one_id_apart_by_date() -> None:
    january = make_claim("1", "P-1", line("62323", D(2026, 1, 5)))
    march = make_claim("1", "P-1", line("62323", D(2026, 3, 5)))
    assert keys(batch_history([january, march])(march)) == [("2026-01-05", "62323", ())]
    corrected = make_claim("1", "P-1", line("62323", D(2026, 3, 5)))
    assert keys(batch_history([january, march])(corrected)) == [("2026-01-05", "62323", ())]


_VERSION_1_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE services (
    id INTEGER PRIMARY KEY, patient_key BLOB NOT NULL, day INTEGER NOT NULL, date TEXT NOT NULL,
    code TEXT NOT NULL, modifiers TEXT NOT NULL, units INTEGER NOT NULL, purpose TEXT,
    relief_pct INTEGER, relief_duration_months INTEGER, levels TEXT, side TEXT,
    claim_id TEXT NOT NULL, imported_at TEXT NOT NULL);
CREATE INDEX services_patient_day ON services (patient_key, day);
CREATE INDEX services_claim ON services (claim_id);
"""


def test_a_version_1_database_is_migrated_and_keeps_its_services(db: Path) -> None:
    """A store written by pain-asp before claims were keyed by patient and date (schema version
    1, written here by hand) opens, keeps every row, and learns each claim's first day."""
    import hashlib
    import hmac

    salt = bytes(range(32))

    def key(patient: str) -> bytes:
        return hmac.new(salt, patient.encode(), hashlib.sha256).digest()

    conn = sqlite3.connect(db)
    conn.executescript(_VERSION_1_SCHEMA)
    conn.execute("PRAGMA application_id = 1883337584")
    conn.execute("INSERT INTO schema_version VALUES (1, '2026-01-01T00:00:00+00:00')")
    conn.execute("INSERT INTO meta VALUES ('salt', ?)", (salt,))
    conn.execute("INSERT INTO meta VALUES ('format', 'pain-asp history')")
    old_rows = [(key("P-1"), 739621, "2026-01-05", "64483", "[]", 1, "therapeutic", None, None, '["L4-L5"]',
                 "left", "C-1", "2026-01-06T00:00:00+00:00"),
                (key("P-1"), 739623, "2026-01-07", "64484", '["LT"]', 1, None, None, None, None, None, "C-1",
                 "2026-01-06T00:00:00+00:00"),
                (key("P-2"), 739650, "2026-02-03", "62323", "[]", 1, None, 80, 3, None, None, "C-2",
                 "2026-02-04T00:00:00+00:00")]
    conn.executemany("INSERT INTO services (patient_key, day, date, code, modifiers, units, purpose, "
                     "relief_pct, relief_duration_months, levels, side, claim_id, imported_at) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", old_rows)
    conn.commit()
    conn.close()
    with HistoryStore(db, create=False) as store:
        assert store.count() == 3
        assert keys(store.services("P-1")) == [("2026-01-05", "64483", ()), ("2026-01-07", "64484", ("LT",))]
        assert store.services("P-1")[0].levels == ["L4-L5"]
        assert store.services("P-2")[0].relief_pct == 80
        # The migrated claim C-1 starts on 2026-01-05: re-adding it replaces it.
        again = store.add_claims([make_claim("C-1", "P-1", line("64483", D(2026, 1, 5), "LT"))])
        assert (again.added, again.replaced, again.warnings) == (0, 1, [])
        assert keys(store.services("P-1")) == [("2026-01-05", "64483", ("LT",))]
    conn = sqlite3.connect(db)
    try:
        # Each upgrade step is recorded: 1 to 2 (claim days), 2 to 3 (adjudications).
        assert [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY version")] == \
            list(range(1, SCHEMA_VERSION + 1))
    finally:
        conn.close()


# -- atomicity -------------------------------------------------------------------------------


def _snapshot(store: HistoryStore) -> list:
    return [store.show("P-1"), store.show("P-2"), store.count()]


def test_failure_in_the_claim_iterable_commits_nothing(db: Path) -> None:
    with HistoryStore(db) as store:
        store.add_claims([make_claim("C-1", "P-1", line("64483", D(2026, 1, 5)))])
        before = _snapshot(store)

        def claims():
            yield make_claim("C-1", "P-1", line("64490", D(2026, 1, 7)))  # replaces C-1 ...
            yield make_claim("C-2", "P-2", line("62323", D(2026, 2, 1)))
            raise RuntimeError("reader failed half-way")

        with pytest.raises(RuntimeError, match="half-way"):
            store.add_claims(claims())
        assert _snapshot(store) == before
        # ... and the store still works afterwards.
        assert store.add_claims([make_claim("C-3", "P-2", line("62323", D(2026, 2, 1)))]).services == 1
    with HistoryStore(db) as reopened:
        assert keys(reopened.services("P-1")) == [("2026-01-05", "64483", ())]


class _ExplodingLines:
    """Stands in for a claim whose lines fail while they are being read."""

    claim_id = "C-BAD"
    frequency = 1

    def __init__(self, good: Claim) -> None:
        self.patient = good.patient
        self.first_day = good.first_day
        self._good = good

    @property
    def lines(self):
        yield self._good.lines[0]
        raise ValueError("line 2 could not be read")


def test_failure_inside_a_claim_commits_nothing(db: Path) -> None:
    with HistoryStore(db) as store:
        store.add_claims([make_claim("C-1", "P-1", line("64483", D(2026, 1, 5)))])
        before = _snapshot(store)
        good = make_claim("C-2", "P-2", line("62323", D(2026, 2, 1)))
        bad = _ExplodingLines(make_claim("C-BAD", "P-1", line("64490", D(2026, 1, 9)),
                                         line("64491", D(2026, 1, 9))))
        with pytest.raises(ValueError, match="line 2"):
            store.add_claims([good, bad])  # type: ignore[list-item]
        assert _snapshot(store) == before


def test_database_error_half_way_rolls_back_and_names_no_patient(db: Path) -> None:
    with HistoryStore(db) as store:
        store.add_claims([make_claim("C-1", "PATIENT-7788", line("64483", D(2026, 1, 5)))])
        before = [store.show("PATIENT-7788"), store.count()]
    conn = sqlite3.connect(db)
    conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON services WHEN NEW.code = '64494' "
                 "BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END")
    conn.commit()
    conn.close()
    with HistoryStore(db) as store:
        with pytest.raises(PainAspError) as info:
            store.add_claims([
                make_claim("C-1", "PATIENT-7788", line("64490", D(2026, 3, 1))),
                make_claim("C-2", "PATIENT-7788", line("64493", D(2026, 3, 2)),
                           line("64494", D(2026, 3, 2))),
            ])
        message = str(info.value)
        assert str(db) in message and "refused by test trigger" in message
        assert "PATIENT-7788" not in message and "1950" not in message
        assert [store.show("PATIENT-7788"), store.count()] == before


# -- concurrency -----------------------------------------------------------------------------


def test_readers_see_old_or_new_state_while_a_writer_commits(db: Path) -> None:
    with HistoryStore(db) as setup:
        setup.add_claims([make_claim("C-0", "P-1", line("64483", D(2025, 1, 5)))])
    in_transaction = threading.Event()
    readers_done = threading.Barrier(3)
    errors: list[BaseException] = []
    seen: dict[str, list[int]] = {"r0": [], "r1": []}

    def new_claims():
        yield make_claim("C-1", "P-1", *[line("64483", D(2026, 1, 5))] * 10)
        in_transaction.set()           # rows written, not committed
        readers_done.wait(timeout=30)  # hold the transaction open while readers read
        yield make_claim("C-2", "P-1", *[line("64484", D(2026, 1, 5))] * 10)

    def writer() -> None:
        try:
            with HistoryStore(db) as store:
                store.add_claims(new_claims())
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
            in_transaction.set()

    def reader(name: str) -> None:
        try:
            with HistoryStore(db) as store:
                in_transaction.wait(timeout=30)
                for _ in range(20):
                    seen[name].append(len(store.services("P-1")))
                    seen[name].append(store.count())
                readers_done.wait(timeout=30)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=reader, args=(name,)) for name in seen]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    for values in seen.values():
        assert values and set(values) == {1}  # the write in progress is invisible
    with HistoryStore(db) as after:
        assert len(after.services("P-1")) == 21 and after.count() == 21


def test_readers_during_many_commits_never_see_a_partial_batch(db: Path) -> None:
    batch = 5  # claims per commit, 10 lines each
    HistoryStore(db).close()
    stop = threading.Event()
    errors: list[BaseException] = []
    observed: list[int] = []

    def writer() -> None:
        try:
            with HistoryStore(db) as store:
                for round_ in range(15):
                    store.add_claims([
                        make_claim(f"W-{round_}-{i}", "P-1",
                                   *[line("20552", D(2026, 1, 1) + dt.timedelta(days=round_))] * 10)
                        for i in range(batch)])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            stop.set()

    def reader() -> None:
        try:
            with HistoryStore(db) as store:
                last = 0
                while not stop.is_set():
                    n = len(store.services("P-1"))
                    assert n % (batch * 10) == 0 and n >= last, n
                    observed.append(n)
                    last = n
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    threads.append(threading.Thread(target=writer))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert observed
    with HistoryStore(db) as store:
        assert store.count() == 15 * batch * 10


# -- before / window filtering ---------------------------------------------------------------


def test_before_and_window_are_inclusive_at_both_ends(db: Path) -> None:
    day = D(2026, 3, 10)
    offsets = [731, 730, 365, 1, 0, -1]
    with HistoryStore(db) as store:
        # Inserted newest first: results must still come back in date order.
        store.add_claims([make_claim(f"C{n}", "P-1", line("62323", day - dt.timedelta(days=n)))
                          for n in sorted(offsets)])
        dates = lambda entries: [(day - e.date).days for e in entries]  # noqa: E731
        assert dates(store.services("P-1")) == [731, 730, 365, 1, 0, -1]
        assert dates(store.services("P-1", before=day)) == [731, 730, 365, 1, 0]
        assert dates(store.services("P-1", before=day, window_days=730)) == [730, 365, 1, 0]
        assert dates(store.services("P-1", before=day, window_days=729)) == [365, 1, 0]
        assert dates(store.services("P-1", before=day, window_days=0)) == [0]
        assert dates(store.services("P-1", before=day - dt.timedelta(days=1),
                                    window_days=364)) == [365, 1]
        with pytest.raises(ValueError):
            store.services("P-1", window_days=30)
        with pytest.raises(ValueError):
            store.services("P-1", before=day, window_days=-1)


def test_same_day_services_sort_by_code(db: Path) -> None:
    with HistoryStore(db) as store:
        store.add_claims([make_claim("C-1", "P-1", line("64494", D(2026, 1, 5)),
                                     line("64493", D(2026, 1, 5)), line("62323", D(2026, 1, 4)))])
        assert [e.code for e in store.services("P-1")] == ["62323", "64493", "64494"]


# -- the provider ----------------------------------------------------------------------------


def test_provider_merges_claim_history_base_and_store_without_duplicates(db: Path) -> None:
    current = make_claim(
        "C-NOW", "P-1", line("64493", D(2026, 3, 12)), line("64494", D(2026, 3, 10)),
        history=[{"date": "2026-01-05", "code": "64483", "relief_pct": 70},
                 {"date": "2024-01-01", "code": "20552"}])
    same_batch = make_claim("C-FEB", "P-1", line("64490", D(2026, 2, 1), "RT"))
    with HistoryStore(db) as store:
        store.add_claims([
            make_claim("C-JAN", "P-1", line("64483", D(2026, 1, 5))),          # = claim history
            same_batch,                                                          # = batch
            make_claim("C-OLD", "P-1", line("62323", D(2025, 6, 1)),
                       line("62323", D(2025, 6, 1))),                          # two real lines
            make_claim("C-SAMEDAY", "P-1", line("20553", D(2026, 3, 10))),       # on first day
            make_claim("C-LATER", "P-1", line("64635", D(2026, 3, 11))),         # after first day
            make_claim("C-NOW", "P-1", line("64493", D(2026, 3, 10))),           # this claim
            make_claim("C-OTHER", "P-2", line("64483", D(2026, 1, 6))),          # other patient
        ])
        provider = store_history(store, base=batch_history([current, same_batch]))
        merged = provider(current)
        assert keys(merged) == [
            ("2024-01-01", "20552", ()),
            ("2025-06-01", "62323", ()),
            ("2025-06-01", "62323", ()),
            ("2026-01-05", "64483", ()),
            ("2026-02-01", "64490", ("RT",)),
            ("2026-03-10", "20553", ()),
        ]
        # The claim's own history entry wins over the stored copy of the same service.
        assert merged[3].relief_pct == 70
        # Without a base, the store alone still adds the batch claim it holds.
        alone = store_history(store)(current)
        assert keys(alone) == keys(merged)
        # A window limits how far back the store is read (the claim's history is kept).
        windowed = store_history(store, window_days=60)(current)
        assert keys(windowed) == [("2024-01-01", "20552", ()), ("2026-01-05", "64483", ()),
                                  ("2026-02-01", "64490", ("RT",)), ("2026-03-10", "20553", ())]


def test_provider_over_a_batch_with_a_claim_replaced(db: Path) -> None:
    """pain-asp fix judges a claim beside its patient's other claims as corrected: replacing a
    batch claim changes what the store-backed provider gives, and nothing else."""
    current = make_claim("C-NOW", "P-1", line("64493", D(2026, 3, 10)))
    earlier = make_claim("C-EARLY", "P-1", line("64490", D(2026, 2, 1), "RT"), line("64490", D(2026, 2, 1), "RT"))
    corrected = make_claim("C-EARLY", "P-1", line("64490", D(2026, 2, 1), "RT"))
    with HistoryStore(db) as store:
        store.add_claims([make_claim("C-OLD", "P-1", line("20552", D(2024, 1, 1)))])
        provider = store_history(store, base=batch_history([current, earlier]))
        replaced = provider.replacing({id(earlier): corrected})
        assert keys(provider(current)) == [("2024-01-01", "20552", ()), ("2026-02-01", "64490", ("RT",)),
                                           ("2026-02-01", "64490", ("RT",))]
        assert keys(replaced(current)) == [("2024-01-01", "20552", ()), ("2026-02-01", "64490", ("RT",))]
        assert keys(provider(current)) == keys(store_history(store, base=batch_history([current, earlier]))(current))
        # A store without a batch has nothing to replace.
        assert keys(store_history(store).replacing({id(earlier): corrected})(current)) == [("2024-01-01", "20552", ())]


def test_provider_counts_modifier_order_as_the_same_service(db: Path) -> None:
    current = make_claim("C-NOW", "P-1", line("64483", D(2026, 3, 10)),
                         history=[{"date": "2026-01-05", "code": "64483",
                                   "modifiers": ["LT", "KX"]}])
    with HistoryStore(db) as store:
        store.add_claims([make_claim("C-1", "P-1", line("64483", D(2026, 1, 5), "KX", "LT"),
                                     line("64483", D(2026, 1, 5), "RT"))])
        merged = store_history(store)(current)
        assert keys(merged) == [("2026-01-05", "64483", ("LT", "KX")),
                                ("2026-01-05", "64483", ("RT",))]


def test_provider_feeds_the_checker(db: Path) -> None:
    from pain_asp.engine import Checker
    from pain_asp.inputs.records import Record

    claim = make_claim("C-NOW", "P-1", line("64483", D(2026, 3, 10), "LT",
                                            imaging="fluoroscopy", side="left",
                                            levels=["L4-L5"], purpose="therapeutic"))
    with HistoryStore(db) as store:
        store.add_claims([make_claim("C-1", "P-1", line("64483", D(2026, 1, 5), "LT"))])
        seen: list[list[HistoryEntry]] = []
        provider = store_history(store)

        def spy(c: Claim) -> list[HistoryEntry]:
            seen.append(provider(c))
            return seen[-1]

        record = Record(file="test", position=0, claim=claim, claim_id=claim.claim_id)
        results = list(Checker().check([record], history=spy))
    assert len(results) == 1
    assert [keys(s) for s in seen] == [[("2026-01-05", "64483", ("LT",))]]


# -- errors ----------------------------------------------------------------------------------


def test_a_text_file_is_not_a_history_database(tmp_path: Path) -> None:
    path = tmp_path / "claims.json"
    path.write_text('{"patient": {"id": "P-SECRET"}}' * 200)
    with pytest.raises(PainAspError, match="is not a pain-asp history database") as info:
        HistoryStore(path)
    assert "P-SECRET" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_another_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE services (x)")
    conn.commit()
    conn.close()
    with pytest.raises(PainAspError, match="is not a pain-asp history database"):
        HistoryStore(path)


def test_a_newer_schema_is_refused(db: Path) -> None:
    HistoryStore(db).close()
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO schema_version VALUES (?, '2030-01-01')", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(PainAspError, match="schema version"):
        HistoryStore(db)


def test_unopenable_paths_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(PainAspError, match="is a folder"):
        HistoryStore(tmp_path)
    with pytest.raises(PainAspError, match="cannot be created"):
        HistoryStore(tmp_path / "missing-folder" / "history.db")
    with pytest.raises(PainAspError, match="no such history database"):
        HistoryStore(tmp_path / "absent.db", create=False)
    assert not (tmp_path / "absent.db").exists()


def test_closed_store_refuses_work(db: Path) -> None:
    store = HistoryStore(db)
    store.close()
    store.close()
    with pytest.raises(PainAspError, match="closed"):
        store.count()


def test_a_tampered_row_never_reaches_the_knowledge_base(db: Path) -> None:
    with HistoryStore(db) as store:
        store.add_claims([make_claim("C-1", "P-1", line("64483", D(2026, 1, 5)))])
    conn = sqlite3.connect(db)
    conn.execute("UPDATE services SET code = '6448\").\n#include \"x\".'")
    conn.commit()
    conn.close()
    with HistoryStore(db) as store:
        with pytest.raises(PainAspError, match="not a valid service"):
            store.services("P-1")


def test_read_only_database_gives_a_clear_error(db: Path) -> None:
    with HistoryStore(db) as store:
        store.add_claims([make_claim("C-1", "P-1", line("64483", D(2026, 1, 5)))])
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if as_root:  # root ignores permission bits; the immutable flag still binds it
        import shutil
        import subprocess

        chattr = shutil.which("chattr")
        if chattr is None or subprocess.run([chattr, "+i", str(db)],
                                             capture_output=True).returncode != 0:
            pytest.skip("running as root and the file cannot be made immutable")
        undo = [chattr, "-i", str(db)]
    else:
        os.chmod(db, 0o400)
    try:
        with pytest.raises(PainAspError) as info:
            with HistoryStore(db) as store:
                store.add_claims([make_claim("C-2", "P-1", line("64483", D(2026, 2, 5)))])
        message = str(info.value)
        assert str(db) in message and "P-1" not in message
        assert "Traceback" not in message
    finally:
        if as_root:
            subprocess.run(undo, check=True)
        else:
            os.chmod(db, 0o600)
    with HistoryStore(db) as store:
        assert keys(store.services("P-1")) == [("2026-01-05", "64483", ())]


# -- benchmark -------------------------------------------------------------------------------


def test_bench_lookup_small() -> None:
    result = bench_lookup(5_000, 250, 200)
    assert result["n_services"] == 5_000 and result["lookups"] == 200
    assert result["mean_rows"] > 0
    assert 0 < result["mean_ms"] and result["mean_ms"] <= result["max_ms"]
    assert result["p95_ms"] <= result["max_ms"]
    assert result["mean_ms"] < 50  # an indexed lookup, not a scan
