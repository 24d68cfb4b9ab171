"""Frequency caps shared through Redis by several processes: one `api` and two `worker`
processes on one PostgreSQL schema with `--redis`. Every user triggers four journeys at
once under a cap of one marketing message a day; the runs are spread over both workers
(one timer per claim), which send at the same moments, and still every user gets exactly
one e-mail and three messages skipped by the cap (the reservation is atomic in Redis,
whichever process sends). The same run without `--redis` sent 109-113 mails to the 60
users (each worker's in-process reservations and the message log cannot see the other
worker's send in flight).
"""

import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from flywheel_server import journeys_config, IN_CI, PG_URL, Inbox, Server, free_port, pg_reachable, wait_until  # noqa: E402

REDIS = ("127.0.0.1", 6379)


def redis_reachable():
    try:
        socket.create_connection(REDIS, timeout=1).close()
        return True
    except OSError:
        return False


def config(port, prefix):
    # One timer per claim: a user's four runs spread over both workers.
    return f'redis_prefix = "{prefix}"\n' + journeys_config(
        port,
        journeys="lease_ms = 2000\nbatch = 1",
        delivery='caps = [{scope = "all", period = "day", limit = 1, action = "skip"}]',
    )


def journey(i):
    return {
        "name": f"cap_{i}",
        "trigger": {"event": {"name": "Signed Up"}},
        "entry": "once",
        "steps": [{"id": "hi", "type": "send", "channels": ["email"], "subject": f"促銷 {i}",
                   "text": "新品上架"}],
    }


def psql(sql):
    out = subprocess.run(["psql", PG_URL, "-qAtc", sql], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(not IN_CI and not pg_reachable(), reason=f"PostgreSQL unreachable at {PG_URL}")
@pytest.mark.skipif(not IN_CI and not redis_reachable(), reason="Redis unreachable at 127.0.0.1:6379")
def test_two_workers_share_one_frequency_cap_through_redis(tmp_path):
    inbox = Inbox(delay=0.005)
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    prefix = "fwtest-scale-" + secrets.token_hex(6)
    procs = {}
    try:
        schema = None
        for name, role in [("api", "api"), ("worker1", "worker"), ("worker2", "worker")]:
            d = tmp_path / name
            d.mkdir()
            srv = Server("postgres", d, config=config(port, prefix), schema=schema,
                         serve_args=["--role", role, "--redis", "redis://127.0.0.1:6379"],
                         owns_schema=schema is None)
            schema = srv.schema
            if procs:
                srv.write_key = procs["api"].write_key
            srv.start()
            procs[name] = srv
        api = procs["api"]
        journeys = 4
        for i in range(journeys):
            j = journey(i)
            assert api.request("POST", "/api/v1/journeys", j)[0] == 201
            assert api.request("POST", f"/api/v1/journeys/{j['name']}/start")[0] == 200

        n = 60
        users = [f"cap{i:03d}" for i in range(n)]
        for k in range(0, n, 10):
            batch = []
            for u in users[k:k + 10]:
                batch.append({"type": "identify", "userId": u, "messageId": f"id-{u}",
                              "traits": {"email": f"{u}@example.com"}})
                batch.append({"type": "track", "userId": u, "event": "Signed Up", "messageId": f"su-{u}"})
            api.track(batch)

        def settled():
            return int(psql(f"SELECT count(*) FROM {schema}.messages WHERE status IN ('sent', 'skipped')"))
        assert wait_until(lambda: settled() == journeys * n, 120), f"{settled()} of {journeys * n} messages settled"
        time.sleep(1)

        sent = psql(f"SELECT user_id, count(*) FROM {schema}.messages WHERE status = 'sent' GROUP BY user_id")
        per_user = dict(line.split("|") for line in sent.splitlines())
        assert per_user == {u: "1" for u in users}, \
            f"users with other than one message: {[(u, c) for u, c in per_user.items() if c != '1'][:10]}"
        skipped = int(psql(f"SELECT count(*) FROM {schema}.messages WHERE status = 'skipped' "
                           "AND reason LIKE 'frequency cap%'"))
        assert skipped == (journeys - 1) * n
        mails = {}
        for rcpt, _ in inbox.snapshot():
            mails[rcpt[0]] = mails.get(rcpt[0], 0) + 1
        assert mails == {f"{u}@example.com": 1 for u in users}
        print(f"shared caps: {n} users x {journeys} journeys under 1 a day -> {len(mails)} mails, "
              f"{skipped} skipped by the cap, worker cap fallbacks: "
              f"{[metric(procs[w], 'flywheel_journey_cap_unshared_total') for w in ('worker1', 'worker2')]}")
        for w in ("worker1", "worker2"):
            assert metric(procs[w], "flywheel_journey_cap_unshared_total") == 0
    finally:
        for srv in sorted(procs.values(), key=lambda p: p.owns_schema):
            srv.stop()
        controller.stop()


def metric(srv, name):
    status, body, _ = srv.request("GET", "/metrics", admin=False)
    assert status == 200
    text = body.decode() if isinstance(body, bytes) else str(body)
    for line in text.splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[-1]))
    return None
