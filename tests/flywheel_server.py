"""A `flywheel serve` process for end-to-end tests: SQLite in a temporary data dir or a
fresh PostgreSQL schema, an optional `flywheel.toml`, admin calls, a graceful stop or a
SIGKILL, and a restart on the same data. Also the SMTP receiver's inbox (an aiosmtpd
handler) and a free local port.

Environment: FLYWHEEL_BIN (the binary; default <repo>/target/debug/flywheel),
FLYWHEEL_TEST_PG (default postgres://postgres@127.0.0.1:5432/test), CI=true (an
unreachable PostgreSQL fails instead of skipping).
"""

import email
import email.policy
import json
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = os.environ.get("FLYWHEEL_BIN", str(REPO / "target" / "debug" / "flywheel"))
PG_URL = os.environ.get("FLYWHEEL_TEST_PG", "postgres://postgres@127.0.0.1:5432/test")
ADMIN_TOKEN = "e2e-test-admin-token"
IN_CI = os.environ.get("CI", "").lower() in ("true", "1")


def stores():
    """The stores an end-to-end test runs on: SQLite, and PostgreSQL when it answers (always
    with CI=true, where an unreachable one then fails the test)."""
    out = ["sqlite"]
    if IN_CI or pg_reachable():
        out.append("postgres")
    return out


def journeys_config(smtp_port, journeys="", delivery="", connections=4):
    """A `flywheel.toml` for journeys that mail a local SMTP receiver: shop timezone, no
    quiet hours, email without consent records; `journeys` and `delivery` are extra lines
    of `[journeys]` and `[journeys.delivery]`."""
    return f"""
[journeys]
timezone = "Asia/Shanghai"
{journeys}

[journeys.delivery]
quiet_hours = "00:00-00:00"
{delivery}

[journeys.consent]
opt_out_channels = ["email"]

[journeys.email]
host = "127.0.0.1"
port = {smtp_port}
from = "飛輪商店 <shop@example.com>"
max_connections = {connections}
"""


def wait_until(pred, timeout, step=0.1):
    """Polls `pred` until it is true or `timeout` seconds pass; returns its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def free_port():
    """A local TCP port nothing listens on (yet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """An aiosmtpd handler keeping every message as (recipients, parsed message);
    `delay` slows each DATA answer."""

    def __init__(self, delay=0.0):
        self.messages = []
        self.delay = delay
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            time.sleep(self.delay)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append((envelope.rcpt_tos, msg))
        return "250 OK"

    def snapshot(self):
        with self.lock:
            return list(self.messages)


def pg_reachable():
    u = urllib.parse.urlsplit(PG_URL)
    try:
        socket.create_connection((u.hostname or "127.0.0.1", u.port or 5432), timeout=2).close()
        return True
    except OSError:
        return False


class Server:
    """One `flywheel serve` process. `schema` shares a PostgreSQL schema with other
    processes (the first one's `stop` drops it: pass `owns_schema=False` to the others);
    `serve_args` are extra `serve` flags (e.g. `--role worker`)."""

    def __init__(self, store, tmp_path, config=None, listen="127.0.0.1:0", schema=None,
                 serve_args=(), owns_schema=True):
        self.store_args, self.schema = [], None
        self.serve_args = list(serve_args)
        self.owns_schema = owns_schema
        if store == "postgres":
            self.schema = schema or "sdk_" + secrets.token_hex(6)
            self.store_args = ["--store", f"{PG_URL}?schema={self.schema}"]
        config_args = []
        if config is not None:
            path = tmp_path / "flywheel.toml"
            path.write_text(config)
            config_args = ["--config", str(path)]
        self.base = [BIN, *config_args, "--data-dir", str(tmp_path / "data"), *self.store_args]
        self.listen = listen
        self.log_path = tmp_path / "server.log"
        self.proc = None
        self.log = None
        self.write_key = None

    def cli(self, *args):
        out = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, f"flywheel {' '.join(args)} failed: {out.stderr}"
        return out.stdout

    def start(self):
        if self.write_key is None:
            self.write_key = json.loads(self.cli("keys", "create", "e2e", "--scope", "server", "--format", "json"))["secret"]
        env = {**os.environ, "FLYWHEEL_ADMIN_TOKEN": ADMIN_TOKEN}
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen([*self.base, "serve", "--listen", self.listen, *self.serve_args],
                                     stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith("listening on "):
                    self.url = line.split()[-1].rstrip("/")
                    # Restart on the same port (links in sent messages keep working).
                    self.listen = self.url.removeprefix("http://")
                    return
                if not line and self.proc.poll() is not None:
                    break
        raise AssertionError(f"server did not start:\n{self.log_path.read_text()}")

    def kill(self):
        """SIGKILL: no shutdown at all."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        self.proc = None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.proc.stdout.close()
            self.log.close()
        if self.schema and self.owns_schema and shutil.which("psql"):  # best effort: no test schemas left
            subprocess.run(["psql", PG_URL, "-qc", f"DROP SCHEMA IF EXISTS {self.schema} CASCADE"],
                           capture_output=True, timeout=30)

    def request(self, method, path, body=None, headers=None, admin=True):
        """Calls the server; returns (status, parsed JSON body or raw bytes, headers)."""
        h = dict(headers or {})
        if admin:
            h["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.url + path, data=data, headers=h, method=method)
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(req, timeout=30) as res:
                raw = res.read()
                return res.status, parse(raw, res.headers), res.headers
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, parse(raw, e.headers), e.headers

    def get(self, path):
        """GET an admin API path; returns (status, parsed JSON body)."""
        status, body, _ = self.request("GET", path)
        return status, body

    def profile(self, pid, sub=""):
        status, body = self.get(f"/api/v1/profiles/{urllib.parse.quote(pid, safe=':')}{sub}")
        assert status == 200, f"GET profile {pid}{sub}: {status} {body}"
        return body

    def track(self, batch):
        """POSTs a tracking batch with the write key."""
        import base64
        auth = base64.b64encode(f"{self.write_key}:".encode()).decode()
        status, body, _ = self.request("POST", "/v1/batch", {"batch": batch},
                                       headers={"Authorization": f"Basic {auth}"}, admin=False)
        assert status == 200, f"tracking: {status} {body}"
        return body


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def parse(raw, headers):
    if "json" in (headers.get("Content-Type") or ""):
        return json.loads(raw or b"null")
    return raw
