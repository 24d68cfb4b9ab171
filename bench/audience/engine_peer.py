#!/usr/bin/env python3
"""Peer side of `run --engine`: the same segment count in DuckDB, from the raw facts the engine folded.

Reads `profiles.csv` (profile, gender, city, last_active) and `orders.csv` (profile, ts, total)
written by the Flywheel side, loads them into an in-memory DuckDB (not timed), times the count
(one warm-up, then `--runs` timed runs) and prints one JSON object. DuckDB computes spend(30d)
from the orders at query time, as the engine's definition says: the sum of order totals placed
after now − 30 days (rolling), per profile.

With `--flywheel FILE` (the Flywheel side's JSON) it prints both side by side, writes the
combined JSON to `--out`, and exits 1 printing MISMATCH when the counts differ.

Usage: engine_peer.py --dir DIR [--runs 7] [--threads T] [--flywheel FILE --out FILE]
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

import duckdb

NOW_MS = 1_735_660_800_000
DAY = 86_400_000


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--flywheel")
    ap.add_argument("--out")
    a = ap.parse_args()
    con = duckdb.connect()
    con.execute(f"SET threads = {a.threads}")
    t = time.perf_counter()
    con.execute(
        "CREATE TABLE profiles AS SELECT * FROM read_csv(?, header = true, columns = "
        "{'profile': 'VARCHAR', 'gender': 'VARCHAR', 'city': 'VARCHAR', 'last_active': 'BIGINT'})",
        [os.path.join(a.dir, "profiles.csv")],
    )
    con.execute(
        "CREATE TABLE orders AS SELECT * FROM read_csv(?, header = true, columns = "
        "{'profile': 'VARCHAR', 'ts': 'BIGINT', 'total': 'BIGINT'})",
        [os.path.join(a.dir, "orders.csv")],
    )
    load_ms = (time.perf_counter() - t) * 1000.0
    start = NOW_MS - 30 * DAY
    sql = f"""
        SELECT count(*) FROM profiles p
        JOIN (SELECT profile, sum(total) AS spend FROM orders WHERE ts > {start} GROUP BY profile) s
          ON s.profile = p.profile
        WHERE s.spend > 50000
          AND p.last_active > {start}
          AND p.city IN ('上海', '北京', '廣州')
          AND p.gender = '女'
    """
    count = con.execute(sql).fetchone()[0]
    ms = []
    for _ in range(a.runs):
        t = time.perf_counter()
        count = con.execute(sql).fetchone()[0]
        ms.append((time.perf_counter() - t) * 1000.0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    peer = {
        "count": count,
        "ms": {"median": round(statistics.median(ms), 3), "min": round(min(ms), 3), "runs": [round(x, 3) for x in ms]},
        "load_ms": round(load_ms),
        "peak_rss_bytes": rss,
        "sql": " ".join(sql.split()),
        "threads": a.threads,
    }
    if not a.flywheel:
        print(json.dumps({"duckdb": peer}))
        return 0
    with open(a.flywheel, encoding="utf-8") as f:
        fw = json.load(f)
    result = {"flywheel": fw, "duckdb": peer}
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2, ensure_ascii=False)
    n = fw["profiles"]
    seg = fw["segment"]
    print(f"audience engine: {n:,} profiles, {fw['events']:,} events folded through the engine in {fw['fold_ms'] / 1000:.1f} s")
    print(f"  heap after folding        {fw['heap_bytes_per_profile']:>8.0f} bytes/profile")
    loaded = fw.get("after_snapshot_load")
    if loaded:
        print(f"  heap after snapshot load  {loaded['heap_bytes_per_profile']:>8.0f} bytes/profile")
        for k, v in loaded["breakdown_bytes_per_profile"].items():
            print(f"    {k:24}{v:>8.0f}")
        print(f"  process RSS after load    {loaded['rss_bytes'] / n:>8.0f} bytes/profile ({loaded['rss_bytes'] / 2**20:.0f} MiB)")
    snap = fw.get("snapshot")
    if snap:
        print(f"  snapshot {snap['bytes'] / 2**20:.0f} MiB: save {snap['save_ms'] / 1000:.1f} s, load {snap['load_ms'] / 1000:.1f} s")
    fm = seg["flywheel_ms"]["median"]
    print(f"  segment count             flywheel {fm:.3f} ms  duckdb {peer['ms']['median']:.3f} ms  (x{peer['ms']['median'] / max(fm, 1e-9):.1f})")
    print(f"  count                     flywheel {seg['count']}  duckdb {count}")
    if seg["count"] != count:
        print("MISMATCH: the segment counts differ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
