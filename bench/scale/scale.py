"""bench/scale: Flywheel's scale-out on one machine (PostgreSQL + NATS JetStream + Redis).

Phases, each on a fresh PostgreSQL schema and NATS prefix of its own:
  ingest-1w, ingest-2w   tracking events through 1 api process, with 1 then 2 worker processes
  journey-1w, journey-2w an event-triggered journey sending e-mail to a local SMTP sink,
                         with 1 then 2 worker processes, each pinned to its own core
  lag                    2 api processes + 1 worker: an event posted to one api process until
                         the segment count on the other counts it
For every phase: CPU seconds per process (and its render children, and the PostgreSQL
backends serving it) per 1,000 items, and PostgreSQL sampled every 20 ms for connections
waiting on a lock and for who holds the global write lock. See bench/scale/README.md.
"""

import argparse
import base64
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[2]
# Where to create the run's own database (dropped at the end): the global write lock is an
# advisory lock, which PostgreSQL scopes to a database, so a database of its own keeps other
# users of the server (tests, other runs) off the lock this bench measures.
PG_ADMIN_URL = os.environ.get("FLYWHEEL_TEST_PG", "postgres://postgres@127.0.0.1:5432/test")
PG_URL = PG_ADMIN_URL  # replaced by the run's database in main()
NATS_URL = os.environ.get("FLYWHEEL_TEST_NATS", "nats://127.0.0.1:4222")
REDIS_URL = os.environ.get("FLYWHEEL_TEST_REDIS", "redis://127.0.0.1:6379")
ADMIN_TOKEN = "bench-scale-admin-token-" + secrets.token_hex(8)
TICK = os.sysconf("SC_CLK_TCK")
# Every write transaction takes one advisory lock (crates/store/src/postgres.rs
# write_lock_key: a key per schema); it is the only advisory lock Flywheel takes, so the
# sampler counts any granted bigint-keyed advisory lock in the run's database as it.
OUT = REPO / "bench" / "out" / "scale"


def die_with_parent():
    """preexec_fn: the child gets SIGKILL if this bench dies (even by SIGKILL), so no
    server outlives a run."""
    import ctypes
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(smtp_port):
    # As tests/scale/test_multiprocess.py: no quiet hours, no caps, e-mail opt-out.
    return f"""
[journeys]
timezone = "Asia/Shanghai"

[journeys.delivery]
quiet_hours = "00:00-00:00"
caps = []

[journeys.consent]
opt_out_channels = ["email"]

[journeys.email]
host = "127.0.0.1"
port = {smtp_port}
from = "Bench Shop <shop@example.com>"
max_connections = 8
"""


# ---------------------------------------------------------------- CPU accounting

def proc_ticks(pid, children_done=False):
    """utime+stime of `pid` in clock ticks (plus cutime+cstime: reaped children)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0
    # fields[0] is state (field 3); utime is field 14 -> index 11.
    t = int(fields[11]) + int(fields[12])
    if children_done:
        t += int(fields[13]) + int(fields[14])
    return t


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    kids = [int(k) for k in f.read().split()]
                out.extend(kids)
                todo.extend(kids)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def tree_ticks(pid):
    """CPU ticks of a process, its reaped children and its live descendants (the render
    sandbox children)."""
    return proc_ticks(pid, children_done=True) + sum(proc_ticks(k) for k in descendants(pid))


def machine_busy_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v[:8]) - idle, sum(v[:8])


# ---------------------------------------------------------------- processes

class Proc:
    """One `flywheel serve` process; its PostgreSQL connections carry `application_name`
    `app` so the lock sampler can tell them apart."""

    def __init__(self, bench, name, role, phase, cpu=None):
        self.bench, self.name, self.role, self.cpu = bench, name, role, cpu
        self.app = f"{phase.app}_{name}"
        self.dir = phase.dir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        store = f"{PG_URL}?schema={phase.schema}&application_name={self.app}"
        self.base = [bench.bin, "--config", str(phase.config), "--data-dir", str(self.dir / "data"),
                     "--store", store]
        self.serve_args = ["--role", role, "--bus", f"{NATS_URL}?prefix={phase.prefix}",
                           "--redis", REDIS_URL]
        self.proc = None
        self.url = None

    def cli(self, *args):
        out = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"flywheel {' '.join(args)}: {out.stderr}")
        return out.stdout

    def start(self):
        pin = ["taskset", "-c", str(self.cpu)] if self.cpu is not None else []
        env = {**os.environ, "FLYWHEEL_ADMIN_TOKEN": ADMIN_TOKEN}
        self.log = open(self.dir / "server.log", "a")
        self.proc = subprocess.Popen([*pin, *self.base, "serve", "--listen", "127.0.0.1:0", *self.serve_args],
                                     stdout=subprocess.PIPE, stderr=self.log, text=True, env=env,
                                     start_new_session=True, preexec_fn=die_with_parent)
        self.bench.procs.append(self)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("listening on "):
                self.url = line.split()[-1].rstrip("/")
                host, port = self.url.removeprefix("http://").rsplit(":", 1)
                self.host, self.port = host, int(port)
                # Drain stdout so a chatty process never blocks on a full pipe.
                threading.Thread(target=self.proc.stdout.read, daemon=True).start()
                return self
            if not line and self.proc.poll() is not None:
                break
        raise RuntimeError(f"{self.name} did not start:\n{(self.dir / 'server.log').read_text()[-3000:]}")

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc:
            self.log.close()
            self.proc = None

    def request(self, method, path, body=None, admin=True, conn=None):
        h = {}
        if admin:
            h["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        c = conn or http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            raw = r.read()
            return r.status, raw
        finally:
            if conn is None:
                c.close()

    def metrics(self, conn=None):
        status, raw = self.request("GET", "/metrics", admin=False, conn=conn)
        if status != 200:
            raise RuntimeError(f"{self.name} /metrics: {status}")
        return raw.decode()


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[-1]))
    return None


# ---------------------------------------------------------------- PostgreSQL sampling

class LockSampler:
    """Samples pg_stat_activity every `interval` s: our connections waiting on a lock (per
    process), other sessions' waits, and who holds the global write lock."""

    QUERY = f"""
        SELECT a.application_name, a.wait_event_type = 'Lock', coalesce(a.wait_event, ''), coalesce(a.state, ''), left(regexp_replace(coalesce(a.query, ''), '\s+', ' ', 'g'), 90),
               EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory'
                       AND l.granted AND l.objsubid = 1
                       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
        FROM pg_stat_activity a
        WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
    """

    def __init__(self, prefix, interval=0.02):
        self.prefix, self.interval = prefix, interval
        self.conn = psycopg.connect(PG_URL, autocommit=True, application_name="fwscale_sampler")
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self._clear()

    def reset(self):
        with self.lock:
            self._clear()

    def _clear(self):
        self.samples = 0
        self.elapsed = 0.0
        self.wait_s = {}          # our process name -> connection-seconds waiting on a lock
        self.wait_events = {}     # wait_event (advisory, transactionid, ...) -> connection-seconds
        self.foreign_wait_s = 0.0
        self.held_ours_s = 0.0    # seconds one of our connections held the write lock
        self.held_by = {}         # our process name -> seconds it held the write lock
        self.held_state = {}      # the holder's state (active, idle in transaction) -> seconds
        self.held_query = {}      # "process: the holder's (last) statement" -> seconds
        self.held_foreign_s = 0.0
        self.any_wait_s = 0.0     # seconds with at least one of ours waiting

    def run(self):
        last = time.monotonic()
        while not self.stop_flag.is_set():
            try:
                rows = self.conn.execute(self.QUERY).fetchall()
            except psycopg.Error:
                rows = []
            now = time.monotonic()
            dt, last = now - last, now
            with self.lock:
                self.samples += 1
                self.elapsed += dt
                waiting = 0
                for app, is_wait, event, state, query, holds in rows:
                    ours = app.startswith(self.prefix)
                    if is_wait:
                        if ours:
                            name = app[len(self.prefix):]
                            self.wait_s[name] = self.wait_s.get(name, 0.0) + dt
                            self.wait_events[event] = self.wait_events.get(event, 0.0) + dt
                            waiting += 1
                        else:
                            self.foreign_wait_s += dt
                    if holds:
                        if ours:
                            self.held_ours_s += dt
                            name = app[len(self.prefix):]
                            self.held_by[name] = self.held_by.get(name, 0.0) + dt
                            self.held_state[state] = self.held_state.get(state, 0.0) + dt
                            q = f"{name.split('_', 1)[-1]}: {query}"
                            self.held_query[q] = self.held_query.get(q, 0.0) + dt
                        else:
                            self.held_foreign_s += dt
                if waiting:
                    self.any_wait_s += dt
            self.stop_flag.wait(self.interval)

    def start(self):
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def snapshot(self):
        with self.lock:
            return {
                "samples": self.samples, "elapsed": self.elapsed, "wait_s": dict(self.wait_s),
                "wait_events": dict(self.wait_events), "foreign_wait_s": self.foreign_wait_s,
                "held_ours_s": self.held_ours_s, "held_by": dict(self.held_by),
                "held_state": dict(self.held_state), "held_query": dict(self.held_query), "held_foreign_s": self.held_foreign_s,
                "any_wait_s": self.any_wait_s,
            }

    def close(self):
        self.stop_flag.set()
        self.thread.join(timeout=5)
        self.conn.close()

    def commits(self):
        """Transactions committed in this database so far (PostgreSQL's statistics, which
        lag by up to a second: phases are longer than that)."""
        return self.conn.execute("SELECT xact_commit FROM pg_stat_database "
                                 "WHERE datname = current_database()").fetchone()[0]

    def backends(self, prefix):
        """PostgreSQL backend pid -> our process name, for connections of `prefix`."""
        rows = self.conn.execute(
            "SELECT pid, application_name FROM pg_stat_activity WHERE application_name LIKE %s",
            (prefix.replace("_", r"\_") + "%",)).fetchall()
        return {pid: app[len(prefix):] for pid, app in rows}


# ---------------------------------------------------------------- a measured phase

class Phase:
    """One configuration on its own schema and NATS prefix."""

    def __init__(self, bench, key):
        self.bench, self.key = bench, key
        self.schema = f"bench_scale_{bench.run}_{key}"
        self.prefix = f"fwscale_{bench.run}_{key}"
        self.app = f"fws{bench.run}{key}"
        self.dir = bench.tmp / key
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = self.dir / "flywheel.toml"
        self.config.write_text(config(bench.smtp_port))
        self.procs = []
        bench.schemas.append(self.schema)
        bench.prefixes.append(self.prefix)

    def add(self, name, role, cpu=None):
        p = Proc(self.bench, name, role, self, cpu)
        if not self.procs:
            self.write_key = json.loads(p.cli("keys", "create", "bench", "--scope", "server",
                                              "--format", "json"))["secret"]
        p.start()
        self.procs.append(p)
        return p

    def stop(self):
        for p in self.procs:
            p.stop()

    def sql(self, q, args=()):
        with psycopg.connect(PG_URL, autocommit=True, application_name="fwscale_bench") as c:
            c.execute(f'SET search_path TO "{self.schema}"')
            return c.execute(q, args).fetchall()

    def head(self):
        return self.sql("SELECT coalesce(max(seq), 0) FROM events")[0][0]

    def wait_caught_up(self, timeout):
        """Seconds until every process's audience engine stands at the log's head."""
        t0 = time.monotonic()
        head = self.head()
        while time.monotonic() - t0 < timeout:
            try:
                if all(metric(p.metrics(), "flywheel_audience_position") == head for p in self.procs):
                    return time.monotonic() - t0
            except (OSError, RuntimeError):
                pass
            time.sleep(0.05)
        return None

    # -- measurement window

    def begin(self):
        s = self.bench.sampler
        self.backends = s.backends(self.app + "_")
        self.t0 = time.monotonic()
        self.cpu0 = {p.name: tree_ticks(p.pid) for p in self.procs}
        self.pg0 = {pid: proc_ticks(pid) for pid in self.backends}
        self.self0 = sum(os.times()[:2])
        self.sink0 = tree_ticks(self.bench.sink.pid)
        self.machine0 = machine_busy_ticks()
        self.commits0 = s.commits()
        s.reset()

    def end(self, items, what):
        s = self.bench.sampler
        locks = s.snapshot()
        dur = time.monotonic() - self.t0
        cpu = {p.name: (tree_ticks(p.pid) - self.cpu0[p.name]) / TICK for p in self.procs}
        backends = {**self.backends, **s.backends(self.app + "_")}
        pg = {}
        for pid, name in backends.items():
            pg[name] = pg.get(name, 0.0) + (proc_ticks(pid) - self.pg0.get(pid, 0)) / TICK
        busy1, total1 = machine_busy_ticks()
        busy = (busy1 - self.machine0[0]) / TICK
        wall_cores = (total1 - self.machine0[1]) / TICK
        loader = sum(os.times()[:2]) - self.self0
        sink = (tree_ticks(self.bench.sink.pid) - self.sink0) / TICK
        ours = sum(cpu.values()) + sum(pg.values()) + loader + sink
        commits = s.commits() - self.commits0
        per1k = lambda s: round(s / (items / 1000), 4) if items else None  # noqa: E731
        wait_total = sum(locks["wait_s"].values())
        return {
            "items": items, "what": what, "seconds": round(dur, 3),
            "cpu_s": {k: round(v, 3) for k, v in cpu.items()},
            "cpu_s_per_1000": {k: per1k(v) for k, v in cpu.items()},
            "pg_backend_cpu_s": {k: round(v, 3) for k, v in pg.items()},
            "pg_backend_cpu_s_per_1000": {k: per1k(v) for k, v in pg.items()},
            "pg_commits": commits, "pg_commits_per_1000": per1k(commits),
            "bench_cpu_s": {"loader": round(loader, 3), "smtp_sink": round(sink, 3)},
            "machine": {"busy_core_s": round(busy, 2), "cores": round(wall_cores / max(dur, 1e-9), 2),
                        "utilisation": round(busy / wall_cores, 3) if wall_cores else None,
                        "others_core_s": round(max(busy - ours, 0.0), 2),
                        "loadavg": open("/proc/loadavg").read().split()[:3]},
            "locks": {
                "samples": locks["samples"],
                "wait_conn_s": round(wait_total, 3),
                "wait_conn_s_by_process": {k: round(v, 3) for k, v in locks["wait_s"].items()},
                "wait_by_event": {k: round(v, 3) for k, v in locks["wait_events"].items()},
                "mean_waiting_connections": round(wait_total / dur, 4) if dur else None,
                "any_waiting_share": round(locks["any_wait_s"] / dur, 4) if dur else None,
                "write_lock_held_share": round(locks["held_ours_s"] / dur, 4) if dur else None,
                "write_lock_held_share_by_process": {k: round(v / dur, 4) for k, v in locks["held_by"].items()} if dur else {},
                "write_lock_holder_state_share": {k: round(v / dur, 4) for k, v in locks["held_state"].items()} if dur else {},
                "write_lock_holder_statements": {k: round(v / dur, 4) for k, v in sorted(
                    locks["held_query"].items(), key=lambda kv: -kv[1])[:12]} if dur else {},
                "foreign_write_lock_held_share": round(locks["held_foreign_s"] / dur, 4) if dur else None,
                "foreign_wait_conn_s": round(locks["foreign_wait_s"], 3),
            },
        }


# ---------------------------------------------------------------- load

def basic(secret):
    return "Basic " + base64.b64encode(f"{secret}:".encode()).decode()


def post_all(proc, secret, bodies, clients, deadline):
    """Sends pre-serialised /v1/batch bodies from `clients` keep-alive connections;
    retries 429/503. Returns per-request latencies (s)."""
    it = iter(range(len(bodies)))
    lock = threading.Lock()
    lat, errors = [], []
    headers = {"Authorization": basic(secret), "Content-Type": "application/json"}

    def worker():
        conn = http.client.HTTPConnection(proc.host, proc.port, timeout=60)
        mine = []
        try:
            while True:
                with lock:
                    i = next(it, None)
                if i is None:
                    return
                for attempt in range(200):
                    if time.monotonic() > deadline:
                        raise TimeoutError("load deadline passed")
                    t = time.monotonic()
                    try:
                        conn.request("POST", "/v1/batch", body=bodies[i], headers=headers)
                        r = conn.getresponse()
                        raw = r.read()
                    except (OSError, http.client.HTTPException):
                        conn.close()
                        conn = http.client.HTTPConnection(proc.host, proc.port, timeout=60)
                        time.sleep(0.05)
                        continue
                    if r.status == 200:
                        mine.append(time.monotonic() - t)
                        break
                    if r.status in (429, 503):
                        time.sleep(0.02)
                        continue
                    raise RuntimeError(f"/v1/batch: {r.status} {raw[:300]!r}")
                else:
                    raise RuntimeError("/v1/batch: no success after 200 attempts")
        except Exception as e:  # noqa: BLE001 - reported by the caller
            errors.append(e)
        finally:
            conn.close()
            with lock:
                lat.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return lat


def batches(events, size=100):
    return [json.dumps({"batch": events[i:i + size]}).encode() for i in range(0, len(events), size)]


def ingest_events(n, users, tag):
    """The bench/ingest mix: per 10 events 1 identify, 2 pages, 1 Product Added,
    1 Order Completed, 5 Product Viewed."""
    out = []
    for i in range(n):
        u = f"u{(i * 7919) % users}"
        k = i % 10
        mid = f"{tag}-{i}"
        if k == 0:
            e = {"type": "identify", "userId": u, "traits": {"email": f"{u}@example.com"}}
        elif k in (1, 2):
            e = {"type": "page", "userId": u, "name": "Home", "properties": {"path": "/"}}
        elif k == 3:
            e = {"type": "track", "userId": u, "event": "Product Added",
                 "properties": {"product_id": f"p{i % 500}", "price": 99, "quantity": 1}}
        elif k == 4:
            e = {"type": "track", "userId": u, "event": "Order Completed",
                 "properties": {"order_id": f"o-{tag}-{i}", "total": 120,
                                "products": [{"product_id": f"p{i % 500}", "price": 120, "quantity": 1}]}}
        else:
            e = {"type": "track", "userId": u, "event": "Product Viewed",
                 "properties": {"product_id": f"p{i % 500}"}}
        e["messageId"] = mid
        out.append(e)
    return out


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    k = max(0, min(len(xs) - 1, int(round(p / 100 * len(xs) + 0.5)) - 1))
    return xs[k]


# ---------------------------------------------------------------- the bench

class Sink:
    """The SMTP sink process and a reader of its per-message lines."""

    def __init__(self, port):
        py = sys.executable
        self.proc = subprocess.Popen([py, str(Path(__file__).with_name("smtp_sink.py")), str(port)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     start_new_session=True, preexec_fn=die_with_parent)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("SMTP sink did not start")
        self.times, self.rcpts = [], []
        self.lock = threading.Lock()
        threading.Thread(target=self.read, daemon=True).start()

    @property
    def pid(self):
        return self.proc.pid

    def read(self):
        for line in self.proc.stdout:
            t, rcpt = line.split(" ", 1)
            with self.lock:
                self.times.append(float(t))
                self.rcpts.append(rcpt.strip())

    def mark(self):
        with self.lock:
            return len(self.times)

    def since(self, mark):
        with self.lock:
            return self.times[mark:], self.rcpts[mark:]

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Bench:
    def __init__(self, args):
        self.args = args
        self.bin = args.bin
        self.run = secrets.token_hex(3)
        self.tmp = OUT / f"tmp-{self.run}"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.procs, self.schemas, self.prefixes = [], [], []
        global PG_URL
        self.db = f"fwscale_{self.run}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as c:
            # Databases of runs that were killed: dropped when nobody is connected to them.
            for (old,) in c.execute("SELECT datname FROM pg_database WHERE datname LIKE 'fwscale\\_%'").fetchall():
                try:
                    c.execute(f'DROP DATABASE "{old}"')
                except psycopg.Error:
                    pass
            c.execute(f'CREATE DATABASE "{self.db}"')
        u = urllib.parse.urlsplit(PG_ADMIN_URL)
        PG_URL = urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + self.db, "", ""))
        self.smtp_port = free_port()
        cpus = os.sched_getaffinity(0)
        self.pin = shutil.which("taskset") is not None and len(cpus) >= 2
        self.cores = sorted(cpus)

    def worker_cpu(self, i):
        return self.cores[i % len(self.cores)] if self.pin else None

    # -- phases

    def ingest(self, workers):
        a = self.args
        ph = Phase(self, f"ingest{workers}w")
        api = ph.add("api", "api")
        for i in range(workers):
            ph.add(f"worker{i + 1}", "worker", self.worker_cpu(i))
        events = ingest_events(a.events, a.users, f"ev{workers}")
        bodies = batches(events)
        log(f"ingest, {workers} worker(s): {len(events)} events in {len(bodies)} batches, {a.clients} clients")
        time.sleep(1)
        ph.begin()
        t0 = time.monotonic()
        lat = post_all(api, ph.write_key, bodies, a.clients, t0 + a.timeout)
        acked = time.monotonic() - t0
        stored_at = None
        while time.monotonic() - t0 < a.timeout:
            if ph.sql("SELECT count(*) FROM events")[0][0] >= len(events):
                stored_at = time.monotonic() - t0
                break
            time.sleep(0.05)
        catch = ph.wait_caught_up(a.timeout)
        done = time.monotonic() - t0
        r = ph.end(len(events), "events")
        stored = ph.sql("SELECT count(*) FROM events")[0][0]
        r.update({
            "workers": workers, "stored": stored, "acked_s": round(acked, 3),
            "stored_s": round(stored_at, 3) if stored_at else None,
            "events_per_s": round(len(events) / stored_at, 1) if stored_at else None,
            "caught_up_s": round(acked + catch, 3) if catch is not None else None,
            "all_processes_caught_up_per_s": round(len(events) / done, 1) if catch is not None else None,
            "request_ms": {"p50": round(pct(lat, 50) * 1000, 1), "p99": round(pct(lat, 99) * 1000, 1)},
        })
        ph.stop()
        return r

    def journey(self, workers):
        a = self.args
        ph = Phase(self, f"journey{workers}w")
        api = ph.add("api", "api")
        for i in range(workers):
            ph.add(f"worker{i + 1}", "worker", self.worker_cpu(i))
        name = "bench_welcome"
        j = {"name": name, "trigger": {"event": {"name": "Bench Trigger"}}, "entry": "once",
             "steps": [{"id": "hello", "type": "send", "channels": ["email"],
                        "subject": "Welcome {{ profile.id }}", "text": "Thanks for joining."}]}
        status, body = api.request("POST", "/api/v1/journeys", j)
        if status != 201:
            raise RuntimeError(f"create journey: {status} {body[:300]!r}")
        k = a.sends
        users = [f"j{workers}u{i}" for i in range(k)]
        ids = [{"type": "identify", "userId": u, "messageId": f"id-{u}",
                "traits": {"email": f"{u}@example.com"}} for u in users]
        log(f"journey, {workers} worker(s): identifying {k} users")
        post_all(api, ph.write_key, batches(ids), a.clients, time.monotonic() + a.timeout)
        if ph.wait_caught_up(a.timeout) is None:
            raise RuntimeError("processes did not catch up with the identifies")
        status, body = api.request("POST", f"/api/v1/journeys/{name}/start")
        if status != 200:
            raise RuntimeError(f"start journey: {status} {body[:300]!r}")
        time.sleep(1.0)  # the start reaches the workers as a cache invalidation
        triggers = batches([{"type": "track", "userId": u, "event": "Bench Trigger",
                             "messageId": f"tr-{u}"} for u in users])
        mark = self.sink.mark()
        log(f"journey, {workers} worker(s): {k} trigger events")
        ph.begin()
        t0 = time.time()
        m0 = time.monotonic()
        post_all(api, ph.write_key, triggers, a.clients, m0 + a.timeout)
        posted = time.monotonic() - m0
        got = []
        while time.monotonic() - m0 < a.timeout:
            got, rcpts = self.sink.since(mark)
            if len(set(rcpts)) >= k:
                break
            time.sleep(0.05)
        times, rcpts = self.sink.since(mark)
        r = ph.end(len(times), "sends")
        entered = ph.sql("SELECT count(*) FROM journey_runs WHERE journey = %s", (name,))[0][0]
        span = (times[-1] - times[0]) if len(times) > 1 else None
        r.update({
            "workers": workers, "users": k, "entered": entered, "received": len(times),
            "distinct_recipients": len(set(rcpts)), "triggers_posted_s": round(posted, 3),
            "first_mail_after_s": round(times[0] - t0, 3) if times else None,
            "last_mail_after_s": round(times[-1] - t0, 3) if times else None,
            "sends_per_s": round((len(times) - 1) / span, 1) if span else None,
            "complete": len(set(rcpts)) >= k,
        })
        ph.stop()
        return r

    def lag(self):
        a = self.args
        ph = Phase(self, "lag")
        pa = ph.add("apiA", "api")
        pb = ph.add("apiB", "api")
        ph.add("worker1", "worker", self.worker_cpu(0))
        seg = "bench_lag"
        headers = {"Authorization": basic(ph.write_key), "Content-Type": "application/json"}
        # A segment may only name an event the store has seen: one warm-up ping first.
        post_all(pa, ph.write_key, batches([{"type": "track", "userId": f"lag-{self.run}-warm",
                                             "event": "Lag Ping", "messageId": "lp-warm"}]), 1,
                 time.monotonic() + 30)
        ph.wait_caught_up(30)
        deadline = time.monotonic() + 30
        while True:
            status, body = pa.request("POST", "/api/v1/segments",
                                      {"name": seg, "expression": 'event("Lag Ping", within: 1h) >= 1'})
            if status != 400 or b"unknown_event" not in body or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if status not in (200, 201):
            raise RuntimeError(f"create segment: {status} {body[:300]!r}")
        label = f'flywheel_audience_members{{kind="segment",name="{seg}"}}'
        cb = http.client.HTTPConnection(pb.host, pb.port, timeout=10)
        ca = http.client.HTTPConnection(pa.host, pa.port, timeout=10)
        deadline = time.monotonic() + 30
        while metric(pb.metrics(cb), label) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{label} never appeared on apiB")
            time.sleep(0.05)
        log(f"lag: {a.pings} pings to apiA, watching apiB")
        lags, timeouts = [], 0
        ph.begin()
        for i in range(a.pings):
            before = metric(pb.metrics(cb), label)
            body = json.dumps({"batch": [{"type": "track", "userId": f"lag-{self.run}-{i}",
                                          "event": "Lag Ping", "messageId": f"lp-{i}"}]}).encode()
            t = time.monotonic()
            ca.request("POST", "/v1/batch", body=body, headers=headers)
            r = ca.getresponse()
            r.read()
            if r.status != 200:
                raise RuntimeError(f"/v1/batch on apiA: {r.status}")
            while True:
                if metric(pb.metrics(cb), label) >= before + 1:
                    lags.append(time.monotonic() - t)
                    break
                if time.monotonic() - t > 10:
                    timeouts += 1
                    break
                time.sleep(0.005)
        res = ph.end(len(lags), "pings")
        ms = [x * 1000 for x in lags]
        res.update({
            "pings": a.pings, "timeouts_10s": timeouts,
            "lag_ms": {"p50": round(pct(ms, 50), 1), "p95": round(pct(ms, 95), 1),
                       "p99": round(pct(ms, 99), 1), "max": round(max(ms), 1),
                       "mean": round(statistics.mean(ms), 1)} if ms else None,
        })
        ca.close()
        cb.close()
        ph.stop()
        return res

    # -- cleanup

    def cleanup(self):
        for p in self.procs:
            try:
                p.stop()
            except Exception as e:  # noqa: BLE001 - keep cleaning up
                log(f"stopping {p.name}: {e}")
        for p in self.procs:  # anything still alive in a process group of ours
            if p.proc is not None and p.proc.poll() is None:
                os.killpg(p.proc.pid, signal.SIGKILL)
        if getattr(self, "sink", None):
            self.sink.stop()
        if getattr(self, "sampler", None):
            self.sampler.close()
        try:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
        except psycopg.Error as e:
            log(f"dropping database {self.db}: {e}")
        for prefix in self.prefixes:
            nats_delete_stream(prefix)
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


def nats_delete_stream(name):
    """Deletes the run's JetStream stream (`$JS.API.STREAM.DELETE.<name>`), best effort."""
    host, port = NATS_URL.removeprefix("nats://").split("/")[0].rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.recv(4096)  # INFO
            inbox = f"_INBOX.fwscale.{secrets.token_hex(4)}"
            s.sendall(f'CONNECT {{"verbose":false,"pedantic":false}}\r\nSUB {inbox} 1\r\n'
                      f"PUB $JS.API.STREAM.DELETE.{name} {inbox} 0\r\n\r\nPING\r\n".encode())
            buf = b""
            deadline = time.monotonic() + 5
            while b"MSG " not in buf and time.monotonic() < deadline:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
    except OSError as e:
        log(f"deleting NATS stream {name}: {e}")


# ---------------------------------------------------------------- report

def ratio(a, b):
    return round(b / a, 3) if a and b else None


def report(res, args, bin_info):
    lines = []
    w = lines.append
    w("")
    w(f"bench/scale ({'quick' if args.quick else 'full'}): {bin_info}")
    w(f"machine: {os.cpu_count()} cores; workers pinned with taskset: {res['pinned']}")
    w("")
    ing = res.get("ingest", {})
    if ing:
        w(f"1. Ingest on PostgreSQL, 1 api process, {args.events:,} events in batches of 100 from {args.clients} clients")
        w(f"   {'workers':>7} {'events/s':>9} {'req p50':>8} {'req p99':>8} {'all caught up':>14}  waiting conns  write lock held")
        for k in ("1", "2"):
            r = ing.get(k)
            if r:
                w(f"   {k:>7} {r['events_per_s'] or 0:>9,.0f} {r['request_ms']['p50']:>6}ms {r['request_ms']['p99']:>6}ms "
                  f"{r['caught_up_s'] or float('nan'):>13.1f}s  {r['locks']['mean_waiting_connections']:>13.2f}  {r['locks']['write_lock_held_share']:>15.1%}")
        w(f"   1->2 workers ratio (events/s): {res.get('ingest_ratio')}")
    jr = res.get("journey", {})
    if jr:
        w("")
        w(f"2. Journey sends (event trigger -> e-mail to a local SMTP sink), {args.sends:,} users, workers pinned one per core")
        w(f"   {'workers':>7} {'sends/s':>8} {'received':>9} {'last mail':>10}  waiting conns  write lock held")
        for k in ("1", "2"):
            r = jr.get(k)
            if r:
                w(f"   {k:>7} {r['sends_per_s'] or 0:>8,.0f} {r['received']:>9} {r['last_mail_after_s'] or float('nan'):>9.1f}s"
                  f"  {r['locks']['mean_waiting_connections']:>13.2f}  {r['locks']['write_lock_held_share']:>15.1%}")
        w(f"   1->2 workers ratio (sends/s): {res.get('journey_ratio')}")
    w("")
    w("3. CPU seconds per 1,000 items (process + its render children | its PostgreSQL backends)")
    for title, group in (("ingest", ing), ("journey", jr)):
        for k in ("1", "2"):
            r = group.get(k)
            if not r:
                continue
            parts = [f"{n} {v:.3f} | {r['pg_backend_cpu_s_per_1000'].get(n, 0) or 0:.3f}"
                     for n, v in r["cpu_s_per_1000"].items()]
            w(f"   {title}-{k}w per 1,000 {r['what']}: " + ";  ".join(parts))
            w(f"      PostgreSQL commits (all transactions, reads included) per 1,000 {r['what']}: {r['pg_commits_per_1000']}")
            w(f"      bench side: loader {r['bench_cpu_s']['loader']:.1f}s, SMTP sink {r['bench_cpu_s']['smtp_sink']:.1f}s; "
              f"machine {r['machine']['utilisation']:.0%} busy, others (not this bench) {r['machine']['others_core_s']:.1f} core-s")
    w("")
    w("4. Lock waits (our connections waiting on a PostgreSQL lock, sampled every 20 ms)")
    for title, group in (("ingest", ing), ("journey", jr)):
        for k in ("1", "2"):
            r = group.get(k)
            if not r:
                continue
            L = r["locks"]
            by = ", ".join(f"{n} {v:.2f}" for n, v in sorted(L["wait_conn_s_by_process"].items())) or "none"
            ev = ", ".join(f"{n} {v:.2f}" for n, v in sorted(L["wait_by_event"].items())) or "-"
            w(f"   {title}-{k}w: {L['wait_conn_s']:.2f} connection-s waiting over {r['seconds']:.1f}s "
              f"(mean {L['mean_waiting_connections']:.2f} connections waiting; >=1 waiting {L['any_waiting_share']:.0%} of the time)")
            w(f"      connection-s by process: {by}; by wait event: {ev}")
            hb = ", ".join(f"{n.split('_', 1)[-1]} {v:.0%}" for n, v in sorted(L["write_lock_held_share_by_process"].items()))
            hs = ", ".join(f"{n} {v:.0%}" for n, v in sorted(L["write_lock_holder_state_share"].items()))
            w(f"      write lock held by us {L['write_lock_held_share']:.1%} of the phase (by {hb or '-'}; holder {hs or '-'})"
              + (f", by other sessions on this database {L['foreign_write_lock_held_share']:.1%}" if L["foreign_write_lock_held_share"] else ""))
            for q, v in list(L.get("write_lock_holder_statements", {}).items())[:3]:
                w(f"        {v:>4.0%} of the phase the holder's last statement was {q}")
    lag = res.get("lag")
    if lag:
        w("")
        m = lag["lag_ms"] or {}
        w(f"5. End-to-end lag, event posted to api A -> segment count on api B ({lag['pings']} pings, 1 worker)")
        w(f"   p50 {m.get('p50')} ms  p95 {m.get('p95')} ms  p99 {m.get('p99')} ms  max {m.get('max')} ms"
          f"  (target p99 <= 1000 ms: {'met' if m.get('p99') is not None and m['p99'] <= 1000 else 'NOT met'}); "
          f"timeouts {lag['timeouts_10s']}")
    w("")
    w("6. What this shows. A 2-core machine cannot show scaling to more machines: the processes,")
    w("   PostgreSQL, NATS, Redis and this load generator all share the same two cores. What allows")
    w("   projecting it is the 1->2 ratio with workers pinned one per core, the CPU per 1,000 items")
    w("   of each process (items/s one core delivers = 1000 / that figure), and the share of the")
    w("   time the global write lock is held or waited for: every write transaction in every")
    w("   process takes that one advisory lock, so write throughput of the whole deployment is")
    w("   bounded by 1 / (lock hold time per item) however many processes run.")
    for line in res.get("conclusions", []):
        w("   - " + line)
    return "\n".join(lines)


def conclusions(res):
    out = []
    for title, key, unit in (("ingest", "ingest", "events"), ("journey sends", "journey", "sends")):
        g = res.get(key, {})
        if "1" in g and "2" in g:
            r1, r2 = g["1"], g["2"]
            rate = "events_per_s" if key == "ingest" else "sends_per_s"
            rr = ratio(r1[rate], r2[rate])
            held = r2["locks"]["write_lock_held_share"]
            ceiling = (r2[rate] / held) if held and r2[rate] else None
            txt = (f"{title}: 2 workers give {rr}x the rate of 1; with 2 workers the write lock was held "
                   f"{held:.0%} of the time, with {r2['locks']['mean_waiting_connections']:.1f} connections waiting for it on average")
            if ceiling:
                txt += f"; at this lock hold time per item the write lock alone allows ~{ceiling:,.0f} {unit}/s"
            if held is not None and held >= 0.6:
                txt += " -- the write lock is close to saturated: it serialises this phase"
                util = r2["machine"]["utilisation"]
                if util is not None and util < 0.9:
                    txt += f" (the machine was only {util:.0%} busy: the lock, not the CPU, is the limit)"
            others = max(r1["machine"]["others_core_s"] / max(r1["seconds"], 1e-9),
                         r2["machine"]["others_core_s"] / max(r2["seconds"], 1e-9))
            if others > 0.25:
                txt += (f"; other jobs on the machine used up to {others:.1f} cores during these phases,"
                        " which distorts the ratio: rerun on a quiet machine")
            out.append(txt + ".")
    for title, key, unit in (("ingest", "ingest", "events"), ("journey", "journey", "sends")):
        r = res.get(key, {}).get("2")
        if not r:
            continue
        per_core = []
        for name, v in r["cpu_s_per_1000"].items():
            if v:
                per_core.append(f"{name.split('_')[-1]} {1000 / v:,.0f}")
        pg = sum(v or 0 for v in r["pg_backend_cpu_s_per_1000"].values())
        if pg:
            per_core.append(f"PostgreSQL (all our backends) {1000 / pg:,.0f}")
        out.append(f"{title}-2w, {unit}/s one core's CPU would carry, by process: " + ", ".join(per_core) + ".")
    lag = res.get("lag")
    if lag and lag.get("lag_ms"):
        out.append(f"lag p99 {lag['lag_ms']['p99']} ms from an event in one api process to the segment count in another.")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="20,000 events, 2,000 sends, 50 pings")
    ap.add_argument("--bin", default=os.path.expanduser("~/.cache/bench-target/release/flywheel"))
    ap.add_argument("--events", type=int)
    ap.add_argument("--users", type=int)
    ap.add_argument("--sends", type=int)
    ap.add_argument("--pings", type=int)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=600, help="bound on each phase's wait, seconds")
    ap.add_argument("--phases", default="ingest,journey,lag")
    ap.add_argument("--keep", action="store_true", help="keep process logs under bench/out/scale/tmp-*")
    args = ap.parse_args()
    args.events = args.events or (20_000 if args.quick else 200_000)
    args.users = args.users or max(args.events // 20, 100)
    args.sends = args.sends or (2_000 if args.quick else 20_000)
    args.pings = args.pings or (50 if args.quick else 200)
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"scale: no flywheel binary at {args.bin} (build it: cargo build --release -p flywheel, "
                 f"or pass --bin)")
    st = os.stat(args.bin)
    bin_info = f"{args.bin} (built {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(st.st_mtime))})"
    phases = set(args.phases.split(","))

    bench = Bench(args)
    res = {"bin": args.bin, "bin_mtime": st.st_mtime, "quick": args.quick, "pinned": bench.pin,
           "cores": os.cpu_count(), "events": args.events, "sends": args.sends, "pings": args.pings,
           "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    failed = None
    try:
        bench.sink = Sink(bench.smtp_port)
        bench.sampler = LockSampler("fws" + bench.run)
        bench.sampler.start()
        if "ingest" in phases:
            res["ingest"] = {str(w): bench.ingest(w) for w in (1, 2)}
            res["ingest_ratio"] = ratio(res["ingest"]["1"]["events_per_s"], res["ingest"]["2"]["events_per_s"])
        if "journey" in phases:
            res["journey"] = {str(w): bench.journey(w) for w in (1, 2)}
            res["journey_ratio"] = ratio(res["journey"]["1"]["sends_per_s"], res["journey"]["2"]["sends_per_s"])
        if "lag" in phases:
            res["lag"] = bench.lag()
    except Exception as e:  # noqa: BLE001 - what was measured is still reported
        failed = e
        res["error"] = f"{type(e).__name__}: {e}"
        log(f"FAILED: {res['error']}")
    finally:
        bench.cleanup()
    res["conclusions"] = conclusions(res)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "result.json").write_text(json.dumps(res, indent=2) + "\n")
    print(report(res, args, bin_info))
    print(f"\nwritten: {OUT / 'result.json'}")
    if failed is not None:
        print(f"\nFAILED: {res['error']} (the figures above are what was measured before)")
        sys.exit(1)


if __name__ == "__main__":
    main()
