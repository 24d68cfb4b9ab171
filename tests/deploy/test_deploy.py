"""The deployment files stay true to the binary: every flag and FLYWHEEL_* variable that the
Dockerfile, deploy/docker-compose.yml, the systemd units and the environment examples use
is one that `flywheel --help` / `flywheel serve --help` lists (with an accepted value);
the Dockerfile's CMD starts the real server and its HEALTHCHECK passes against it (and
fails against a closed port); the stop grace of compose and systemd covers the server's
shutdown deadline; the shared flywheel.toml example parses; `docker compose config`
(or `docker-compose config`) and `systemd-analyze verify` accept the files where those
tools exist.

The scale-out flags (`--role`, `--bus`) are checked like every other flag, and
test_scale_out_flags_exist checks their values.

Environment: FLYWHEEL_BIN (default <repo>/target/debug/flywheel).
"""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from flywheel_server import BIN, REPO, free_port  # noqa: E402

DEPLOY = REPO / "deploy"
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = DEPLOY / "docker-compose.yml"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))

# `serve` flags (and their environment variables) the scale-out work adds; the values a
# flag must accept, or None for any value.
SCALE_OUT = {"role": ("api", "worker", "all"), "bus": None}
SCALE_OUT_ENV = {"FLYWHEEL_ROLE", "FLYWHEEL_BUS"}
# Flags a future binary adds, let through by the checks until it has them (none now).
PENDING: dict = {}
PENDING_ENV: set = set()


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=60, **kw)


class Help:
    """What `--help` says: flags, whether each takes a value, its listed values, and the
    environment variables."""

    FLAG = re.compile(r"^\s{2,}(?:-\w, )?--([a-z0-9][a-z0-9-]*)(\s+<[^>]+>)?")

    def __init__(self, *texts):
        self.flags = {}  # name -> (takes_value, allowed values or None)
        self.env = set()
        for text in texts:
            self._read(text)

    def _read(self, text):
        current = None
        for line in text.splitlines():
            m = self.FLAG.match(line)
            if m:
                current = m.group(1)
                self.flags.setdefault(current, [bool(m.group(2)), None])
                continue
            self.env.update(re.findall(r"\[env: (FLYWHEEL_[A-Z0-9_]+)", line))
            if current is None:
                continue
            inline = re.search(r"\[possible values: ([^\]]+)\]", line)
            listed = re.match(r"^\s+- ([a-z0-9_-]+):", line)
            values = self.flags[current][1] or []
            if inline:
                values += [v.strip() for v in inline.group(1).split(",")]
            elif listed:
                values.append(listed.group(1))
            if values:
                self.flags[current][1] = values


@pytest.fixture(scope="module")
def serve_help():
    if not Path(BIN).exists():
        pytest.fail(f"no flywheel binary at {BIN} (cargo build -p flywheel, or set FLYWHEEL_BIN)")
    top = run([BIN, "--help"])
    serve = run([BIN, "serve", "--help"])
    assert top.returncode == 0 and serve.returncode == 0, top.stderr + serve.stderr
    return Help(top.stdout, serve.stdout)


def scale_out_missing(h):
    """The scale-out flags and variables the binary does not have."""
    flags = [f"--{f}" for f in SCALE_OUT if f not in h.flags]
    env = sorted(e for e in SCALE_OUT_ENV if e not in h.env)
    return flags + env


def check_serve_args(h, args, where):
    """Problems with `args` (after `serve`) for `flywheel serve`; pending flags the
    binary lacks are let through."""
    problems = []
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            problems.append(f"{where}: unexpected argument {arg!r}")
            i += 1
            continue
        name, eq, inline = arg[2:].partition("=")
        known = h.flags.get(name)
        if known is None:
            if name not in PENDING:
                problems.append(f"{where}: `flywheel serve` has no --{name}")
            i += 2 if not eq else 1
            continue
        takes_value, allowed = known
        value = None
        if takes_value:
            if eq:
                value = inline
            elif i + 1 < len(args):
                value = args[i + 1]
                i += 1
            else:
                problems.append(f"{where}: --{name} needs a value")
        if value is not None and allowed and value not in allowed:
            problems.append(f"{where}: --{name} {value!r} is not one of {allowed}")
        i += 1
    return problems


def check_env(h, names, where):
    return [
        f"{where}: {n} is not a variable the binary reads"
        for n in sorted(names)
        if n.startswith("FLYWHEEL_") and n not in h.env and n not in PENDING_ENV
    ]


def stop_seconds_needed():
    """The server's shutdown deadline plus the runtime's wait for blocking work, read
    from the code: the least any stop grace must give."""
    src = REPO / "crates" / "flywheel" / "src"
    text = "\n".join(p.read_text() for p in sorted(src.glob("*.rs")))
    deadline = re.search(r"SHUTDOWN_DEADLINE: [^=]*= [^;]*from_secs\((\d+)\)", text)
    tail = re.search(r"shutdown_timeout\([^;]*from_secs\((\d+)\)\)", text)
    assert deadline and tail, "SHUTDOWN_DEADLINE / shutdown_timeout not found in crates/flywheel/src"
    return int(deadline.group(1)) + int(tail.group(1))


def seconds(text):
    m = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(text).strip())
    assert m and any(m.groups()), f"cannot read a duration from {text!r}"
    return int(m.group(1) or 0) * 60 + int(m.group(2) or 0)


# ---- Dockerfile ----------------------------------------------------------------------


def dockerfile_instructions():
    """(instruction, rest) of the Dockerfile's final stage, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            out = []
        out.append((word.upper(), rest.strip()))
    return out


def dockerfile_json(instruction):
    found = [rest for word, rest in dockerfile_instructions() if word == instruction]
    assert found, f"the Dockerfile's last stage has no {instruction}"
    rest = found[-1]
    if instruction == "HEALTHCHECK":
        rest = rest[rest.index(" CMD ") + len(" CMD ") :] if " CMD " in rest else rest
    return json.loads(rest)


def test_dockerfile_cmd_flags_exist(serve_help):
    assert dockerfile_json("ENTRYPOINT") == ["flywheel"]
    cmd = dockerfile_json("CMD")
    assert cmd[0] == "serve", cmd
    assert check_serve_args(serve_help, cmd[1:], "Dockerfile CMD") == []
    env = {rest.split("=")[0] for word, rest in dockerfile_instructions() if word == "ENV"}
    assert check_env(serve_help, env, "Dockerfile ENV") == []


def test_dockerfile_skeleton_covers_the_workspace():
    """The dependency stage stubs the crates it finds as crates/*/ and bench/*/: every
    workspace member must be one of them, or the image build fails to load the workspace."""
    import tomllib

    members = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["members"]
    text = DOCKERFILE.read_text()
    assert "crates/*/Cargo.toml bench/*/Cargo.toml" in text
    stray = [m for m in members if not re.fullmatch(r"(crates|bench)/[^/]+", m)]
    assert stray == [], f"workspace members the Dockerfile's skeleton stage does not stub: {stray}"


def test_dockerfile_cmd_serves_and_healthcheck_passes(tmp_path):
    """The CMD, on a free local port and a temporary data directory, starts the server;
    the HEALTHCHECK passes against it and fails against a closed port; SIGTERM stops it
    within the grace compose and systemd give."""
    if not shutil.which("bash"):
        pytest.skip("the HEALTHCHECK needs bash")
    cmd = dockerfile_json("CMD")
    port = free_port()
    args = []
    for a in cmd:
        args.append(f"127.0.0.1:{port}" if a == "0.0.0.0:8080" else str(tmp_path / "data") if a == "/data" else a)
    assert f"127.0.0.1:{port}" in args, "the CMD no longer listens on 0.0.0.0:8080"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYWHEEL_")}
    proc = subprocess.Popen([BIN, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        line = ""
        deadline = time.monotonic() + 120
        while "listening on" not in line and time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
        assert "listening on" in line, f"the Dockerfile CMD did not start a server (exit {proc.poll()})"
        check = dockerfile_json("HEALTHCHECK")
        ok = run(check, env={**env, "FLYWHEEL_LISTEN": f"0.0.0.0:{port}"})
        assert ok.returncode == 0, f"HEALTHCHECK failed against the server: {ok.stderr}"
        closed = run(check, env={**env, "FLYWHEEL_LISTEN": f"0.0.0.0:{free_port()}"})
        assert closed.returncode != 0, "HEALTHCHECK passed with nothing listening"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=stop_seconds_needed()) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---- docker compose ------------------------------------------------------------------


def compose():
    return yaml.safe_load(COMPOSE.read_text())


def flywheel_services(doc):
    return {n: s for n, s in doc["services"].items() if "build" in s or str(s.get("image", "")).startswith("flywheel")}


def role_of(service):
    cmd = service.get("command") or []
    return cmd[cmd.index("--role") + 1] if "--role" in cmd else "all"


def test_compose_flags_env_and_shape(serve_help):
    doc = compose()
    fly = flywheel_services(doc)
    roles = sorted(role_of(s) for s in fly.values())
    assert roles == ["api", "api", "worker", "worker"], roles
    problems = []
    for name, s in fly.items():
        cmd = s["command"]
        assert cmd[0] == "serve", f"{name}: {cmd}"
        problems += check_serve_args(serve_help, cmd[1:], f"compose {name}")
        problems += check_env(serve_help, s.get("environment", {}), f"compose {name}")
        assert seconds(s.get("stop_grace_period", "10s")) >= stop_seconds_needed(), f"{name}: stop_grace_period"
        for dep, cond in s["depends_on"].items():
            assert cond["condition"] == "service_healthy", f"{name} -> {dep}"
            assert "healthcheck" in doc["services"][dep], f"{dep} has no healthcheck"
    assert problems == []
    images = {n: str(s.get("image", "")) for n, s in doc["services"].items()}
    assert images["postgres"].startswith("postgres:15"), images["postgres"]
    assert "-js" in doc["services"]["nats"]["command"] and doc["services"]["nats"].get("volumes")
    assert "redis" in doc["services"]


def test_env_examples_name_real_variables(serve_help):
    problems = []
    for f in [DEPLOY / ".env.example", DEPLOY / "systemd" / "flywheel.env.example"]:
        names = {
            line.split("=", 1)[0].strip()
            for line in f.read_text().splitlines()
            if "=" in line and not line.lstrip().startswith("#")
        }
        assert names, f"{f} sets nothing"
        problems += check_env(serve_help, names, f.name)
    assert problems == []


def test_shared_config_example_parses(tmp_path):
    """deploy/flywheel.toml is read as every process reads it (unknown keys are refused)."""
    out = run([BIN, "--config", str(DEPLOY / "flywheel.toml"), "--data-dir", str(tmp_path), "keys", "list"])
    assert out.returncode == 0, out.stderr


def compose_command():
    if shutil.which("docker") and run(["docker", "compose", "version"]).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_config_is_valid():
    tool = compose_command()
    if tool is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    args = [*tool, "-f", str(COMPOSE), "--env-file", str(DEPLOY / ".env.example"), "config", "-q"]
    out = run(args)
    assert out.returncode == 0, out.stderr
    # The secrets are required: without them the file refuses to start anything.
    bare = run([*tool, "-f", str(COMPOSE), "--env-file", os.devnull, "config", "-q"], env={
        k: v for k, v in os.environ.items() if k not in ("POSTGRES_PASSWORD", "FLYWHEEL_ADMIN_TOKEN")
    })
    assert bare.returncode != 0, "compose accepted a setup without its secrets"


# ---- systemd -------------------------------------------------------------------------


def unit_values(path):
    values = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            k, _, v = line.partition("=")
            values.setdefault(k.strip(), []).append(v.strip())
    return values


def test_systemd_units(serve_help, tmp_path):
    assert {u.name for u in UNITS} == {"flywheel-api@.service", "flywheel-worker@.service"}
    problems = []
    for unit in UNITS:
        v = unit_values(unit)
        argv = shlex.split(v["ExecStart"][0].replace("%i", "8080").replace("%S", "/var/lib"))
        assert argv[0] == "/usr/local/bin/flywheel" and argv[1] == "serve", argv
        problems += check_serve_args(serve_help, argv[2:], unit.name)
        assert "--role" in argv and argv[argv.index("--role") + 1] in unit.name, unit.name
        assert int(v["TimeoutStopSec"][0]) >= stop_seconds_needed(), unit.name
        guide = (REPO / "docs" / "deployment.md").read_text()
        assert f"TimeoutStopSec={v['TimeoutStopSec'][0]}" in guide, "docs/deployment.md gives another stop timeout"
        assert v["KillMode"] == ["mixed"] and v["KillSignal"] == ["SIGTERM"], unit.name
        assert v["Restart"] == ["on-failure"], unit.name
        for hardening in ("NoNewPrivileges", "ProtectSystem", "PrivateTmp", "StateDirectory"):
            assert hardening in v, f"{unit.name}: no {hardening}"
    assert problems == []


def test_systemd_units_verify(tmp_path):
    """`systemd-analyze verify` on an instance of each template, ExecStart pointing at the
    real binary; any complaint (an unknown key is only a warning there) fails."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed")
    paths = []
    for unit in UNITS:
        text = unit.read_text().replace("/usr/local/bin/flywheel", str(Path(BIN).resolve()))
        instance = tmp_path / unit.name.replace("@.", "@8080.")
        instance.write_text(text)
        paths.append(str(instance))
    out = run([tool, "verify", *paths])
    said = (out.stderr + out.stdout).strip()
    ours = [line for line in said.splitlines() if any(Path(p).name in line for p in paths)]
    assert not ours, said
    if out.returncode != 0:
        pytest.skip(f"systemd-analyze verify cannot run here: {said}")


# ---- scale-out flags -----------------------------------------------------------------


def test_scale_out_flags_exist(serve_help):
    """`flywheel serve --role api|worker|all` and `--bus URL` (FLYWHEEL_ROLE, FLYWHEEL_BUS),
    which the compose file and the systemd units use."""
    missing = scale_out_missing(serve_help)
    assert not missing, "missing scale-out flags: " + ", ".join(missing)
    takes_value, allowed = serve_help.flags["role"]
    assert takes_value
    if allowed is not None:
        assert set(SCALE_OUT["role"]) <= set(allowed), allowed
