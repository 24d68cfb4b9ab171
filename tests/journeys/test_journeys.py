"""Journeys end to end through the tracking API, with a real SMTP receiver (aiosmtpd)
started by the test.

- Cart abandonment: exactly one email after the wait, none to the user who bought the
  cart meanwhile, none to the user who unsubscribed (logged as suppressed); the email's
  open pixel, tracked link and one-click unsubscribe work.
- SIGKILL mid-journey: after a restart nobody is skipped and nobody gets two different
  messages. A message in flight at the kill — its DATA taken by the receiver, its 250
  never seen by the sender — goes again with the same Message-ID (receivers
  de-duplicate by it); that is at most one per open SMTP connection, and the test holds
  it to that bound.

Each runs on SQLite and PostgreSQL.

    FLYWHEEL_BIN=target/debug/flywheel pytest -q tests/journeys
"""

import email
import email.policy
import re
import sys
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from flywheel_server import IN_CI, PG_URL, Inbox, Server, free_port, pg_reachable, stores, wait_until  # noqa: E402


def start_smtp(delay=0.0):
    inbox = Inbox(delay)
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, inbox, port


def config(port, extra="", connections=4):
    return f"""
[journeys]
timezone = "Asia/Shanghai"
{extra}
[journeys.delivery]
quiet_hours = "00:00-00:00"

[journeys.email]
host = "127.0.0.1"
port = {port}
from = "飛輪商店 <shop@example.com>"
max_connections = {connections}
"""


@pytest.fixture
def smtp():
    controller, inbox, port = start_smtp()
    yield inbox, port
    controller.stop()


def event(kind, user, **kw):
    e = {"type": kind, "userId": user, "messageId": f"{kind}-{user}-{time.monotonic_ns()}"}
    e.update(kw)
    return e


CART = {
    "name": "cart_abandonment",
    "trigger": {"event": {"name": "Product Added", "where": {"cart_id": {"exists": True}}}},
    "key": "cart_id",
    "goal": {"name": "Order Completed", "same_key": True},
    "steps": [
        {"id": "wait", "type": "wait_for_event", "name": "Order Completed", "timeout": "3s",
         "on_event": "exit", "on_timeout": "remind"},
        {"id": "remind", "type": "send", "channels": ["email"],
         "subject": "您的購物車還有商品",
         "html": '<p>{{ profile.name }}，購物車 {{ run.key }} 還在等您。</p>'
                 '<p><a href="https://shop.example/cart?id={{ run.key }}">去結算</a></p>'
                 '<p><a href="{{ links.unsubscribe }}">退訂</a></p>',
         "text": "{{ profile.name }}，購物車 {{ run.key }} 還在等您：https://shop.example/cart"},
    ],
}


@pytest.mark.parametrize("store", stores())
def test_cart_abandonment_sends_exactly_one_email_after_the_wait(store, smtp, tmp_path):
    if store == "postgres" and not IN_CI and not pg_reachable():
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}")
    inbox, port = smtp
    srv = Server(store, tmp_path, config=config(port))
    try:
        srv.start()
        status, body, _ = srv.request("POST", "/api/v1/journeys", CART)
        assert status == 201, body
        assert srv.request("POST", "/api/v1/journeys/cart_abandonment/start")[0] == 200
        users = {"u1": "王小明 <u1@example.com>", "u2": "u2@example.com", "u3": "u3@example.com"}
        srv.track([event("identify", u, traits={"email": a.split("<")[-1].rstrip(">"), "name": f"顧客{u}"})
                   for u, a in users.items()])
        for u in users:
            s, b, _ = srv.request("PUT", f"/api/v1/consent/{u}", {"channel": "email", "state": "subscribed"})
            assert s == 200, b
        assert srv.request("PUT", "/api/v1/consent/u3", {"channel": "email", "state": "unsubscribed"})[0] == 200
        srv.track([event("track", u, event="Product Added", properties={"cart_id": f"c-{u}", "product_id": "p1"})
                   for u in users])
        srv.track([event("track", "u2", event="Order Completed",
                         properties={"order_id": "o-u2", "cart_id": "c-u2", "total": 99, "products": []})])
        assert wait_until(lambda: len(inbox.snapshot()) >= 1, 30), "no email within 30 s"
        time.sleep(4)  # anything else would have come by now
        got = inbox.snapshot()
        assert len(got) == 1, [m[0] for m in got]
        rcpt, msg = got[0]
        assert rcpt == ["u1@example.com"]
        assert str(msg["Subject"]) == "您的購物車還有商品"
        assert msg["Message-ID"].endswith("@flywheel>")
        assert msg["X-Flywheel-Campaign"] == "cart_abandonment"
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        assert "顧客u1，購物車 c-u1 還在等您" in text
        unsubscribe = re.search(r"<(http[^>]+)>", msg["List-Unsubscribe"]).group(1)
        assert "/unsubscribe/" in unsubscribe

        def messages(user):
            s, b = srv.get(f"/api/v1/messages?user_id={user}")
            assert s == 200, b
            return b["messages"]

        assert [m["status"] for m in messages("u1")] == ["sent"]
        assert messages("u2") == []
        u3 = messages("u3")
        assert [m["status"] for m in u3] == ["suppressed"] and "unsubscribed" in u3[0]["reason"], u3

        # Open pixel and tracked link.
        pixel = re.search(r'src="(http[^"]+/t/o/[^"]+)"', html).group(1)
        s, b, h = srv.request("GET", pixel.removeprefix(srv.url), admin=False)
        assert s == 200 and h["Content-Type"] == "image/gif"
        link = re.search(r'href="(http[^"]+/t/c/[^"]+)"', html).group(1)
        s, _, h = srv.request("GET", link.removeprefix(srv.url), admin=False)
        assert s == 303 and h["Location"] == "https://shop.example/cart?id=c-u1"
        forged = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
        assert srv.request("GET", forged.removeprefix(srv.url), admin=False)[0] == 404
        m = messages("u1")[0]
        assert m["opened_at"] and m["clicked_at"], m
        assert wait_until(lambda: {"Email Opened", "Link Clicked"} <= {
            e.get("event") for e in srv.get("/api/v1/profiles/user:u1/events?limit=100")[1].get("events", [])}, 10)

        # RFC 8058 one-click unsubscribe.
        s, _, _ = srv.request("POST", unsubscribe.removeprefix(srv.url), b"List-Unsubscribe=One-Click",
                              headers={"Content-Type": "application/x-www-form-urlencoded"}, admin=False)
        assert s == 200
        s, consent = srv.get("/api/v1/consent/u1")
        assert consent["channels"]["email"]["state"] == "unsubscribed"

        s, stats = srv.get("/api/v1/journeys/cart_abandonment/stats")
        states = dict(stats["states"])
        assert states == {"converted": 1, "done": 2}, states
    finally:
        srv.stop()


WELCOME = {
    "name": "welcome_kill",
    "trigger": {"event": {"name": "Signed Up"}},
    "entry": "once",
    "steps": [
        {"id": "wait", "type": "wait", "duration": "2s"},
        {"id": "hello", "type": "send", "channels": ["email"], "subject": "歡迎 {{ profile.id }}",
         "text": "歡迎加入，{{ profile.id }}"},
    ],
}


@pytest.mark.parametrize("store", stores())
def test_sigkill_mid_journey_skips_nobody_and_sends_nothing_twice(store, tmp_path):
    if store == "postgres" and not IN_CI and not pg_reachable():
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}")
    controller, inbox, port = start_smtp(delay=0.01)
    extra = 'lease_ms = 2000\n[journeys.consent]\nopt_out_channels = ["email"]\n'
    # Two connections: a message whose DATA the receiver has taken when the sender dies
    # is delivered although the sender never saw its 250 — at most one per connection.
    srv = Server(store, tmp_path, config=config(port, extra, connections=2))
    n = 150
    try:
        srv.start()
        assert srv.request("POST", "/api/v1/journeys", WELCOME)[0] == 201
        assert srv.request("POST", "/api/v1/journeys/welcome_kill/start")[0] == 200
        ids = [f"k{i:03d}" for i in range(n)]
        srv.track([event("identify", u, traits={"email": f"{u}@example.com"}) for u in ids])
        srv.track([event("track", u, event="Signed Up") for u in ids])
        # Kill while the sends are going out.
        assert wait_until(lambda: len(inbox.snapshot()) >= 10, 30), "sending never started"
        srv.kill()
        before = len(inbox.snapshot())
        assert before < n, "everything was sent before the kill; the test proves nothing"
        srv.start()
        assert wait_until(lambda: len({r[0][0] for r in inbox.snapshot()}) >= n, 60), \
            f"only {len({r[0][0] for r in inbox.snapshot()})} of {n} users got their message after the restart"
        time.sleep(2)
        got = inbox.snapshot()
        by_user = {}
        for rcpt, msg in got:
            by_user.setdefault(rcpt[0], []).append(msg["Message-ID"])
        assert sorted(by_user) == sorted(f"{u}@example.com" for u in ids), "somebody was skipped"
        two_messages = {u: m for u, m in by_user.items() if len(set(m)) > 1}
        assert not two_messages, f"users got two different messages: {two_messages}"
        redelivered = sum(len(m) - 1 for m in by_user.values())
        print(f"{store}: {before} sent before SIGKILL, {len(got)} delivered in all, "
              f"{redelivered} redelivered with the same Message-ID")
        assert redelivered <= 2, f"{redelivered} messages delivered twice (2 connections were open)"
        for u in ids[:20]:
            s, b = srv.get(f"/api/v1/messages?user_id={u}")
            assert [m["status"] for m in b["messages"]] == ["sent"], (u, b)
    finally:
        srv.stop()
        controller.stop()
