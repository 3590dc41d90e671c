"""The bridge's bounded on-disk outbox (SQLite in WAL mode): store first, forward later.

Every record is written here, with its bridge sequence number, before it is sent; it leaves only
when the sink acknowledges it (end to end, after its database commit). The next sequence number
is kept in the same file, so numbering continues across restarts and power cuts.

Budgets: telemetry (summaries, cell frames, estimates, limits) may hold at most
``max_telemetry`` records; beyond that the oldest telemetry is dropped and counted. Events are
never dropped (their count is only reported). The drops are reported by :meth:`take_drops`, which
the bridge turns into a gap event.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Stored:
    seq: int
    kind: str
    event: bool
    topic: str
    payload: bytes


@dataclass
class Drops:
    count: int = 0
    first_seq: int = 0
    last_seq: int = 0


class Outbox:
    def __init__(self, path: Path, max_telemetry: int = 1_000_000) -> None:
        if max_telemetry < 1:
            raise ValueError(f"outbox {path}: max_telemetry must be >= 1, got {max_telemetry}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_telemetry = max_telemetry
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a process kill
        self._db.executescript("""
            CREATE TABLE IF NOT EXISTS records (
                seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, event INTEGER NOT NULL,
                topic TEXT NOT NULL, payload BLOB NOT NULL);
            CREATE INDEX IF NOT EXISTS records_telemetry ON records (event, seq);
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);
        """)
        self._next_seq = int(self._meta("next_seq", 1))
        self._telemetry = self._db.execute("SELECT count(*) FROM records WHERE event = 0").fetchone()[0]
        self._drops = Drops(int(self._meta("drops", 0)), int(self._meta("drops_first", 0)),
                            int(self._meta("drops_last", 0)))
        self.dropped_total = int(self._meta("dropped_total", 0))

    def _meta(self, key: str, default: object) -> object:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else row[0]

    def _set_meta(self, **values: object) -> None:
        self._db.executemany("INSERT INTO meta (key, value) VALUES (?, ?) "
                             "ON CONFLICT (key) DO UPDATE SET value = excluded.value", list(values.items()))

    def get_meta(self, key: str, default: object = None) -> object:
        with self._lock:
            return self._meta(key, default)

    def set_meta(self, **values: object) -> None:
        with self._lock:
            self._set_meta(**values)

    def next_seq(self) -> int:
        with self._lock:
            return self._next_seq

    def append(self, kind: str, event: bool, topic: str, make_payload) -> int:
        """Store one record; ``make_payload(seq)`` builds its bytes. Returns its sequence number."""
        with self._lock:
            seq = self._next_seq
            payload = make_payload(seq)
            self._db.execute("BEGIN")
            self._db.execute("INSERT INTO records (seq, kind, event, topic, payload) VALUES (?, ?, ?, ?, ?)",
                             (seq, kind, int(event), topic, payload))
            self._next_seq = seq + 1
            self._set_meta(next_seq=self._next_seq)
            if not event:
                self._telemetry += 1
                if self._telemetry > self.max_telemetry:
                    self._drop_oldest_telemetry(self._telemetry - self.max_telemetry)
            self._db.execute("COMMIT")
            return seq

    def _drop_oldest_telemetry(self, n: int) -> None:
        rows = self._db.execute("SELECT seq FROM records WHERE event = 0 ORDER BY seq LIMIT ?", (n,)).fetchall()
        if not rows:
            return
        seqs = [r[0] for r in rows]
        self._db.executemany("DELETE FROM records WHERE seq = ?", [(s,) for s in seqs])
        self._telemetry -= len(seqs)
        d = self._drops
        d.first_seq = d.first_seq if d.count else seqs[0]
        d.count += len(seqs)
        d.last_seq = seqs[-1]
        self.dropped_total += len(seqs)
        self._set_meta(drops=d.count, drops_first=d.first_seq, drops_last=d.last_seq,
                       dropped_total=self.dropped_total)

    def take_drops(self) -> Drops | None:
        """Drops not yet reported (and forget them), or None."""
        with self._lock:
            if not self._drops.count:
                return None
            taken, self._drops = self._drops, Drops()
            self._set_meta(drops=0, drops_first=0, drops_last=0)
            return taken

    def pending(self, after_seq: int, limit: int, event: bool | None = None) -> list[Stored]:
        """Records in sequence order after ``after_seq``: all, or only events / only telemetry."""
        with self._lock:
            query = "SELECT seq, kind, event, topic, payload FROM records WHERE seq > ?"
            args: tuple = (after_seq, limit)
            if event is not None:
                query += " AND event = ?"
                args = (after_seq, int(event), limit)
            rows = self._db.execute(query + " ORDER BY seq LIMIT ?", args).fetchall()
        return [Stored(r[0], r[1], bool(r[2]), r[3], bytes(r[4])) for r in rows]

    def delete(self, seqs: list[int]) -> int:
        """Remove acknowledged records; returns how many were still here."""
        if not seqs:
            return 0
        with self._lock:
            self._db.execute("BEGIN")
            placeholders = ",".join("?" * len(seqs))
            telemetry = self._db.execute(
                f"SELECT count(*) FROM records WHERE event = 0 AND seq IN ({placeholders})", seqs).fetchone()[0]
            removed = self._db.execute(f"DELETE FROM records WHERE seq IN ({placeholders})", seqs).rowcount
            self._db.execute("COMMIT")
            self._telemetry -= telemetry
            return removed

    def counts(self) -> tuple[int, int]:
        """(events, telemetry) waiting."""
        with self._lock:
            total = self._db.execute("SELECT count(*) FROM records").fetchone()[0]
            return total - self._telemetry, self._telemetry

    def touch(self) -> None:
        """Remember that the bridge was alive now (wall clock): a restart reports the gap since."""
        self.set_meta(alive_utc=time.time())

    def close(self) -> None:
        with self._lock:
            self._db.close()
