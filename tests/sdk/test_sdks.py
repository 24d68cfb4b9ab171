"""End-to-end checks of the tracking API against the official Python SDKs.

Segment's `segment-analytics-python` and RudderStack's `rudder-sdk-python` are used
unchanged, pointed at a local `flywheel serve` through their `host` option; what they
delivered is then read back through the admin API. Each SDK runs against SQLite and
PostgreSQL.

    pip install -r tests/sdk/requirements.txt
    FLYWHEEL_BIN=target/debug/flywheel pytest -q tests/sdk

Environment: FLYWHEEL_BIN (the binary; default <repo>/target/debug/flywheel),
FLYWHEEL_TEST_PG (default postgres://postgres@127.0.0.1:5432/test), CI=true (an
unreachable PostgreSQL fails instead of skipping), FLYWHEEL_LOG (server log filter;
the server's stderr is printed when a test fails).
"""

import secrets
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
from rudderstack.analytics import Client as RudderClient
from segment.analytics import Client as SegmentClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from flywheel_server import IN_CI, PG_URL, Server, pg_reachable  # noqa: E402


@pytest.fixture(params=["sqlite", "postgres"])
def server(request, tmp_path):
    if request.param == "postgres" and not IN_CI and not pg_reachable():
        pytest.skip(f"PostgreSQL unreachable at {PG_URL} (set CI=true to fail instead)")
    srv = Server(request.param, tmp_path)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        if srv.log_path.exists():  # pytest shows this output only when the test fails
            print(f"--- server stderr ({request.param}) ---\n{srv.log_path.read_text()}")


def segment_client(srv, on_error):
    # Async mode (on_error is only called from the consumer thread), short batching
    # window so flush() returns quickly, no retries so a rejection is reported at once.
    return SegmentClient(srv.write_key, host=srv.url, on_error=on_error, sync_mode=False,
                         upload_interval=0.05, upload_size=100, max_retries=0, timeout=10, gzip=False)


def rudder_client(srv, on_error):
    # RudderStack's SDK posts to /v1/batch gzipped by default; keep that.
    return RudderClient(srv.write_key, host=srv.url, on_error=on_error, sync_mode=False,
                        upload_interval=0.05, upload_size=100, max_retries=0, timeout=10, gzip=True)


def send_journey(client, ids):
    """The calls of a small shopping journey; returns how many messages were sent."""
    uid, anon = ids["user"], ids["anon"]
    client.identify(user_id=uid, anonymous_id=anon,
                    traits={"name": "王芳", "city": "杭州", "email": f"{uid}@example.cn"})
    client.track(user_id=uid, anonymous_id=anon, event="Product Viewed",
                 properties={"product_id": "p-scarf", "name": "真丝围巾", "price": 199.9, "category": "配饰"})
    client.page(user_id=uid, anonymous_id=anon, category="商品", name="详情页",
                properties={"url": "https://shop.example.cn/p/p-scarf", "title": "真丝围巾"})
    client.track(user_id=uid, event="Order Completed", properties={
        "order_id": ids["order"], "total": 1000.01, "currency": "CNY",
        "products": [{"product_id": "p-scarf", "name": "真丝围巾", "price": 199.91, "quantity": 1},
                     {"product_id": "p-tea", "name": "西湖龙井", "price": 400.05, "quantity": 2}]})
    client.group(user_id=uid, group_id=ids["group"], traits={"name": "杭州茶叶有限公司"})
    client.alias(previous_id=ids["previous"], user_id=uid)
    return 6


def wait_for_events(srv, pid, n, timeout=5.0):
    """Polls the profile's events until there are at least `n` (ingestion is asynchronous)."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        status, body = srv.get(f"/api/v1/profiles/{urllib.parse.quote(pid)}/events?limit=100")
        last = (status, body)
        if status == 200 and len(body["events"]) >= n:
            return body["events"]
        time.sleep(0.1)
    raise AssertionError(f"expected {n} events for {pid} within {timeout}s; last answer: {last}")


@pytest.mark.parametrize("make_client", [segment_client, rudder_client], ids=["segment", "rudderstack"])
def test_sdk_delivers_journey(server, make_client):
    tag = secrets.token_hex(4)
    ids = {"user": f"u-{tag}", "anon": f"anon-{tag}", "previous": f"legacy-{tag}",
           "order": f"o-{tag}", "group": f"g-{tag}"}
    errors = []
    client = make_client(server, on_error=lambda e, batch: errors.append((repr(e), batch)))
    try:
        sent = send_journey(client, ids)
        client.flush()
    finally:
        client.shutdown()
    assert errors == [], f"SDK reported errors; server log:\n{server.log_path.read_text()}"

    events = wait_for_events(server, ids["user"], sent)
    assert len(events) == sent, events
    assert sorted(e["type"] for e in events) == sorted(
        ["identify", "track", "page", "track", "group", "alias"])
    assert sorted(e["event"] for e in events if e["type"] == "track") == ["Order Completed", "Product Viewed"]
    assert len({e["messageId"] for e in events}) == sent
    assert {e["context"]["library"]["name"] for e in events} == {"analytics-python"}  # both SDKs' name

    profile = server.profile(ids["user"])
    assert ids["user"] in profile["user_ids"]
    assert ids["anon"] in profile["anonymous_ids"]
    assert profile["traits"]["name"] == "王芳"
    assert profile["traits"]["city"] == "杭州"
    assert profile["event_count"] == sent
    # The anonymous id and the alias's previous id resolve to the same, merged profile.
    assert server.profile(f"anon:{ids['anon']}")["id"] == profile["id"]
    assert server.profile(ids["previous"])["id"] == profile["id"]

    orders = server.profile(ids["user"], "/orders")["orders"]
    assert [o["order_id"] for o in orders] == [ids["order"]]
    assert orders[0]["total_fen"] == 100001
    assert len(orders[0]["lines"]) == 2
