"""Scale-out end to end: 2 `api` and 2 `worker` processes on one PostgreSQL schema, under a
bounded load of tracking events that move users into a segment and trigger journeys with
real e-mail (aiosmtpd), flash-sale buys (stock in Redis) and coupon redemptions, while
each process in turn is killed with SIGKILL and restarted.

The processes talk over NATS JetStream (`--bus`). Afterwards: every acknowledged event is stored once; every event-triggered and
segment-triggered journey entry happened exactly once per user; nobody got two different
messages, no flash-sale unit oversold and no coupon redeemed twice (a message whose DATA the receiver took just before its sender died may arrive
again with the same Message-ID: at most one per effect in flight in the killed worker); and all
four processes report the same segment size at the same log position.
"""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from flywheel_server import journeys_config, IN_CI, PG_URL, Inbox, Server, free_port, pg_reachable, wait_until  # noqa: E402

CONNECTIONS = 2
# One stream for every end-to-end run: messages of other runs only wake processes early.
NATS_URL = os.environ.get("FLYWHEEL_TEST_NATS", "nats://127.0.0.1:4222") + "?prefix=flywheel_e2e"
REDIS_URL = os.environ.get("FLYWHEEL_TEST_REDIS", "redis://127.0.0.1:6379")
STOCK = 30


def config(port):
    return journeys_config(port, journeys="lease_ms = 2000", delivery="caps = []",
                           connections=CONNECTIONS)


WELCOME = {
    "name": "mp_welcome",
    "trigger": {"event": {"name": "Signed Up"}},
    "entry": "once",
    "steps": [
        {"id": "hello", "type": "send", "channels": ["email"], "subject": "歡迎 {{ profile.id }}",
         "text": "歡迎加入"},
    ],
}

VIP = {
    "name": "mp_vip",
    "trigger": {"segment": {"name": "mp_big", "on": "entered"}},
    "entry": "once",
    "steps": [
        {"id": "vip", "type": "send", "channels": ["email"], "subject": "貴賓 {{ profile.id }}",
         "text": "感謝您的支持"},
    ],
}


def metric(srv, name, labels=""):
    status, body, _ = srv.request("GET", "/metrics", admin=False)
    assert status == 200
    text = body.decode() if isinstance(body, bytes) else str(body)
    for line in text.splitlines():
        if line.startswith(name + labels + " "):
            return int(float(line.split()[-1]))
    return None


def psql(sql):
    out = subprocess.run(["psql", PG_URL, "-qAtc", sql], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(not IN_CI and not pg_reachable(), reason=f"PostgreSQL unreachable at {PG_URL}")
def test_two_api_and_two_worker_processes_survive_sigkill(tmp_path):
    inbox = Inbox(delay=0.005)
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    procs = {}
    try:
        schema = None
        for name, role in [("api1", "api"), ("api2", "api"), ("worker1", "worker"), ("worker2", "worker")]:
            d = tmp_path / name
            d.mkdir()
            srv = Server("postgres", d, config=config(port), schema=schema,
                         serve_args=["--role", role, "--bus", NATS_URL, "--redis", REDIS_URL],
                         owns_schema=schema is None)
            schema = srv.schema
            if procs:
                srv.write_key = procs["api1"].write_key
            srv.start()
            procs[name] = srv
        api1 = procs["api1"]
        # Routes a worker does not serve.
        assert procs["worker1"].request("GET", "/api/v1/segments")[0] == 404
        status, body, _ = api1.request("POST", "/api/v1/segments",
                                       {"name": "mp_big", "expression": "spend(30d) > 100 元"})
        assert status in (200, 201), body
        for j in (WELCOME, VIP):
            assert api1.request("POST", "/api/v1/journeys", j)[0] == 201
            assert api1.request("POST", f"/api/v1/journeys/{j['name']}/start")[0] == 200

        # A flash sale and coupons, both created through api1 and used through both.
        run = os.urandom(4).hex()
        sale_id = f"mp-sale-{run}"
        now = time.time()
        iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
        status, body, _ = api1.request("POST", "/api/v1/flash-sales", {
            "id": sale_id, "product": "茅台", "price": 149900, "stock": STOCK,
            "starts_at": iso(now - 60), "ends_at": iso(now + 3600)})
        assert status == 201, body
        template = {"id": f"mp-tpl-{run}", "name": "滿300減50", "scope": {"type": "shop", "shop": "X"},
                    "benefit": {"type": "amount", "off": 5000, "min_spend": 30000},
                    "validity": {"type": "days_after_issue", "days": 30}, "per_user_limit": 1}
        assert api1.request("POST", "/api/v1/coupon-templates", template)[0] == 201
        coupons = []
        for i in range(20):
            status, body, _ = api1.request("POST", f"/api/v1/coupon-templates/{template['id']}/issue",
                                           {"user_id": f"cu{i}"})
            assert status == 201, body
            coupons.append((f"cu{i}", body["id"]))

        n = 240
        users = [f"mp{i:03d}" for i in range(n)]
        acked = set()
        stop = threading.Event()
        apis = [procs["api1"], procs["api2"]]

        def post(batch):
            """Posts to whichever api process answers; returns when one acknowledged."""
            for attempt in range(400):
                srv = apis[attempt % 2]
                try:
                    if srv.proc is None:
                        raise OSError("down")
                    srv.track(batch)
                    acked.update(e["messageId"] for e in batch)
                    return
                except (OSError, AssertionError):
                    time.sleep(0.05)
            raise AssertionError("no api process acknowledged a batch for 20 s")

        bought, redeemed = [], []

        def call(method, path, body, ok):
            """Calls whichever api process answers until one gives a final answer."""
            for attempt in range(400):
                srv = apis[attempt % 2]
                try:
                    if srv.proc is None:
                        raise OSError("down")
                    status, answer, _ = srv.request(method, path, body)
                    if status in ok:
                        return status, answer
                    raise AssertionError(f"{path}: {status} {answer}")
                except OSError:
                    time.sleep(0.05)
            raise AssertionError(f"no api process answered {path} for 20 s")

        def shop():
            for i in range(120):
                status, answer = call("POST", f"/api/v1/flash-sales/{sale_id}/orders",
                                      {"user_id": f"fb{i}"}, (201, 200, 409))
                if status in (200, 201):
                    bought.append(answer["id"])
                if i < len(coupons):
                    user, cid = coupons[i]
                    for order in (f"ord-a-{i}", f"ord-b-{i}"):
                        status, answer = call("POST", f"/api/v1/coupons/{cid}/redeem",
                                              {"user_id": user, "order_id": order}, (200, 409))
                        if status == 200:
                            redeemed.append((cid, order))
                time.sleep(0.02)

        shopper = threading.Thread(target=shop)
        shopper.start()

        def load():
            for k in range(0, n, 8):
                chunk = users[k:k + 8]
                batch = []
                for u in chunk:
                    i = int(u[2:])
                    batch.append({"type": "identify", "userId": u, "messageId": f"id-{u}",
                                  "traits": {"email": f"{u}@example.com"}})
                    batch.append({"type": "track", "userId": u, "event": "Signed Up",
                                  "messageId": f"su-{u}"})
                    batch.append({"type": "track", "userId": u, "event": "Order Completed",
                                  "messageId": f"oc-{u}",
                                  "properties": {"order_id": f"o-{u}", "total": 150 if i % 2 == 0 else 50}})
                post(batch)
                time.sleep(0.05)
            stop.set()

        loader = threading.Thread(target=load)
        loader.start()
        # SIGKILL each process in turn while the load runs, and restart it.
        for name in ["api1", "worker1", "worker2", "api2"]:
            time.sleep(0.8)
            procs[name].kill()
            time.sleep(0.5)
            procs[name].start()
        loader.join(timeout=180)
        shopper.join(timeout=180)
        assert stop.is_set(), "the load did not finish"

        # No oversell, one unit per buyer; each coupon redeemed for exactly one order.
        orders = psql(f"SELECT user_id FROM {schema}.flash_orders WHERE sale_id = '{sale_id}'").split()
        assert len(orders) <= STOCK, f"oversold: {len(orders)} orders for {STOCK} units"
        assert len(orders) == len(set(orders)), "a buyer holds two units"
        assert set(bought) <= set(psql(f"SELECT id FROM {schema}.flash_orders").split())
        assert len(orders) >= STOCK - 2, f"only {len(orders)} of {STOCK} sold (a kill may strand a unit)"
        by_coupon = {}
        for cid, order in redeemed:
            by_coupon.setdefault(cid, set()).add(order)
        assert all(len(o) == 1 for o in by_coupon.values()), f"a coupon redeemed for two orders: {by_coupon}"
        stored = psql(f"SELECT id, order_id FROM {schema}.coupons WHERE state = 'redeemed'")
        assert len(stored.split()) == len(coupons), stored

        # Every acknowledged event stored exactly once.
        total, distinct = psql(f"SELECT count(*), count(DISTINCT message_id) FROM {schema}.events").split("|")
        assert int(total) == int(distinct), "an event was stored twice"
        stored = set(psql(f"SELECT message_id FROM {schema}.events").split())
        missing = acked - stored
        assert not missing, f"acknowledged but not stored: {sorted(missing)[:10]}"
        assert len(acked) == 3 * n

        big = {u for u in users if int(u[2:]) % 2 == 0}
        # Every process reaches the head of the log and reports the same segment size there.
        head = int(psql(f"SELECT max(seq) FROM {schema}.events"))
        for name, srv in procs.items():
            assert wait_until(lambda: metric(srv, "flywheel_audience_position") == head, 30), \
                f"{name} stands at {metric(srv, 'flywheel_audience_position')}, the log at {head}"
        sizes = {name: metric(srv, "flywheel_audience_members", '{kind="segment",name="mp_big"}')
                 for name, srv in procs.items()}
        assert set(sizes.values()) == {len(big)}, sizes
        # An ad-hoc count through either api process, with the position it was taken at.
        for srv in apis:
            status, body, _ = srv.request("POST", "/api/v1/segments/count",
                                          {"expression": "spend(30d) > 100 元"})
            assert status == 200, body
            assert (body["count"], body["position"]) == (len(big), head), body
        def recorders():
            return [name for name, srv in procs.items() if metric(srv, "flywheel_audience_recorder") == 1]
        # A killed holder's lease runs out within its 10 s; then exactly one process holds it.
        assert wait_until(lambda: len(recorders()) == 1, 20), f"processes logging transitions: {recorders()}"

        # Journeys: everybody welcomed once, every segment member once (the recorder lease
        # moves within its 10 s when its holder was killed, and the new holder reconciles).
        def delivered(prefix):
            return {rcpt[0] for rcpt, msg in inbox.snapshot() if str(msg["Subject"]).startswith(prefix)}
        assert wait_until(lambda: len(delivered("歡迎")) >= n, 90), f"welcomed {len(delivered('歡迎'))} of {n}"
        assert wait_until(lambda: len(delivered("貴賓")) >= len(big), 90), \
            f"VIP mails to {len(delivered('貴賓'))} of {len(big)}"
        time.sleep(3)
        assert delivered("歡迎") == {f"{u}@example.com" for u in users}
        assert delivered("貴賓") == {f"{u}@example.com" for u in big}, "VIP mail to a non-member"
        runs = psql(f"SELECT journey, user_id, count(*) FROM {schema}.journey_runs "
                    "GROUP BY journey, user_id HAVING count(*) > 1")
        assert runs == "", f"entered twice: {runs}"
        assert int(psql(f"SELECT count(*) FROM {schema}.journey_runs WHERE journey = 'mp_vip'")) == len(big)
        by_user = {}
        for rcpt, msg in inbox.snapshot():
            by_user.setdefault((rcpt[0], str(msg["Subject"])[:2]), []).append(msg["Message-ID"])
        different = {k: v for k, v in by_user.items() if len(set(v)) > 1}
        assert not different, f"two different messages: {different}"
        redelivered = sum(len(v) - 1 for v in by_user.values())
        print(f"multi-process: {len(acked)} events acknowledged and stored once; "
              f"{len(inbox.snapshot())} mails, {redelivered} redelivered with the same Message-ID; "
              f"segment size {len(big)} on all 4 processes at position {head}; "
              f"{len(orders)} of {STOCK} flash units sold to distinct buyers; "
              f"{len(coupons)} coupons each redeemed for one order")
        # Two worker kills, each with at most its effects in flight (32) taken by the relay
        # but not yet committed as sent (docs/journeys.md).
        assert redelivered <= 2 * 32, {k: len(v) for k, v in by_user.items() if len(v) > 1}
    finally:
        # The schema's owner last: its stop drops the schema.
        for srv in sorted(procs.values(), key=lambda p: p.owns_schema):
            srv.stop()
        controller.stop()
