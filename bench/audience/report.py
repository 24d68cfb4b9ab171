#!/usr/bin/env python3
"""Combine the Flywheel and peer results of the audience benchmark into one table and one JSON file.

Usage: report.py --manifest DATA/manifest.json --peers peers.json [--flywheel flywheel.json] --out result.json
Exits 1 when the segment counts or the RFM checksums of the engines disagree.
"""

import argparse
import json
import os
import platform
import sys

SEGMENT_RATIO_TARGET = 10.0  # DuckDB / Flywheel
SEGMENT_MS_TARGET = 50.0
RFM_RATIO_TARGET = 1.0  # peer / Flywheel
RSS_MIB_TARGET = 2048.0


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            mem = int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_bytes": mem, "os": platform.platform()}


def verdict(ok):
    return "PASS" if ok else "MISS"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--peers", required=True)
    ap.add_argument("--flywheel")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    with open(a.manifest, encoding="utf-8") as f:
        params = json.load(f)["params"]
    with open(a.peers, encoding="utf-8") as f:
        peers = json.load(f)
    fw = None
    if a.flywheel:
        with open(a.flywheel, encoding="utf-8") as f:
            fw = json.load(f)

    ps, pr, v = peers["segment"], peers["rfm"], peers["versions"]
    problems, targets = [], {}
    lines = []
    w = lines.append
    w(f"audience benchmark: {params['profiles']:,} profiles; RFM over {params['orders']:,} orders of "
      f"{params['users']:,} users ({pr['buyers']:,} buyers); {peers['threads']} threads")
    w("")
    w(f"segment count, 5 conditions ({ps['selectivity']['all five']:.2%} of profiles match)")
    w(f"  {'':28s}{'median ms':>12s}{'min ms':>12s}")
    fs = fr = None
    if fw:
        fs, fr = fw["segment"], fw["rfm"]
        w(f"  {'flywheel':28s}{fs['flywheel_ms']['median']:12.3f}{fs['flywheel_ms']['min']:12.3f}")
    w(f"  {'duckdb ' + v['duckdb']:28s}{ps['duckdb_ms']['median']:12.3f}{ps['duckdb_ms']['min']:12.3f}")
    if "polars_ms" in ps:
        w(f"  {'polars ' + v['polars'] + ' (reference)':28s}{ps['polars_ms']['median']:12.3f}{ps['polars_ms']['min']:12.3f}")
    if fw:
        ratio = ps["duckdb_ms"]["median"] / fs["flywheel_ms"]["median"]
        ok = ratio >= SEGMENT_RATIO_TARGET
        targets["segment_vs_duckdb"] = {"ratio": round(ratio, 3), "target": SEGMENT_RATIO_TARGET, "met": ok}
        w(f"  {'duckdb / flywheel':28s}{ratio:11.1f}x   target >= {SEGMENT_RATIO_TARGET:g}x   {verdict(ok)}")
        if "polars_ms" in ps:
            w(f"  {'polars / flywheel':28s}{ps['polars_ms']['median'] / fs['flywheel_ms']['median']:11.1f}x")
        ms = fs["flywheel_ms"]["median"]
        ok = ms <= SEGMENT_MS_TARGET
        targets["segment_ms"] = {"median_ms": ms, "target": SEGMENT_MS_TARGET, "met": ok}
        w(f"  {'flywheel absolute':28s}{ms:9.3f} ms   target <= {SEGMENT_MS_TARGET:g} ms  {verdict(ok)}")
        if fs["count"] != ps["count"]:
            problems.append(f"segment count: flywheel {fs['count']:,} != duckdb {ps['count']:,}")
            w(f"  count                       MISMATCH flywheel {fs['count']:,} != duckdb {ps['count']:,}")
        else:
            w(f"  {'count':28s}{ps['count']:>12,}   flywheel = duckdb = polars")
    else:
        w(f"  {'count':28s}{ps['count']:>12,}   duckdb = polars")
    w("")
    w("RFM scores (quintile breakpoints over buyers)")
    w(f"  {'':28s}{'median ms':>12s}{'min ms':>12s}")
    if fw:
        w(f"  {'flywheel':28s}{fr['flywheel_ms']['median']:12.1f}{fr['flywheel_ms']['min']:12.1f}")
    w(f"  {'duckdb ' + v['duckdb']:28s}{pr['duckdb_ms']['median']:12.1f}{pr['duckdb_ms']['min']:12.1f}")
    w(f"  {'polars ' + v['polars']:28s}{pr['polars_ms']['median']:12.1f}{pr['polars_ms']['min']:12.1f}")
    if fw:
        for peer in ("duckdb", "polars"):
            ratio = pr[f"{peer}_ms"]["median"] / fr["flywheel_ms"]["median"]
            ok = ratio >= RFM_RATIO_TARGET
            targets[f"rfm_vs_{peer}"] = {"ratio": round(ratio, 3), "target": RFM_RATIO_TARGET, "met": ok}
            w(f"  {peer + ' / flywheel':28s}{ratio:11.2f}x   target >= {RFM_RATIO_TARGET:g}x    {verdict(ok)}")
        if (fr["checksum"], fr["buyers"]) != (pr["checksum"], pr["buyers"]):
            problems.append(f"RFM checksum/buyers: flywheel {fr['checksum']}/{fr['buyers']} != "
                            f"peers {pr['checksum']}/{pr['buyers']}")
            w(f"  checksum                    MISMATCH flywheel {fr['checksum']}/{fr['buyers']} != "
              f"duckdb = polars {pr['checksum']}/{pr['buyers']}")
        else:
            w(f"  {'checksum':28s}{pr['checksum']:>12}   flywheel = duckdb = polars = numpy")
        w("")
        w("profile index")
        rss_mib = fs["rss_bytes"] / 2**20
        ok = rss_mib <= RSS_MIB_TARGET
        targets["index_rss"] = {"mib": round(rss_mib, 1), "target": RSS_MIB_TARGET, "met": ok}
        w(f"  {'RSS':28s}{rss_mib:9.0f} MiB  target <= {RSS_MIB_TARGET:g} MiB {verdict(ok)}")
        if "index_build_ms" in fs:
            w(f"  {'build':28s}{fs['index_build_ms']:9.0f} ms")
    else:
        w(f"  {'checksum':28s}{pr['checksum']:>12}   duckdb = polars = numpy")
        w("")
        w("(--peers-only: no Flywheel figures, no ratios)")
    if problems:
        w("")
        for p in problems:
            w(f"*** MISMATCH: {p} ***")
    print("\n".join(lines))

    result = {"params": params, "machine": machine(), "peers": peers, "flywheel": fw, "targets": targets,
              "agree": not problems, "problems": problems}
    tmp = a.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, indent=1)
    os.replace(tmp, a.out)
    print(f"\nsaved {a.out}")
    if problems:
        print("MISMATCH: the engines disagree; see above", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
