"""One SQLite database over every archived run: rows, full-text search, vectors.

``runs`` holds one row per run; ``actions`` every action with its result (the
"never repeat a failed fix" memory); ``docs`` is an FTS5 table (BM25, porter
stemming) over diagnosis, actions, findings digest, summary and notes;
``embeddings`` the optional sentence vectors. The files on disk are the truth;
the index can be rebuilt from them.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from rootloop.memory.records import RunRecord

SCHEMA = """
PRAGMA journal_mode=WAL;
CREATE TABLE IF NOT EXISTS runs(
  run_id TEXT PRIMARY KEY, service TEXT NOT NULL, environment TEXT DEFAULT '',
  status TEXT DEFAULT 'running', started_at TEXT NOT NULL, archived_at TEXT,
  iterations INTEGER DEFAULT 0, root_cause TEXT, category TEXT, diagnosis_key TEXT,
  synopsis TEXT DEFAULT '', short_summary TEXT DEFAULT '', nodes TEXT DEFAULT '[]',
  pr TEXT, summary_source TEXT, has_transcript INTEGER DEFAULT 0);
CREATE INDEX IF NOT EXISTS runs_service ON runs(service, started_at);
CREATE INDEX IF NOT EXISTS runs_root ON runs(root_cause);
CREATE TABLE IF NOT EXISTS actions(
  run_id TEXT NOT NULL, iteration INTEGER NOT NULL, diagnosis_key TEXT, fingerprint TEXT,
  description TEXT, result TEXT, failed INTEGER DEFAULT 0);
CREATE INDEX IF NOT EXISTS actions_run ON actions(run_id);
CREATE INDEX IF NOT EXISTS actions_failed ON actions(failed, diagnosis_key);
CREATE TABLE IF NOT EXISTS notes(
  id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, at TEXT NOT NULL, text TEXT NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS docs USING fts5(
  diagnosis, actions, findings, summary, notes, tokenize='porter unicode61');
CREATE TABLE IF NOT EXISTS embeddings(
  run_id TEXT PRIMARY KEY, model TEXT NOT NULL, vector BLOB NOT NULL);
"""

# BM25 column weights: diagnosis, actions, findings, summary, notes
_WEIGHTS = (3.0, 2.0, 2.0, 1.0, 1.5)

_STOP_WORDS = (
    "a an and are as at be by did do does for from had has have how i in is it its of on or "
    "our so than that the their then there these this to was we were what when where which "
    "while who why with ran got get went keep kept"
)
_STOP = frozenset(_STOP_WORDS.split(" "))
_TOKEN = re.compile(r"\w+", re.UNICODE)

_COLUMNS = (
    "run_id, service, environment, status, started_at, archived_at, iterations, "
    "root_cause, category, diagnosis_key, synopsis, pr, summary_source, has_transcript"
)


@dataclass
class IndexDoc:
    diagnosis: str
    actions: str
    findings: str
    summary: str
    notes: str = ""


@dataclass
class ActionRow:
    iteration: int
    diagnosis_key: str | None
    fingerprint: str | None
    description: str
    result: str
    failed: bool


def fts_query(text: str) -> str:
    """Free text → an FTS5 OR-query of quoted tokens (stop words dropped); '' if nothing left."""
    seen: list[str] = []
    for tok in _TOKEN.findall(text.lower()):
        if tok not in _STOP and tok not in seen:
            seen.append(tok)
    return " OR ".join(f'"{t}"' for t in seen[:64])


def _record(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        run_id=row["run_id"],
        service=row["service"],
        environment=row["environment"] or "",
        status=row["status"] or "running",
        started_at=datetime.fromisoformat(row["started_at"]),
        archived_at=datetime.fromisoformat(row["archived_at"]) if row["archived_at"] else None,
        iterations=row["iterations"] or 0,
        root_cause=row["root_cause"],
        category=row["category"],
        diagnosis_key=row["diagnosis_key"],
        synopsis=row["synopsis"] or "",
        pr=row["pr"],
        summary_source=row["summary_source"],
        has_transcript=bool(row["has_transcript"]),
    )


def _in(values: Sequence[str]) -> str:
    return ",".join("?" * len(values))


class Index:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.executescript(SCHEMA)
        self._vectors: tuple[int, list[str], np.ndarray] | None = None

    def close(self) -> None:
        self.db.close()

    # -- writing ------------------------------------------------------------
    def register(self, run_id: str, service: str, started_at: datetime) -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO runs(run_id, service, started_at, has_transcript) VALUES(?,?,?,1) "
                "ON CONFLICT(run_id) DO UPDATE SET has_transcript=1",
                (run_id, service, started_at.isoformat()),
            )

    def upsert_run(
        self,
        rec: RunRecord,
        short_summary: str,
        nodes: Iterable[str],
        doc: IndexDoc,
        actions: list[ActionRow],
    ) -> None:
        """Insert or replace a run, its actions and its search document in one transaction."""
        with self.db:
            self.db.execute(
                "INSERT INTO runs(run_id, service, environment, status, started_at, archived_at,"
                " iterations, root_cause, category, diagnosis_key, synopsis, short_summary, nodes,"
                " pr, summary_source, has_transcript) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(run_id) DO UPDATE SET service=excluded.service,"
                " environment=excluded.environment, status=excluded.status,"
                " started_at=excluded.started_at, archived_at=excluded.archived_at,"
                " iterations=excluded.iterations, root_cause=excluded.root_cause,"
                " category=excluded.category, diagnosis_key=excluded.diagnosis_key,"
                " synopsis=excluded.synopsis, short_summary=excluded.short_summary,"
                " nodes=excluded.nodes, pr=excluded.pr, summary_source=excluded.summary_source,"
                " has_transcript=excluded.has_transcript",
                (
                    rec.run_id,
                    rec.service,
                    rec.environment,
                    rec.status,
                    rec.started_at.isoformat(),
                    rec.archived_at.isoformat() if rec.archived_at else None,
                    rec.iterations,
                    rec.root_cause,
                    rec.category,
                    rec.diagnosis_key,
                    rec.synopsis,
                    short_summary,
                    json.dumps(sorted(set(nodes))),
                    rec.pr,
                    rec.summary_source,
                    int(rec.has_transcript),
                ),
            )
            self.db.execute("DELETE FROM actions WHERE run_id=?", (rec.run_id,))
            self.db.executemany(
                "INSERT INTO actions VALUES(?,?,?,?,?,?,?)",
                [
                    (
                        rec.run_id,
                        a.iteration,
                        a.diagnosis_key,
                        a.fingerprint,
                        a.description,
                        a.result,
                        int(a.failed),
                    )
                    for a in actions
                ],
            )
            self._write_doc(rec.run_id, doc)

    def _rowid(self, run_id: str) -> int | None:
        row = self.db.execute("SELECT rowid FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return row[0] if row else None

    def _write_doc(self, run_id: str, doc: IndexDoc) -> None:
        rowid = self._rowid(run_id)
        self.db.execute("DELETE FROM docs WHERE rowid=?", (rowid,))
        self.db.execute(
            "INSERT INTO docs(rowid, diagnosis, actions, findings, summary, notes) "
            "VALUES(?,?,?,?,?,?)",
            (rowid, doc.diagnosis, doc.actions, doc.findings, doc.summary, doc.notes),
        )

    def add_note(self, run_id: str, at: datetime, text: str) -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO notes(run_id, at, text) VALUES(?,?,?)", (run_id, at.isoformat(), text)
            )
            rowid = self._rowid(run_id)
            row = self.db.execute(
                "SELECT diagnosis, actions, findings, summary FROM docs WHERE rowid=?", (rowid,)
            ).fetchone()
            doc = IndexDoc(*(row if row else ("", "", "", "")), notes="")
            doc.notes = "\n".join(self.notes(run_id))
            self._write_doc(run_id, doc)

    def set_embedding(self, run_id: str, model: str, vector: bytes) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO embeddings VALUES(?,?,?)", (run_id, model, vector)
            )
        self._vectors = None

    def set_transcript(self, run_id: str, present: bool) -> None:
        with self.db:
            self.db.execute(
                "UPDATE runs SET has_transcript=? WHERE run_id=?", (int(present), run_id)
            )

    # -- reading ------------------------------------------------------------
    def get(self, run_id: str) -> RunRecord | None:
        row = self.db.execute(f"SELECT {_COLUMNS} FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return _record(row) if row else None

    def match_id(self, prefix: str) -> list[str]:
        rows = self.db.execute(
            "SELECT run_id FROM runs WHERE run_id LIKE ? ESCAPE '\\' "
            "ORDER BY started_at DESC LIMIT 5",
            (prefix.replace("%", r"\%").replace("_", r"\_") + "%",),
        )
        return [r[0] for r in rows]

    def recent(self, service: str | None = None, limit: int = 20) -> list[RunRecord]:
        where, args = ("WHERE service=?", [service]) if service else ("", [])
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM runs {where} ORDER BY started_at DESC LIMIT ?", (*args, limit)
        )
        return [_record(r) for r in rows]

    def latest_summary(self, service: str) -> tuple[str, str] | None:
        row = self.db.execute(
            "SELECT run_id, short_summary FROM runs WHERE service=? AND archived_at IS NOT NULL "
            "AND short_summary != '' ORDER BY started_at DESC LIMIT 1",
            (service,),
        ).fetchone()
        return (row[0], row[1]) if row else None

    def short_summary(self, run_id: str) -> str:
        row = self.db.execute("SELECT short_summary FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return row[0] if row else ""

    def notes(self, run_id: str) -> list[str]:
        rows = self.db.execute("SELECT text FROM notes WHERE run_id=? ORDER BY id", (run_id,))
        return [r[0] for r in rows]

    def _scope(self, scope: Sequence[str] | None) -> tuple[str, list[str]]:
        if not scope:
            return "", []
        return (
            f" AND (r.service IN ({_in(scope)}) OR r.root_cause IN ({_in(scope)}))",
            [*scope, *scope],
        )

    def keyword(
        self, query: str, limit: int, scope: Sequence[str] | None = None
    ) -> list[tuple[str, float, str]]:
        """(run_id, bm25 score — lower is better, snippet), best first."""
        q = fts_query(query)
        if not q:
            return []
        where, args = self._scope(scope)
        weights = ",".join(str(w) for w in _WEIGHTS)
        rows = self.db.execute(
            f"SELECT r.run_id, bm25(docs, {weights}) AS s, "
            "snippet(docs, -1, '[', ']', '…', 12) FROM docs JOIN runs r ON r.rowid = docs.rowid "
            f"WHERE docs MATCH ?{where} ORDER BY s LIMIT ?",
            (q, *args, limit),
        )
        return [(r[0], float(r[1]), r[2]) for r in rows]

    def semantic(
        self, vector: np.ndarray, model: str, limit: int, scope: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        """(run_id, cosine similarity), best first, over the runs in scope."""
        ids, matrix = self._matrix(model)
        if not ids:
            return []
        sims = matrix @ vector.astype(np.float32)
        if scope:
            allowed = self._in_scope(scope)
            mask = np.fromiter((i in allowed for i in ids), bool, len(ids))
            sims = np.where(mask, sims, -np.inf)
        top = np.argsort(-sims)[:limit]
        return [(ids[i], float(sims[i])) for i in top if np.isfinite(sims[i])]

    def _in_scope(self, scope: Sequence[str]) -> set[str]:
        where, args = self._scope(scope)
        rows = self.db.execute(f"SELECT r.run_id FROM runs r WHERE 1=1{where}", args)
        return {r[0] for r in rows}

    def _matrix(self, model: str) -> tuple[list[str], np.ndarray]:
        count = self.db.execute(
            "SELECT count(*) FROM embeddings WHERE model=?", (model,)
        ).fetchone()[0]
        if self._vectors is None or self._vectors[0] != count:
            rows = self.db.execute(
                "SELECT run_id, vector FROM embeddings WHERE model=?", (model,)
            ).fetchall()
            ids = [r[0] for r in rows]
            matrix = (
                np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(len(rows), -1)
                if rows
                else np.zeros((0, 0), np.float32)
            )
            self._vectors = (count, ids, matrix)
        return self._vectors[1], self._vectors[2]

    def failed_actions(self, scope: Sequence[str]) -> list[sqlite3.Row]:
        where, args = self._scope(scope)
        return self.db.execute(
            "SELECT a.run_id, a.diagnosis_key, a.fingerprint, a.description FROM actions a "
            "JOIN runs r ON r.run_id = a.run_id WHERE a.failed=1 AND a.fingerprint IS NOT NULL "
            f"AND a.diagnosis_key IS NOT NULL{where} ORDER BY r.started_at DESC",
            args,
        ).fetchall()

    def recent_in_scope(self, scope: Sequence[str], limit: int) -> list[RunRecord]:
        where, args = self._scope(scope)
        rows = self.db.execute(
            f"SELECT {', '.join('r.' + c.strip() for c in _COLUMNS.split(','))} FROM runs r "
            f"WHERE r.archived_at IS NOT NULL{where} ORDER BY r.started_at DESC LIMIT ?",
            (*args, limit),
        )
        return [_record(r) for r in rows]

    def records(self, run_ids: Sequence[str]) -> dict[str, RunRecord]:
        if not run_ids:
            return {}
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM runs WHERE run_id IN ({_in(run_ids)})", list(run_ids)
        )
        return {r["run_id"]: _record(r) for r in rows}

    def transcripts(self) -> list[tuple[str, str]]:
        """(run_id, started_at) of runs still holding a transcript, oldest first."""
        rows = self.db.execute(
            "SELECT run_id, started_at FROM runs WHERE has_transcript=1 ORDER BY started_at"
        )
        return [(r[0], r[1]) for r in rows]
