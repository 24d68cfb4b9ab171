"""One person, one row, end to end (docs/analytics.md, "Who is counted"): the real binary
on SQLite and PostgreSQL, a seeded shop sent through the tracking API, and every report
held to an independent computation written here from the fixture's raw messages.

The shop has anonymous browsing before a sign-in, sign-ins (identify linking an
anonymousId to a userId), `alias` calls joining two user ids (some after both had
ordered), guest orders (anonymousId only), guests who sign in only after the period,
zero-value orders, partial and full refunds (one full by two partial refunds),
cancellations, and a CLV refresh (`report ltv --clv --save-traits`: identify calls the
system writes itself).

The independent side resolves identities with its own union-find over every message's
ids (an identify or any call with both ids joins them; an alias joins previousId to
userId; the canonical id of a person is its lowest user id, else its lowest anonymous id)
and computes, per person: KPIs (GMV, net revenue, orders, buyers, repeat buyers and
復購率, new and returning buyers, visitors, conversion, AOV), funnel step counts, D-N
retention by signup day, and the RFM/CLV inputs (frequency, recency, T, monetary). The
CLV refresh must change none of the activity numbers: visitors, retention and the
lifecycle stage counts are taken before and after it and must be equal.

    FLYWHEEL_BIN=target/debug/flywheel pytest -q tests/people
"""

import json
import random
import subprocess
import sys
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from flywheel_server import IN_CI, PG_URL, Server, pg_reachable, stores, wait_until  # noqa: E402

SHANGHAI = timezone(timedelta(hours=8))  # Asia/Shanghai has had no DST since 1991
SEED = 20261016
SHOPPERS = 180
FIRST = datetime(2026, 9, 1, tzinfo=SHANGHAI)
PERIOD = (date(2026, 10, 1), date(2026, 10, 31))
STEPS = ["Product Viewed", "Product Added", "Order Completed"]
WINDOW_HOURS = 72
DAYS = [1, 7]
STAGES = ["新用戶", "活躍用戶", "沉睡用戶", "流失用戶", "高價值用戶", "留存用戶"]


# ---------------------------------------------------------------- the fixture


class Shop:
    """Builds the messages: every one with a unique second, in time order when sent."""

    def __init__(self, rng):
        self.rng = rng
        self.messages = []
        self.used = set()
        self.orders = 0

    def at(self, t):
        ms = int(t.timestamp())
        while ms in self.used:
            ms += 1
        self.used.add(ms)
        return datetime.fromtimestamp(ms, SHANGHAI)

    def send(self, t, msg, user=None, anon=None):
        t = self.at(t)
        if user is not None:
            msg["userId"] = user
        if anon is not None:
            msg["anonymousId"] = anon
        msg["timestamp"] = t.isoformat()
        msg["messageId"] = f"m{len(self.messages):05d}"
        self.messages.append(msg)
        return t

    def track(self, t, name, props, user=None, anon=None):
        return self.send(t, {"type": "track", "event": name, "properties": props}, user, anon)

    def order(self, t, user=None, anon=None):
        """An order with its fate: 12 % zero-value (first or repeat orders alike); 10 %
        cancelled, 10 % refunded in full, 10 % partly, 4 % refunded in full by two partial
        refunds."""
        self.orders += 1
        oid = f"o{self.orders:04d}"
        total = 0 if self.rng.random() < 0.12 else self.rng.randint(10, 500)
        t = self.track(t, "Order Completed", {"order_id": oid, "total": total, "products": []}, user, anon)
        later = t + timedelta(minutes=self.rng.randint(5, 600))
        fate = self.rng.random()
        if fate < 0.1:
            self.track(later, "Order Cancelled", {"order_id": oid}, user, anon)
        elif fate < 0.2:
            self.track(later, "Order Refunded", {"order_id": oid}, user, anon)
        elif fate < 0.3 and total > 1:
            self.track(later, "Order Refunded", {"order_id": oid, "total": self.rng.randint(1, total - 1)}, user, anon)
        elif fate < 0.34 and total > 1:
            half = total // 2 + 1
            self.track(later, "Order Refunded", {"order_id": oid, "total": half}, user, anon)
            self.track(later + timedelta(hours=1), "Order Refunded", {"order_id": oid, "total": half}, user, anon)
        return t

    def session(self, t, user=None, anon=None, buy=0.5):
        """A page, a product view, maybe an add to cart, maybe an order (within hours)."""
        r = self.rng
        t = self.send(t, {"type": "page", "name": "Home"}, user, anon)
        t = self.track(t + timedelta(minutes=r.randint(1, 30)), "Product Viewed", {"product_id": "p1"}, user, anon)
        if r.random() < 0.6:
            t = self.track(t + timedelta(minutes=r.randint(1, 240)), "Product Added", {"product_id": "p1"}, user, anon)
            if r.random() < buy:
                # Now and then past the funnel's window: no conversion, still an order.
                gap = timedelta(hours=r.choice([1, 2, 5, 20, 80]))
                self.order(t + gap, user, anon)


def day_time(rng, start, days):
    return start + timedelta(days=rng.randint(0, days), hours=rng.randint(8, 23), minutes=rng.randint(0, 59))


def build_shop():
    rng = random.Random(SEED)
    shop = Shop(rng)
    for i in range(SHOPPERS):
        anon, user = f"a{i:03d}", f"u{i:03d}"
        kind = rng.choices(["member", "guest", "alias", "late", "browser"], [35, 20, 15, 10, 20])[0]
        visits = sorted(day_time(rng, FIRST, 66) for _ in range(rng.randint(1, 5)))
        if kind == "member":
            # Browses logged out, signs up (identify + Signed Up), then shops signed in.
            shop.session(visits[0], anon=anon, buy=0)
            t = visits[0] + timedelta(hours=1)
            shop.send(t, {"type": "identify", "traits": {"name": user}}, user, anon)
            shop.track(t + timedelta(minutes=1), "Signed Up", {}, user, anon)
            shop.session(t + timedelta(minutes=2), anon=anon, buy=0.4)  # logged out again
            for v in visits[1:]:
                shop.session(v, user=user, anon=anon if rng.random() < 0.5 else None)
        elif kind == "guest":
            for v in visits:
                shop.session(v, anon=anon, buy=0.7)
        elif kind == "alias":
            # Two user ids (u…, u…b), each ordering; an alias joins them, in the period
            # or weeks after it.
            shop.send(visits[0], {"type": "identify"}, user, anon)
            shop.track(visits[0] + timedelta(minutes=1), "Signed Up", {}, user)
            for n, v in enumerate(visits):
                shop.session(v + timedelta(hours=2), user=user if n % 2 == 0 else user + "b", buy=0.8)
            when = rng.choice([visits[-1] + timedelta(days=1), datetime(2026, 11, 20, 12, tzinfo=SHANGHAI)])
            shop.send(when, {"type": "alias", "previousId": user}, user + "b")
        elif kind == "late":
            # A guest in the period who signs in (and signs up) only weeks later.
            for v in visits:
                shop.session(v, anon=anon, buy=0.7)
            t = datetime(2026, 11, 1, 9, tzinfo=SHANGHAI) + timedelta(days=rng.randint(0, 20))
            shop.send(t, {"type": "identify"}, user, anon)
            shop.track(t + timedelta(minutes=1), "Signed Up", {}, user)
            shop.session(t + timedelta(days=1), user=user, buy=0.3)
        else:
            # Browsers: page views only; some on two devices never linked (two persons).
            for v in visits:
                shop.send(v, {"type": "page", "name": "Home"}, anon=anon)
            if rng.random() < 0.3:
                shop.send(visits[-1] + timedelta(hours=3), {"type": "page", "name": "Home"}, anon=anon + "x")
    shop.messages.sort(key=lambda m: m["timestamp"])
    return shop.messages


# ---------------------------------------------------------------- the independent side


def ms(ts):
    return int(datetime.fromisoformat(ts).timestamp() * 1000)


def local_day(t_ms):
    return datetime.fromtimestamp(t_ms / 1000, SHANGHAI).date()


def day_start(d):
    return int(datetime(d.year, d.month, d.day, tzinfo=SHANGHAI).timestamp() * 1000)


class People:
    """Union-find over identity keys; a set's id is its lowest user id, else lowest
    anonymous id."""

    def __init__(self, messages):
        self.parent = {}
        for m in messages:
            ids = self.ids(m)
            for k in ids:
                self.parent.setdefault(k, k)
            for k in ids[1:]:
                self.union(ids[0], k)

    @staticmethod
    def ids(m):
        out = []
        if m.get("userId"):
            out.append(("user", m["userId"]))
        if m.get("anonymousId"):
            out.append(("anon", m["anonymousId"]))
        if m["type"] == "alias" and m.get("previousId") and m.get("previousId") != m.get("anonymousId"):
            out.append(("user", m["previousId"]))
        return out

    def find(self, k):
        while self.parent[k] != k:
            self.parent[k] = self.parent[self.parent[k]]
            k = self.parent[k]
        return k

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            rank = lambda k: (0 if k[0] == "user" else 1, k[1])  # noqa: E731
            lo, hi = sorted([ra, rb], key=rank)
            self.parent[hi] = lo

    def of(self, m):
        k = ("user", m["userId"]) if m.get("userId") else ("anon", m["anonymousId"])
        root = self.find(k)
        return f"{root[0]}:{root[1]}"


class Expected:
    def __init__(self, messages):
        self.people = People(messages)
        self.events = [(self.people.of(m), ms(m["timestamp"]), m) for m in messages]
        orders, refunds, cancelled = {}, defaultdict(int), set()
        for person, t, m in self.events:
            if m["type"] != "track":
                continue
            p = m["properties"]
            if m["event"] == "Order Completed":
                orders[p["order_id"]] = {"person": person, "at": t, "total": p["total"] * 100}
            elif m["event"] == "Order Refunded":
                # Without an amount, the whole order (any amount is capped at the total).
                refunds[p["order_id"]] += p["total"] * 100 if "total" in p else 10**12
            elif m["event"] == "Order Cancelled":
                cancelled.add(p["order_id"])
        for oid, o in orders.items():
            o["refunded"] = max(0, min(refunds[oid], o["total"]))
            o["cancelled"] = oid in cancelled
            o["purchase"] = not o["cancelled"] and (o["total"] == 0 or o["refunded"] < o["total"])
        self.orders = list(orders.values())
        self.first_purchase = {}
        for o in self.orders:
            if o["purchase"]:
                f = self.first_purchase.get(o["person"])
                self.first_purchase[o["person"]] = o["at"] if f is None else min(f, o["at"])

    def visitors(self, frm, to):
        return len({p for p, t, _ in self.events if frm <= t < to})

    def kpis(self, frm, to):
        placed = [o for o in self.orders if frm <= o["at"] < to and not o["cancelled"]]
        gmv = sum(o["total"] for o in placed)
        per = defaultdict(int)
        for o in placed:
            if o["purchase"]:
                per[o["person"]] += 1
        buyers = len(per)
        repeat = sum(1 for n in per.values() if n >= 2)
        new = sum(1 for p in per if frm <= self.first_purchase[p] < to)
        visitors = self.visitors(frm, to)
        ratio = lambda a, b: a / b if b else None  # noqa: E731
        return {
            "gmv": gmv,
            "net_revenue": gmv - sum(o["refunded"] for o in placed),
            "orders": len(placed),
            "buyers": buyers,
            # The documented AOV: GMV ÷ orders in whole fen, as the report rounds it.
            "aov": (2 * gmv + len(placed)) // (2 * len(placed)) if placed else None,  # half-up to the fen
            "repeat_buyers": repeat,
            "repurchase_rate": ratio(repeat, buyers),
            "new_buyers": new,
            "returning_buyers": buyers - new,
            "visitors": visitors,
            "conversion": ratio(buyers, visitors),
        }

    def funnel(self, frm, to, steps, window_ms):
        by_person = defaultdict(list)
        for p, t, m in self.events:
            if m["type"] == "track" and m["event"] in steps and frm <= t < to + window_ms:
                by_person[p].append((t, m["event"]))
        reached = [0] * len(steps)
        for evs in by_person.values():
            evs.sort()
            depth = 0
            for t1, name in evs:
                if name != steps[0] or not frm <= t1 < to:
                    continue
                d, cur = 1, t1
                for step in steps[1:]:
                    nxt = [t for t, n in evs if n == step and t >= cur and t - t1 <= window_ms]
                    if not nxt:
                        break
                    d, cur = d + 1, min(nxt)
                depth = max(depth, d)
            for k in range(depth):
                reached[k] += 1
        return reached

    def cohorts(self, frm, to, days, today):
        signup = {}
        for p, t, m in self.events:
            if m["type"] == "track" and m["event"] == "Signed Up":
                signup[p] = min(signup.get(p, t), t)
        active = defaultdict(set)
        for p, t, _ in self.events:
            active[p].add(local_day(t))
        rows = defaultdict(list)
        for p, t in signup.items():
            if frm <= t < to:
                rows[local_day(t)].append(p)
        out = {}
        for d, members in rows.items():
            out[str(d)] = (
                len(members),
                [
                    None if d + timedelta(days=n) > today else sum(1 for p in members if d + timedelta(days=n) in active[p])
                    for n in days
                ],
            )
        return out

    def rfm(self, end_ms):
        """lifetimes' summary (freq='D', shop-local days): frequency, recency, T, monetary (元)."""
        end = local_day(end_ms)
        per = defaultdict(lambda: defaultdict(int))
        for o in self.orders:
            if o["purchase"] and o["at"] <= end_ms:
                per[o["person"]][local_day(o["at"])] += o["total"] - o["refunded"]
        out = {}
        for p, days in per.items():
            ds = sorted(days)
            repeat = [days[d] for d in ds[1:]]
            out[p] = (
                len(ds) - 1,
                (ds[-1] - ds[0]).days,
                (end - ds[0]).days,
                sum(repeat) / len(repeat) / 100 if repeat else 0.0,
            )
        return out


# ---------------------------------------------------------------- the run


def run(srv, *args):
    return json.loads(srv.cli(*args, "--format", "json"))


def kpi(srv, frm, to):
    return run(srv, "report", "kpi", "--from", str(frm), "--to", str(to))["kpis"]


def activity_numbers(srv, today):
    """What a CLV refresh must not move: visitors (the period reaching today, and per day),
    retention by signup day, and the lifecycle stage counts."""
    frm = max(date(2026, 9, 1), today - timedelta(days=300))
    daily = run(srv, "report", "kpi", "--from", str(frm), "--to", str(today), "--daily")
    cohort = run(srv, "report", "cohort", "--from", str(date(2026, 11, 1)), "--to", str(today), "--days", "1,7,30")
    stages = {s: run(srv, "segment", "count", f'lifecycle == "{s}"')["count"] for s in STAGES}
    return {
        "visitors": daily["kpis"]["visitors"],
        "daily_visitors": [d["visitors"] for d in daily["daily"]],
        "cohort": cohort,
        "stages": stages,
    }


def terminate(srv):
    """A graceful stop that keeps the store (Server.stop drops the PostgreSQL schema)."""
    srv.proc.terminate()
    srv.proc.wait(timeout=30)


@pytest.mark.parametrize("store", stores())
def test_every_report_counts_people_as_an_independent_computation_does(store, tmp_path):
    if store == "postgres" and not IN_CI and not pg_reachable():
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}")
    messages = build_shop()
    want = Expected(messages)
    assert any(m["type"] == "alias" for m in messages)
    guests = [o for o in want.orders if o["person"].startswith("anon:")]
    assert guests, "the fixture has guest orders that stay anonymous"
    frm, to = day_start(PERIOD[0]), day_start(PERIOD[1] + timedelta(days=1))
    everything = (day_start(date(2026, 9, 1)), day_start(date(2026, 12, 1)))

    srv = Server(store, tmp_path)
    try:
        srv.start()
        for i in range(0, len(messages), 200):
            srv.track(messages[i:i + 200])
        whole = want.kpis(*everything)

        def arrived():
            s, b = srv.get("/api/v1/analytics/kpi?from=2026-09-01&to=2026-11-30")
            k = b["kpis"] if s == 200 else {}
            return (k.get("orders"), k.get("visitors"), k.get("net_revenue")) == \
                (whole["orders"], whole["visitors"], whole["net_revenue"])

        assert wait_until(arrived, 60), (srv.get("/api/v1/analytics/kpi?from=2026-09-01&to=2026-11-30"), whole)
        terminate(srv)

        today = datetime.now(SHANGHAI).date()
        before = activity_numbers(srv, today)
        refreshed = subprocess.run([*srv.base, "report", "ltv", "--clv", "--save-traits"],
                                   capture_output=True, text=True, timeout=300)
        assert refreshed.returncode == 0, refreshed.stderr
        assert "saved CLV traits on" in refreshed.stderr and " 0 profiles" not in refreshed.stderr, refreshed.stderr
        assert activity_numbers(srv, today) == before, "a CLV refresh is no customer activity"
        # The refresh put its traits on the scored persons themselves: a guest buyer's on
        # their anonymous profile, addressed by the anonymousId (no new profile).
        scored = run(srv, "report", "ltv", "--clv", "--top", "100000")["predictions"]
        guest = next(c for c in scored if c["anonymous_id"])
        shown = run(srv, "profile", "show", guest["profile_id"], "--events", "0")["profile"]
        assert shown["id"] == guest["profile_id"] and "clv_p_alive" in shown["traits"], shown
        assert not shown["user_ids"], shown

        # KPIs of the period, and of the whole history.
        for (a, b), (f, t) in [(PERIOD, (frm, to)), ((date(2026, 9, 1), date(2026, 11, 30)), everything)]:
            got = kpi(srv, a, b)
            exp = want.kpis(f, t)
            assert {k: got[k] for k in exp} == pytest.approx(exp), (a, b)
        # Funnel step counts (entries in the period, within the window).
        funnel = run(srv, "report", "funnel", "--from", str(PERIOD[0]), "--to", str(PERIOD[1]),
                     "--steps", ",".join(STEPS), "--window-hours", str(WINDOW_HOURS))
        assert [s["users"] for s in funnel["steps"]] == want.funnel(frm, to, STEPS, WINDOW_HOURS * 3_600_000)
        # Retention by signup day.
        cohort = run(srv, "report", "cohort", "--from", str(PERIOD[0]), "--to", str(PERIOD[1]),
                     "--days", ",".join(map(str, DAYS)))
        got = {r["day"]: (r["size"], [x["users"] if x["rate"] is not None else None for x in r["retained"]])
               for r in cohort["rows"]}
        assert got == want.cohorts(frm, to, DAYS, today)
        # RFM and the CLV inputs, per person, observed at the end of the period.
        end = to - 1
        rfm = srv.cli("rfm", "--as-of", "2026-10-31T23:59:59+08:00", "--format", "csv").splitlines()
        header = rfm[0].split(",")
        rows = [dict(zip(header, line.split(","))) for line in rfm[1:]]
        exp_rfm = want.rfm(end)
        got_rfm = {r["profile_id"]: (int(r["frequency"]), int(r["recency"]), int(r["T"]), float(r["monetary_value"]))
                   for r in rows}
        assert got_rfm.keys() == exp_rfm.keys()
        for p, e in exp_rfm.items():
            assert got_rfm[p][:3] == e[:3], p
            assert got_rfm[p][3] == pytest.approx(e[3], abs=1e-6), p
        clv = run(srv, "report", "ltv", "--clv", "--to", str(PERIOD[1]), "--top", "100000")
        got_clv = {c["profile_id"]: (c["frequency"], c["recency"], c["age"]) for c in clv["predictions"]}
        assert got_clv == {p: (e[0], float(e[1]), float(e[2])) for p, e in exp_rfm.items()}
        # A customer is shown by their user id, else (a guest) by their anonymous id.
        for c in clv["predictions"]:
            kind, value = c["profile_id"].split(":", 1)
            assert (c["user_id"], c["anonymous_id"]) == ((value, None) if kind == "user" else (None, value))
    finally:
        srv.stop()
