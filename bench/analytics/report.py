"""bench/analytics: checks that Flywheel's columnar engine and DuckDB computed the same
answers (retention counts per cohort, funnel users per step, median step times) and
prints the timing table. Exits 1, printing WRONG, when they differ."""

import argparse
import json
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flywheel", required=True)
    ap.add_argument("--duckdb", required=True)
    ap.add_argument("--out")
    a = ap.parse_args()
    fw = json.load(open(a.flywheel))
    dk = json.load(open(a.duckdb))

    problems = []
    if fw["events"] != dk["events"]:
        problems.append(f"events: flywheel {fw['events']} vs duckdb {dk['events']}")
    fr = {r["day"]: r for r in fw["retention"]}
    dr = {r["day"]: r for r in dk["retention"]}
    if fr.keys() != dr.keys():
        problems.append(f"cohort days differ: {sorted(fr.keys() ^ dr.keys())[:10]}")
    for day in sorted(fr.keys() & dr.keys()):
        x, y = fr[day], dr[day]
        if (x["size"], x["retained"]) != (y["size"], y["retained"]):
            problems.append(f"cohort {day}: flywheel {x['size']} {x['retained']} vs duckdb {y['size']} {y['retained']}")
    if fw["funnel"]["users"] != dk["funnel"]["users"]:
        problems.append(f"funnel users: flywheel {fw['funnel']['users']} vs duckdb {dk['funnel']['users']}")
    for k, (x, y) in enumerate(zip(fw["funnel"]["median_s"], dk["funnel"]["median_s"])):
        if (x is None) != (y is None) or (x is not None and abs(x - y) > 1e-6):
            problems.append(f"funnel step {k + 1} median: flywheel {x} vs duckdb {y}")

    cohorts = len(fr)
    signups = sum(r["size"] for r in fw["retention"])
    print(f"\nanalytics bench: {fw['events']:,} events, {fw['users']:,} users, {cohorts} signup cohorts "
          f"({signups:,} signups); threads: flywheel {fw['threads']}, duckdb {dk['threads']}")
    print(f"load (not in the timings): flywheel {fw['load_s']:.2f} s, duckdb {dk['load_s']:.2f} s\n")
    print(f"{'query (best of ' + str(len(fw['funnel_runs_s'])) + ')':<44} {'flywheel':>10} {'duckdb':>10} {'duckdb/ours':>12}")
    rows = [
        ("D1/D7/D30 retention by signup-day cohort", "retention_s"),
        ("funnel View→Add→Checkout→Order, 24 h window", "funnel_s"),
    ]
    for label, key in rows:
        ratio = dk[key] / fw[key] if fw[key] > 0 else float("inf")
        print(f"{label:<44} {fw[key] * 1000:>8.1f}ms {dk[key] * 1000:>8.1f}ms {ratio:>11.1f}x")
    u = fw["funnel"]["users"]
    med = fw["funnel"]["median_s"]
    print("\nfunnel users per step: " + " → ".join(f"{n:,}" for n in u)
          + "; median s from previous: " + ", ".join("-" if m is None else f"{m:.1f}" for m in med))
    tot = [sum(r["retained"][i] or 0 for r in fw["retention"]) for i in range(len(fw["retention"][0]["retained"]))] if fw["retention"] else []
    print(f"retained users summed over cohorts (reached days only): {tot}")

    result = {"flywheel": {k: fw[k] for k in ("retention_s", "funnel_s", "load_s", "threads")},
              "duckdb": {k: dk[k] for k in ("retention_s", "funnel_s", "load_s", "threads", "engine")},
              "agree": not problems}
    if a.out:
        json.dump(result, open(a.out, "w"), indent=2)
    if problems:
        print("\nWRONG: the engines disagree:", file=sys.stderr)
        for p in problems[:20]:
            print("  " + p, file=sys.stderr)
        sys.exit(1)
    print("\nresults agree: retention counts for every cohort, funnel users and median times per step")


if __name__ == "__main__":
    main()
