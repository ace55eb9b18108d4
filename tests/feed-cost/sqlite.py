"""The change feed's cost on SQLite's write path, side by side in one run.

Alternates each write as the store sent it before the feed, on a database at migration 5
(one autocommit statement), and as it sends it now, on a database at migration 6 (a create
or an update is the same one statement, numbered by the triggers; a delete is BEGIN
IMMEDIATE, the user's next number with the prune, the DELETE, the tombstone, COMMIT), and
prints the mean and median latency of each. Both databases are WAL files side by side. Python's sqlite3 stands in for Spin's host calls (each one
statement), so the figures are the database's share of a request, not a request's.

    python3 tests/feed-cost/sqlite.py            # 3,000 rounds per operation
    ROUNDS=10000 python3 tests/feed-cost/sqlite.py
"""

import os
import pathlib
import random
import sqlite3
import statistics
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
MIGRATIONS = sorted((HERE / "../../core/migrations/sqlite").glob("*.sql"))
ROUNDS = int(os.environ.get("ROUNDS", "3000"))
COLS = ("id, user_id, title, title_fold, description, description_fold, completed, "
        "priority, due_date, created_at, updated_at, completed_at, version")
RET = ("id, user_id, title, description, completed, priority, due_date, created_at, "
       "updated_at, completed_at, version")
BUMP_PRUNE = ("INSERT INTO task_feeds (user_id, seq, epoch) VALUES (?1, 1, 7) ON CONFLICT (user_id) "
              "DO UPDATE SET seq = task_feeds.seq + 1, pruned_seq = MAX(task_feeds.pruned_seq, "
              "COALESCE((SELECT max(d.seq) FROM task_tombstones d WHERE d.user_id = ?1 AND "
              "d.deleted_at < ?2), 0)) RETURNING seq")
NOW = 1795256130123


def insert(db, tid, seq=None):
    if seq is None:
        sql = f"INSERT INTO tasks ({COLS}) VALUES (?1, 'u1', 'Buy milk', 'buy milk', NULL, NULL, 0, 2, NULL, {NOW}, {NOW}, NULL, 1) RETURNING {RET}"
        return db.execute(sql, (tid,)).fetchall()
    # As the store writes it now: a placeholder number, which the trigger replaces.
    sql = f"INSERT INTO tasks ({COLS}, change_seq) VALUES (?1, 'u1', 'Buy milk', 'buy milk', NULL, NULL, 0, 2, NULL, {NOW}, {NOW}, NULL, 1, 0) RETURNING {RET}"
    return db.execute(sql, (tid,)).fetchall()


def update(db, tid, seq=None):
    extra, args = ("", (tid,))
    sql = (f"UPDATE tasks SET completed = NOT completed, completed_at = CASE WHEN completed THEN NULL "
           f"ELSE {NOW} END, updated_at = MAX(updated_at, {NOW}), version = version + 1{extra} "
           f"WHERE id = ?1 AND user_id = 'u1' RETURNING {RET}")
    return db.execute(sql, args).fetchall()


def delete(db, tid):
    return db.execute("DELETE FROM tasks WHERE id = ?1 AND user_id = 'u1' RETURNING id", (tid,)).fetchall()


def before(db, op, tid):
    {"create": insert, "update": update, "delete": delete}[op](db, tid)


def after(db, op, tid):
    if op != "delete":
        # One statement; the triggers of migration 0006 take the number.
        (insert if op == "create" else update)(db, tid, 0)
        return
    db.execute("BEGIN IMMEDIATE")
    (seq,), = db.execute(BUMP_PRUNE, ("u1", NOW - 30 * 86_400_000)).fetchall()
    db.execute("DELETE FROM task_tombstones WHERE user_id = 'u1' AND deleted_at < ?1",
               (NOW - 30 * 86_400_000,))
    if delete(db, tid):
        db.execute("INSERT INTO task_tombstones (user_id, seq, task_id, deleted_at) VALUES "
                   "('u1', ?1, ?2, ?3) ON CONFLICT DO NOTHING", (seq, tid, NOW))
    db.execute("COMMIT")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        dbs = {}
        for side, migrations in [("before", MIGRATIONS[:5]), ("after", MIGRATIONS)]:
            db = sqlite3.connect(os.path.join(tmp, f"{side}.db"), isolation_level=None)
            db.execute("PRAGMA journal_mode = WAL")
            for m in migrations:
                db.executescript(m.read_text())
            dbs[side] = db
        rng = random.Random(20261201)
        ids = {"before": [], "after": []}
        print(f"SQLite {sqlite3.sqlite_version}, {ROUNDS} rounds per operation, WAL, synchronous default")
        for op in ["create", "update", "delete"]:
            times = {"before": [], "after": []}
            for i in range(ROUNDS):
                for side in (["before", "after"] if i % 2 == 0 else ["after", "before"]):
                    if op == "create":
                        tid = rng.randrange(1, 2**53)
                        ids[side].append(tid)
                    elif op == "update":
                        tid = ids[side][i % len(ids[side])]
                    else:
                        tid = ids[side].pop()
                    t = time.perf_counter()
                    (before if side == "before" else after)(dbs[side], op, tid)
                    times[side].append(time.perf_counter() - t)
            b, a = times["before"], times["after"]
            print(f"{op:6}  before: mean {statistics.mean(b)*1e6:7.1f} µs, median {statistics.median(b)*1e6:7.1f} µs"
                  f"   after: mean {statistics.mean(a)*1e6:7.1f} µs, median {statistics.median(a)*1e6:7.1f} µs"
                  f"   ratio of means {statistics.mean(a)/statistics.mean(b):.2f}")


main()
