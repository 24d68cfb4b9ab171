"""bench/analytics, the DuckDB side: loads the generated events into a native DuckDB table
(not timed against us), then times D1/D7/D30 retention by signup-day cohort and the
4-step window funnel (best of N), and prints JSON in the shape of the Rust side's.

Semantics match crates/analytics/src/columnar (see its docs):
- retention: signup = a user's earliest `Signed Up`; cohort = its shop-local day, only
  if that signup lies in [from, to); retained on day N = any event on day cohort + N;
  cohort + N after `today` is n/a.
- funnel: every `Product Viewed` in [from, to) is an entry; each next step is the
  earliest event of its name at or after the previous step's time (ASOF join), and the
  path reaches step k when t_k - t_1 <= window; a user's depth is the max over entries,
  the step times are those of the earliest entry reaching that depth.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa


def load(con, data: Path, tz: str):
    user = np.fromfile(data / "user.u32", dtype="<u4")
    ts = np.fromfile(data / "ts.i64", dtype="<i8")
    name = np.fromfile(data / "name.u16", dtype="<u2")
    raw = pa.table({"user_id": user, "ts": ts, "name": name})
    del user, ts, name
    con.register("raw", raw)
    # The shop-local day, computed once at load (as EventColumns does), in the shop
    # timezone via ICU.
    con.execute(
        f"""CREATE TABLE events AS
            SELECT user_id, ts, name,
                   (timezone('{tz}', epoch_ms(ts)::TIMESTAMPTZ)::DATE - DATE '1970-01-01')::INTEGER AS day
            FROM raw"""
    )
    con.unregister("raw")
    del raw


RETENTION = """
WITH signup AS (
    SELECT user_id, min(ts) AS t, arg_min(day, ts) AS cohort
    FROM events WHERE name IN ({signup}) GROUP BY user_id
), cohort AS (
    SELECT user_id, cohort FROM signup WHERE t >= {frm} AND t < {to}
), hits AS (
    SELECT e.user_id,
           {hit_cols}
    FROM events e JOIN cohort c USING (user_id)
    WHERE e.day - c.cohort IN ({days})
    GROUP BY e.user_id
)
SELECT c.cohort, count(*) AS size, {sum_cols}
FROM cohort c LEFT JOIN hits h USING (user_id)
GROUP BY c.cohort ORDER BY c.cohort
"""

FUNNEL = """
WITH s1 AS (
    SELECT user_id, ts AS t1 FROM events WHERE name = {s1} AND ts >= {frm} AND ts < {to}
), e2 AS (SELECT user_id, ts FROM events WHERE name = {s2}
), e3 AS (SELECT user_id, ts FROM events WHERE name = {s3}
), e4 AS (SELECT user_id, ts FROM events WHERE name = {s4}
), p2 AS (
    SELECT s1.user_id, s1.t1, e2.ts AS t2
    FROM s1 ASOF LEFT JOIN e2 ON s1.user_id = e2.user_id AND s1.t1 <= e2.ts
), p3 AS (
    SELECT p2.*, e3.ts AS t3
    FROM p2 ASOF LEFT JOIN e3 ON p2.user_id = e3.user_id AND p2.t2 <= e3.ts
), p4 AS (
    SELECT p3.*, e4.ts AS t4
    FROM p3 ASOF LEFT JOIN e4 ON p3.user_id = e4.user_id AND p3.t3 <= e4.ts
), paths AS (
    SELECT user_id, t1,
           CASE WHEN t2 IS NULL OR t2 - t1 > {w} THEN 1
                WHEN t3 IS NULL OR t3 - t1 > {w} THEN 2
                WHEN t4 IS NULL OR t4 - t1 > {w} THEN 3
                ELSE 4 END AS depth,
           t2 - t1 AS g2, t3 - t2 AS g3, t4 - t3 AS g4
    FROM p4
), best AS (
    -- deepest path, earliest entry among equals
    SELECT user_id, max(depth) AS depth,
           arg_min({{'g2': g2, 'g3': g3, 'g4': g4}}, (4 - depth) * 1099511627776 + (t1 - {frm})) AS g
    FROM paths GROUP BY user_id
)
SELECT count(*) AS u1,
       count(*) FILTER (WHERE depth >= 2) AS u2,
       count(*) FILTER (WHERE depth >= 3) AS u3,
       count(*) FILTER (WHERE depth >= 4) AS u4,
       quantile_cont(g.g2, 0.5) FILTER (WHERE depth >= 2) AS m2,
       quantile_cont(g.g3, 0.5) FILTER (WHERE depth >= 3) AS m3,
       quantile_cont(g.g4, 0.5) FILTER (WHERE depth >= 4) AS m4
FROM best
"""


def best_of(runs, f):
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return min(times), times, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--memory-limit", default="8GB")
    a = ap.parse_args()
    m = json.loads((a.data / "manifest.json").read_text())

    con = duckdb.connect()
    con.execute(f"SET threads = {a.threads}")
    con.execute(f"SET memory_limit = '{a.memory_limit}'")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = false")
    t = time.perf_counter()
    load(con, a.data, m["tz"])
    load_s = time.perf_counter() - t
    n = con.execute("SELECT count(*) FROM events").fetchone()[0]
    print(f"duckdb {duckdb.__version__}: {n} events loaded in {load_s:.2f} s, threads={a.threads}", file=sys.stderr)

    days = m["days"]
    ret_sql = RETENTION.format(
        signup=", ".join(map(str, m["signup"])),
        frm=m["from"],
        to=m["to"],
        days=", ".join(map(str, days)),
        hit_cols=",\n           ".join(f"bool_or(e.day - c.cohort = {d}) AS d{i}" for i, d in enumerate(days)),
        sum_cols=", ".join(f"count(*) FILTER (WHERE h.d{i}) AS r{i}" for i in range(len(days))),
    )
    s = m["funnel"]
    fun_sql = FUNNEL.format(s1=s[0], s2=s[1], s3=s[2], s4=s[3], frm=m["from"], to=m["to"], w=m["window_ms"])

    ret_best, ret_times, rows = best_of(a.runs, lambda: con.execute(ret_sql).fetchall())
    fun_best, fun_times, f = best_of(a.runs, lambda: con.execute(fun_sql).fetchone())

    today = m["today"]
    retention = [
        {
            "day": r[0],
            "size": r[1],
            "retained": [None if r[0] + d > today else r[2 + i] for i, d in enumerate(days)],
        }
        for r in rows
    ]
    out = {
        "engine": f"duckdb {duckdb.__version__}",
        "threads": a.threads,
        "events": n,
        "load_s": load_s,
        "retention_s": ret_best,
        "retention_runs_s": ret_times,
        "funnel_s": fun_best,
        "funnel_runs_s": fun_times,
        "retention": retention,
        "funnel": {
            "users": list(f[0:4]),
            "median_s": [None] + [None if x is None else x / 1000.0 for x in f[4:7]],
        },
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
