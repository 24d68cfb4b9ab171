"""Weekly and monthly reviews (R10.5) with benchmark alerts (R10.6), end to end: the real
binary on SQLite and PostgreSQL, a hand-made shop ingested through the tracking API, a
real SMTP receiver (aiosmtpd) and a webhook receiver (http.server) started by the test.

- The server writes the review of last week by itself (`[analytics.reviews]`), emails it
  to both `[analytics.notify]` recipients and POSTs it, signed, to the webhook; the
  missed benchmark raises a `benchmark_missed` alert, sent too. Every GMV figure is
  checked against the fixture's hand-computed totals (shop timezone Asia/Shanghai: an
  order at Monday 00:30 local is Sunday in UTC). A restart writes and sends nothing again.
- The CLI: `report review --cadence monthly --day …` gives last month's figures;
  `--save --send` stores and sends once, a second save stores and sends nothing;
  `report reviews` lists it.
- Delivery: a review the relay refused, or one saved without --send, stays to send; the
  server sends it once the relay is up, and never twice.
- Errors: a bad cadence (400 invalid_query), a bad day (400 invalid_date), an unknown review (404 not_found), email
  recipients without an SMTP relay (the server refuses to start).

    FLYWHEEL_BIN=target/debug/flywheel pytest -q tests/reviews
"""

import email
import email.policy
import hashlib
import hmac
import json
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from flywheel_server import IN_CI, PG_URL, Inbox, Server, free_port, pg_reachable, stores, wait_until  # noqa: E402

SHANGHAI = timezone(timedelta(hours=8))  # Asia/Shanghai has had no DST since 1991
SECRET = "review-hook-secret"


# ---------------------------------------------------------------- receivers


class Hook:
    """A webhook receiver keeping every POST (headers, raw body); answers 200."""

    def __init__(self):
        self.posts = []
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with hook.lock:
                    hook.posts.append((self.path, dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def snapshot(self):
        with self.lock:
            return list(self.posts)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def smtp():
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.stop()


def verify_signature(headers, body):
    """The webhook's `X-Flywheel-Signature: t=<s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
    checked independently of the server's code; returns the signed timestamp."""
    header = {k.lower(): v for k, v in headers.items()}["x-flywheel-signature"]
    parts = dict(p.split("=", 1) for p in header.split(","))
    t = parts["t"]
    expected = hmac.new(SECRET.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected), f"bad signature {header}"
    assert abs(int(t) - time.time()) < 300, f"signature timestamp {t} is not now"
    return int(t)


# ---------------------------------------------------------------- helpers


def need(store):
    if store == "postgres" and not IN_CI and not pg_reachable():
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}")


def terminate(srv):
    """A graceful stop that keeps the store (Server.stop drops the PostgreSQL schema)."""
    srv.proc.send_signal(signal.SIGTERM)
    srv.proc.wait(timeout=15)
    srv.proc.stdout.close()
    srv.log.close()
    srv.proc = None


def run(srv, *args):
    """Runs the CLI on the server's store and config; returns the completed process."""
    return subprocess.run([*srv.base, *args], capture_output=True, text=True, timeout=120)


def at(day, hh, mm=0):
    """Shop-local (Asia/Shanghai) `day` hh:mm as an ISO timestamp with its offset."""
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=SHANGHAI).isoformat()


def order(user, order_id, when, total):
    return {"type": "track", "userId": user, "event": "Order Completed", "timestamp": when,
            "messageId": f"m-{order_id}", "properties": {"order_id": order_id, "total": total, "currency": "CNY"}}


def adjust(kind, user, order_id, when, **props):
    return {"type": "track", "userId": user, "event": kind, "timestamp": when,
            "messageId": f"m-{kind}-{order_id}", "properties": {"order_id": order_id, **props}}


def change(review, metric):
    rows = [c for c in review["changes"] if c["metric"] == metric]
    assert len(rows) == 1, review["changes"]
    return rows[0]


def fen(review, metric):
    """(current, previous) of a money or count metric."""
    c = change(review, metric)
    return c["current"]["value"], c["previous"]["value"]


def config(smtp_port, hook_url, reviews_on, recipients):
    emails = ", ".join(f'"{r}"' for r in recipients)
    return f"""
[audience]
timezone = "Asia/Shanghai"

[journeys]
timezone = "Asia/Shanghai"

[journeys.email]
host = "127.0.0.1"
port = {smtp_port}
from = "Flywheel <reports@example.com>"

[analytics.reviews]
weekly = {"true" if reviews_on else "false"}
monthly = false  # the weekly review alone, so every message sent is accounted for
at_hour = 0

[[analytics.benchmarks]]
name = "行業平均復購率"
metric = "repurchase_rate"
value = 0.5

[[analytics.benchmarks]]
name = "復購率底線"
metric = "repurchase_rate"
value = 0.3

[analytics.notify]
email = [{emails}]
webhook = "{hook_url}"
webhook_secret = "{SECRET}"
"""


# ---------------------------------------------------------------- the weekly fixture
#
# W is the Monday of the last complete shop-local week, P = W − 7 the week before.
#
# week before (P … P+6):  u1 Wed 10:00 120.00, u4 Sun 23:30 80.50          → 200.50 元
# last week   (W … W+6):  u1 Mon 00:30 199.00 (Sunday 16:30 UTC: still the week before
#                         in UTC), u1 Thu 55.25, u2 Fri 300.00 (100.00 refunded),
#                         u3 Sat 88.00, u5 Wed 999.00 cancelled              → 642.25 元
# this week:              u2 Mon 00:30 42.00 (Sunday UTC: last week in UTC)  → not in
#
# Last week: GMV 19900 + 5525 + 30000 + 8800 = 64225 fen; net 64225 − 10000 = 54225;
# 4 orders, 3 buyers (u1 twice: 1 repeat buyer, 復購率 1/3); AOV 64225 ÷ 4 = 16056 fen;
# new buyers u2, u3 (u1 bought the week before). The week before: GMV 12000 + 8050 =
# 20050, 2 orders, 2 buyers, both new, AOV 10025. GMV change 44175 ÷ 20050 = +220.32 %.
# Benchmarks: 復購率 1/3 < 0.5 missed; 1/3 ≥ 0.3 kept.

GMV_LAST, GMV_BEFORE = 64225, 20050


def weekly_fixture(w):
    p = w - timedelta(days=7)
    return [
        order("u1", "o-p1", at(p + timedelta(days=2), 10), "120.00"),
        order("u4", "o-p2", at(p + timedelta(days=6), 23, 30), "80.50"),
        order("u1", "o-w1", at(w, 0, 30), "199.00"),
        order("u1", "o-w2", at(w + timedelta(days=3), 14), "55.25"),
        order("u2", "o-w3", at(w + timedelta(days=4), 9), "300.00"),
        order("u3", "o-w4", at(w + timedelta(days=5), 20), "88.00"),
        order("u5", "o-w5", at(w + timedelta(days=2), 12), "999.00"),
        adjust("Order Cancelled", "u5", "o-w5", at(w + timedelta(days=2), 13)),
        adjust("Order Refunded", "u2", "o-w3", at(w + timedelta(days=5), 10), total="100.00"),
        order("u2", "o-n1", at(w + timedelta(days=7), 0, 30), "42.00"),
    ]


def last_week_monday():
    today = datetime.now(SHANGHAI).date()
    return today - timedelta(days=today.weekday() + 7)


@pytest.mark.parametrize("store", stores())
def test_the_server_writes_and_sends_the_due_weekly_review_once(store, smtp, hook, tmp_path):
    need(store)
    inbox, port = smtp
    w = last_week_monday()
    sun = w + timedelta(days=6)
    period = f"{w} – {sun}"
    recipients = ["ops@example.com", "boss@example.com"]
    cfg = tmp_path / "flywheel.toml"
    # Ingest with the reviews off: a review written before the data would be empty.
    srv = Server(store, tmp_path, config=config(port, hook.url, False, recipients))
    try:
        srv.start()
        srv.track(weekly_fixture(w))

        def live():
            s, b = srv.get(f"/api/v1/analytics/review?cadence=weekly&day={w + timedelta(days=3)}")
            assert s == 200, b
            return b["review"]

        assert wait_until(lambda: fen(live(), "net_revenue") == (GMV_LAST - 10000, GMV_BEFORE), 15), \
            f"the fixture never showed up whole: {live()['changes']}"
        r = live()
        assert (r["from"], r["to"], r["previous_from"], r["previous_to"]) == \
            (str(w), str(sun), str(w - timedelta(days=7)), str(w - timedelta(days=1)))
        assert r["complete"] is True
        assert fen(r, "gmv") == (GMV_LAST, GMV_BEFORE)
        assert fen(r, "orders") == (4, 2) and fen(r, "buyers") == (3, 2)
        assert fen(r, "aov") == (16056, 10025)
        assert fen(r, "new_buyers") == (2, 2) and fen(r, "returning_buyers") == (1, 0)
        assert abs(change(r, "gmv")["change"] - 44175 / 20050) < 1e-9
        assert abs(change(r, "repurchase_rate")["current"]["value"] - 1 / 3) < 1e-9
        assert [b["missed"] for b in r["benchmarks"]] == [True, False], r["benchmarks"]
        s, b = srv.get("/api/v1/analytics/reviews")
        assert s == 200 and b["reviews"] == [], b
        assert inbox.snapshot() == [] and hook.snapshot() == []
        terminate(srv)

        # The server writes the due review by itself and sends it.
        cfg.write_text(config(port, hook.url, True, recipients))
        srv.start()

        def stored():
            s, b = srv.get("/api/v1/analytics/reviews")
            assert s == 200, b
            return b["reviews"]

        assert wait_until(lambda: any(e["delivery"] for e in stored()), 30), \
            f"no review sent within 30 s: {stored()}\n{srv.log_path.read_text()[-3000:]}"
        [entry] = stored()
        assert (entry["cadence"], entry["from"], entry["to"]) == ("weekly", str(w), str(sun)), entry
        assert "email: sent to 2 of 2" in entry["delivery"] and "webhook: HTTP 200" in entry["delivery"], entry

        s, b = srv.get(f"/api/v1/analytics/reviews/{entry['id']}")
        assert s == 200, b
        assert b["entry"] == entry
        saved = b["review"]
        assert fen(saved, "gmv") == (GMV_LAST, GMV_BEFORE)
        assert fen(saved, "net_revenue") == (GMV_LAST - 10000, GMV_BEFORE)

        # Email: the benchmark alert and the review, each to both recipients.
        assert wait_until(lambda: len(inbox.snapshot()) >= 4, 10), [m[1]["Subject"] for m in inbox.snapshot()]
        got = inbox.snapshot()
        reviews = [(rcpt, m) for rcpt, m in got if m["X-Flywheel-Report"] == "review"]
        alerts = [(rcpt, m) for rcpt, m in got if m["X-Flywheel-Report"] == "alert"]
        assert len(got) == 4, [(r, str(m["Subject"])) for r, m in got]
        assert sorted(r[0] for r, _ in reviews) == sorted(recipients)
        assert sorted(r[0] for r, _ in alerts) == sorted(recipients)
        for _, msg in reviews:
            subject = str(msg["Subject"])
            assert "週復盤" in subject and period in subject, subject
            text = msg.get_body(("plain",)).get_content()
            html = msg.get_body(("html",)).get_content()
            assert re.search(r"GMV \(元\)\s+642\.25\s+200\.50\s+\+220\.32%", text), text
            assert re.search(r"net revenue \(元\)\s+542\.25\s+200\.50", text), text
            assert "<td>GMV (元)</td><td>642.25</td><td>200.50</td><td>+220.32%</td>" in html, html
            assert "<td>net revenue (元)</td><td>542.25</td><td>200.50</td>" in html, html
            assert "行業平均復購率" in text and "MISSED" in text, text
        assert len({m["Message-ID"] for _, m in reviews}) == 1
        for _, msg in alerts:
            subject = str(msg["Subject"])
            assert "行業平均復購率" in subject and "benchmark_missed" in subject, subject
            assert f"weekly {w}–{sun}" in msg.get_body(("plain",)).get_content()

        # Webhook: the alert and the review, signed.
        assert wait_until(lambda: len(hook.snapshot()) >= 2, 10), hook.snapshot()
        posts = hook.snapshot()
        assert len(posts) == 2, posts
        bodies = []
        for path, headers, body in posts:
            assert path == "/hook"
            assert headers.get("Content-Type") == "application/json"
            verify_signature(headers, body)
            bodies.append(json.loads(body))
        by_type = {b["type"]: b for b in bodies}
        assert sorted(by_type) == ["alert", "review"], bodies
        hooked = by_type["review"]
        assert hooked["id"] == entry["id"] and "週復盤" in hooked["subject"]
        assert (hooked["review"]["from"], hooked["review"]["to"]) == (str(w), str(sun))
        gmv = change(hooked["review"], "gmv")
        assert gmv["current"] == {"unit": "fen", "value": GMV_LAST}, gmv
        assert gmv["previous"] == {"unit": "fen", "value": GMV_BEFORE}, gmv
        alert = by_type["alert"]["alert"]
        assert (alert["rule"], alert["campaign"], alert["action"]) == ("benchmark_missed", "行業平均復購率", "alerted")
        # A forged body does not verify.
        with pytest.raises(AssertionError):
            verify_signature(posts[0][1], posts[0][2] + b" ")

        s, b = srv.get("/api/v1/analytics/alerts")
        assert s == 200, b
        missed = [a for a in b["alerts"] if a["rule"] == "benchmark_missed"]
        assert len(missed) == 1 and missed[0]["campaign"] == "行業平均復購率", b["alerts"]
        assert str(w) in missed[0]["detail"] and "50.00%" in missed[0]["detail"], missed[0]

        # A restart finds the review written: nothing is written or sent again.
        terminate(srv)
        srv.start()
        time.sleep(3)  # the review check runs at start; a second send would have come by now
        assert stored() == [entry]
        assert len(inbox.snapshot()) == 4 and len(hook.snapshot()) == 2
        s, b = srv.get("/api/v1/analytics/alerts")
        assert [a["rule"] for a in b["alerts"]].count("benchmark_missed") == 1, b["alerts"]
    finally:
        srv.stop()


# ---------------------------------------------------------------- the CLI, monthly
#
# M is the first day of last month, B the first day of the month before.
#   month before: u1 B+4 99.90                                              → 99.90 元
#   last month:   u4 M 00:30 60.00 (UTC: the month before's last day), u1 M+9 150.00,
#                 u2 M+14 250.40                                            → 460.40 元
#   this month:   u3 1st 00:30 70.00 (UTC: last month's last day)           → not in
# Last month: GMV 6000 + 15000 + 25040 = 46040 fen, 3 orders, 3 buyers. The month
# before: 9990 fen, 1 order.


@pytest.mark.parametrize("store", stores())
def test_cli_monthly_review_saves_and_sends_once(store, smtp, hook, tmp_path):
    need(store)
    inbox, port = smtp
    this = datetime.now(SHANGHAI).date().replace(day=1)
    m = (this - timedelta(days=1)).replace(day=1)
    b4 = (m - timedelta(days=1)).replace(day=1)
    m_end = this - timedelta(days=1)
    srv = Server(store, tmp_path, config=config(port, hook.url, False, ["ops@example.com"]))
    try:
        srv.start()
        srv.track([
            order("u1", "o-b1", at(b4 + timedelta(days=4), 11), "99.90"),
            order("u4", "o-m1", at(m, 0, 30), "60.00"),
            order("u1", "o-m2", at(m + timedelta(days=9), 15), "150.00"),
            order("u2", "o-m3", at(m + timedelta(days=14), 21), "250.40"),
            order("u3", "o-t1", at(this, 0, 30), "70.00"),
        ])
        day = m + timedelta(days=14)

        def live():
            s, b = srv.get(f"/api/v1/analytics/review?cadence=monthly&day={day}")
            assert s == 200, b
            return b["review"]

        assert wait_until(lambda: fen(live(), "gmv") == (46040, 9990), 15), live()["changes"]
        terminate(srv)

        out = run(srv, "report", "review", "--cadence", "monthly", "--day", str(day), "--format", "json")
        assert out.returncode == 0, out.stderr
        r = json.loads(out.stdout)
        assert (r["cadence"], r["from"], r["to"]) == ("monthly", str(m), str(m_end)), r
        assert (r["previous_from"], r["previous_to"]) == (str(b4), str(m - timedelta(days=1)))
        assert fen(r, "gmv") == (46040, 9990)
        assert fen(r, "orders") == (3, 1) and fen(r, "buyers") == (3, 1)
        assert fen(r, "aov") == ((46040 * 2 + 3) // 6, 9990)  # 153.4666 元, half-up to the fen
        assert abs(change(r, "gmv")["change"] - (46040 - 9990) / 9990) < 1e-9
        assert inbox.snapshot() == [] and hook.snapshot() == [], "a plain report sends nothing"

        out = run(srv, "report", "review", "--cadence", "monthly", "--day", str(day), "--save", "--send",
                  "--format", "json")
        assert out.returncode == 0, out.stderr
        saved = re.search(r"saved review (\d+)", out.stderr)
        assert saved, out.stderr
        assert "email: sent to 1 of 1" in out.stderr and "webhook: HTTP 200" in out.stderr, out.stderr
        assert fen(json.loads(out.stdout), "gmv") == (46040, 9990)
        # Both benchmarks are missed (復購率 0/3 < 0.3 < 0.5): two alerts, then the review.
        assert wait_until(lambda: len(inbox.snapshot()) >= 3 and len(hook.snapshot()) >= 3, 10)
        got = inbox.snapshot()
        assert len(got) == 3, [str(m["Subject"]) for _, m in got]
        assert sorted(m["X-Flywheel-Report"] for _, m in got) == ["alert", "alert", "review"]
        # Two different alerts are two messages: receivers de-duplicate by Message-ID.
        assert len({m["Message-ID"] for _, m in got}) == 3, [m["Message-ID"] for _, m in got]
        [(rcpt, msg)] = [(r, m) for r, m in got if m["X-Flywheel-Report"] == "review"]
        assert rcpt == ["ops@example.com"]
        assert "月復盤" in str(msg["Subject"]) and f"{m} – {m_end}" in str(msg["Subject"]), msg["Subject"]
        assert re.search(r"GMV \(元\)\s+460\.40\s+99\.90", msg.get_body(("plain",)).get_content())
        posts = hook.snapshot()
        assert len(posts) == 3, posts
        for _, headers, body in posts:
            verify_signature(headers, body)
        bodies = [json.loads(body) for _, _, body in posts]
        assert sorted(b["type"] for b in bodies) == ["alert", "alert", "review"]
        assert sorted(b["alert"]["campaign"] for b in bodies if b["type"] == "alert") == ["復購率底線", "行業平均復購率"]
        [posted] = [b for b in bodies if b["type"] == "review"]
        assert posted["id"] == int(saved.group(1))
        assert change(posted["review"], "gmv")["current"] == {"unit": "fen", "value": 46040}

        for again in (["--save", "--send"], ["--save"]):
            out = run(srv, "report", "review", "--cadence", "monthly", "--day", str(m), *again, "--format", "json")
            assert out.returncode == 0, out.stderr
            assert "already saved" in out.stderr and "saved review" not in out.stderr, out.stderr
            assert "email:" not in out.stderr, out.stderr
        time.sleep(1)
        assert len(inbox.snapshot()) == 3 and len(hook.snapshot()) == 3, "a second save sent again"

        out = run(srv, "report", "reviews", "--format", "json")
        assert out.returncode == 0, out.stderr
        [entry] = json.loads(out.stdout)["reviews"]
        assert entry["id"] == int(saved.group(1))
        assert (entry["cadence"], entry["from"], entry["to"]) == ("monthly", str(m), str(m_end))
        assert "email: sent to 1 of 1" in entry["delivery"] and "webhook: HTTP 200" in entry["delivery"], entry
    finally:
        srv.stop()


# ---------------------------------------------------------------- delivery retries


@pytest.mark.parametrize("store", stores())
def test_a_review_not_delivered_or_saved_unsent_is_sent_by_the_server(store, tmp_path):
    """The relay is down when the CLI saves and sends the weekly review: it stays to send.
    A monthly review saved without --send is to send too. The server, started once the
    relay is up, sends both, once each."""
    need(store)
    port = free_port()  # nothing listens here yet: the relay is down
    cfg = f"""
[audience]
timezone = "Asia/Shanghai"

[journeys.email]
host = "127.0.0.1"
port = {port}
from = "Flywheel <reports@example.com>"
timeout_secs = 2

[analytics.reviews]
weekly = true
monthly = false
at_hour = 0

[analytics.notify]
email = ["ops@example.com"]
"""
    srv = Server(store, tmp_path, config=cfg)
    inbox, controller = Inbox(), None
    try:
        out = run(srv, "report", "review", "--cadence", "weekly", "--save", "--send", "--format", "json")
        assert out.returncode == 0, out.stderr
        assert "email: sent to 0 of 1" in out.stderr, out.stderr
        out = run(srv, "report", "review", "--cadence", "monthly", "--save", "--format", "json")
        assert out.returncode == 0 and "saved review" in out.stderr, out.stderr
        out = run(srv, "report", "reviews", "--format", "json")
        entries = {e["cadence"]: e for e in json.loads(out.stdout)["reviews"]}
        assert (entries["weekly"]["attempts"], entries["weekly"]["sent_at"]) == (1, None), entries
        assert "email: sent to 0 of 1" in entries["weekly"]["delivery"], entries
        assert (entries["monthly"]["attempts"], entries["monthly"]["delivery"]) == (0, None), entries

        controller = Controller(inbox, hostname="127.0.0.1", port=port)
        controller.start()
        srv.start()

        def sent():
            s, b = srv.get("/api/v1/analytics/reviews")
            assert s == 200, b
            return all(e["sent_at"] is not None for e in b["reviews"]) and b["reviews"]

        assert wait_until(sent, 20), srv.get("/api/v1/analytics/reviews")
        reviews = sent()
        assert len(reviews) == 2, reviews
        assert {e["cadence"]: e["attempts"] for e in reviews} == {"weekly": 2, "monthly": 1}, reviews
        assert all(e["delivery"] == "email: sent to 1 of 1" for e in reviews), reviews
        got = inbox.snapshot()
        subjects = sorted(str(m["Subject"]) for _, m in got)
        assert len(got) == 2 and "月復盤" in subjects[0] and "週復盤" in subjects[1], subjects
        terminate(srv)
        srv.start()
        time.sleep(2)
        assert len(inbox.snapshot()) == 2, "a sent review went out again"
    finally:
        srv.stop()
        if controller:
            controller.stop()


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("store", stores())
def test_bad_cadence_unknown_review_and_email_without_a_relay(store, tmp_path):
    need(store)
    srv = Server(store, tmp_path, config='[analytics.reviews]\nweekly = false\nmonthly = false\n')
    try:
        srv.start()
        s, b = srv.get("/api/v1/analytics/review?cadence=daily")
        assert s == 400 and b["code"] == "invalid_query", (s, b)
        assert "daily" in b["message"], b
        s, b = srv.get("/api/v1/analytics/reviews/999999")
        assert s == 404 and b["code"] == "not_found", (s, b)
        s, b = srv.get("/api/v1/analytics/review?cadence=weekly&day=2026-13-01")
        assert s == 400 and b["code"] == "invalid_date", (s, b)
        terminate(srv)

        # Email recipients and no SMTP relay: the server refuses to start.
        (tmp_path / "flywheel.toml").write_text('[analytics.notify]\nemail = ["ops@example.com"]\n')
        proc = subprocess.Popen([*srv.base, "serve", "--listen", "127.0.0.1:0"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"the server started without an SMTP relay for [analytics.notify] email: {out}")
        assert proc.returncode != 0, (out, err)
        assert "listening on" not in out
        assert "[journeys.email]" in err, err
        # The CLI's --send refuses the same way.
        out = run(srv, "report", "review", "--cadence", "weekly", "--send")
        assert out.returncode != 0 and "[journeys.email]" in out.stderr, out.stderr
    finally:
        srv.stop()
