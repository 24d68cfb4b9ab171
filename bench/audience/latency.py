#!/usr/bin/env python3
"""Segment-entry latency of a running Flywheel server, over loopback HTTP.

For N new users one after another: POST an `Order Completed` of 2000 元 to /v1/track, then
poll GET /api/v1/audience/transitions until the user's `tag.added 高價值客戶` shows up.
Prints the time from the tracking answer to the transition being visible (p50, p99, max).
The engine publishes the transition on the bus at the same moment it records it, so this is
an upper bound of event → bus latency (it adds the polling interval, 2 ms).

Usage: latency.py --url http://127.0.0.1:8080 --token ADMIN_TOKEN --key WRITE_KEY [-n 200]
"""

import argparse
import base64
import json
import statistics
import time
import urllib.request
import uuid


def call(url, body=None, auth=None):
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", "Authorization": auth})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("-n", type=int, default=200)
    a = ap.parse_args()
    admin = f"Bearer {a.token}"
    basic = "Basic " + base64.b64encode(f"{a.key}:".encode()).decode()
    seq = max([t["seq"] for t in call(f"{a.url}/api/v1/audience/transitions?limit=1000", auth=admin)["transitions"]] or [0])
    run = uuid.uuid4().hex[:8]
    lat = []
    for i in range(a.n):
        user = f"lat-{run}-{i}"
        call(f"{a.url}/v1/track", {"userId": user, "event": "Order Completed",
                                   "properties": {"order_id": f"{user}-o", "total": 2000}}, auth=basic)
        acked = time.perf_counter()
        while True:
            ts = call(f"{a.url}/api/v1/audience/transitions?after={seq}&limit=1000", auth=admin)["transitions"]
            if ts:
                seq = ts[-1]["seq"]
            if any(t["profile_id"] == f"user:{user}" and t["name"] == "高價值客戶" for t in ts):
                lat.append((time.perf_counter() - acked) * 1000)
                break
            if time.perf_counter() - acked > 5:
                raise SystemExit(f"no transition for {user} within 5 s")
            time.sleep(0.002)
    lat.sort()
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    print(f"event → 高價值客戶 tag.added visible, {a.n} users: p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, "
          f"max {lat[-1]:.1f} ms, mean {statistics.mean(lat):.1f} ms")


if __name__ == "__main__":
    main()
