"""`riskrules serve` end to end: a real server process on a free loopback port."""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import time

import httpx
import pytest

from _api_helpers import DAIRY_B, WEIHAI, copy_tree


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    tree = copy_tree(tmp_path / "policies")
    env = dict(os.environ, RISKRULES_DATABASE_URL=f"sqlite:///{tmp_path / 'riskrules.db'}")
    key = subprocess.run(["riskrules", "keys", "create", "--role", "officer", "--jurisdiction", "weihai",
                          "--name", "serve test"], env=env, capture_output=True, text=True, check=True).stdout.strip()
    port = _free_port()
    proc = subprocess.Popen(["riskrules", "serve", "--port", str(port), "--workers", "2", "--policies", str(tree)],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(proc.stdout.read().decode())
    yield base, {"Authorization": f"Bearer {key}"}, tree, proc
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def test_a_served_service_evaluates_and_every_worker_follows_a_sighup_reload(served):
    base, h, tree, proc = served
    r = httpx.post(f"{base}/v1/policies/{WEIHAI}/evaluations", json={"inputs": DAIRY_B}, headers=h)
    assert r.status_code == 201 and r.json()["result"]["grade"] == "B"
    (tree / "weihai" / "extra.rules").write_text(
        (tree / "weihai" / "food_production.rules").read_text(encoding="utf-8")
        .replace("policy weihai.food_production", "policy weihai.extra"), encoding="utf-8")
    proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    seen = set()
    while time.monotonic() < deadline and len(seen) < 6:     # answers from both workers, several times
        ids = [p["id"] for p in httpx.get(f"{base}/v1/policies", headers=h).json()["policies"]]
        if "weihai.extra" in ids:
            seen.add(len(seen))
        else:
            seen.clear()
            time.sleep(0.3)
    assert len(seen) == 6


def test_serve_refuses_to_start_on_a_policy_that_does_not_check(tmp_path):
    tree = copy_tree(tmp_path / "policies")
    (tree / "weihai" / "broken.rules").write_text("policy weihai.broken {", encoding="utf-8")
    env = dict(os.environ, RISKRULES_DATABASE_URL=f"sqlite:///{tmp_path / 'riskrules.db'}")
    out = subprocess.run(["riskrules", "serve", "--port", str(_free_port()), "--policies", str(tree)],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "broken.rules:1" in out.stderr and "syntax_error" in out.stderr and "not started" in out.stderr


def _workers(proc) -> list[int]:
    return [int(p) for p in open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()
            if "spawn_main" in open(f"/proc/{p}/cmdline").read() and "resource_tracker" not in
            open(f"/proc/{p}/cmdline").read()]


def _connections_held(pid: int, port: int) -> int:
    """Established TCP connections on `port` whose socket this process holds (from /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    held = 0
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        fields = line.split()
        local_port, state, inode = int(fields[1].split(":")[1], 16), fields[3], fields[9]
        held += local_port == port and state == "01" and inode in inodes
    return held


def test_a_callers_pool_of_connections_is_spread_over_the_workers(served):
    """Each worker listens on a socket of its own and the kernel spreads new connections over
    them. On one shared socket, a pool opened at once lands wholly on the worker that wakes
    first (it accepts everything queued), and stays there for the pool's life."""
    base, h, _, proc = served
    port = int(base.rsplit(":", 1)[1])
    pool = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(32)]
    try:
        for c in pool:              # all connected before any is used, as a pool opens
            c.connect()
        body = json.dumps({"inputs": DAIRY_B})
        for c in pool:
            c.request("POST", f"/v1/policies/{WEIHAI}/evaluations", body,
                      headers=dict(h, **{"Content-Type": "application/json"}))
            assert c.getresponse().read() and True
        held = [_connections_held(pid, port) for pid in _workers(proc)]
    finally:
        for c in pool:
            c.close()
    assert len(held) == 2 and sum(held) == 32
    assert min(held) >= 6, f"connections per worker: {held}"     # a 50/50 split, give or take chance


def test_a_worker_that_dies_is_replaced_on_its_own_socket(served):
    base, h, _, proc = served
    victim = _workers(proc)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (victim in _workers(proc) or len(_workers(proc)) < 2):
        time.sleep(0.2)
    assert len(_workers(proc)) == 2 and victim not in _workers(proc)
    for _ in range(16):     # new connections, some hashed to the replaced worker's socket
        with httpx.Client(base_url=base, headers=h, timeout=30) as c:
            assert c.post(f"/v1/policies/{WEIHAI}/evaluations", json={"inputs": DAIRY_B}).status_code == 201


def test_a_second_service_on_the_same_port_refuses_to_start(served, tmp_path):
    """The workers' sockets share the port by SO_REUSEPORT; a second service must not join them."""
    base, _, tree, _ = served
    port = base.rsplit(":", 1)[1]
    env = dict(os.environ, RISKRULES_DATABASE_URL=f"sqlite:///{tmp_path / 'second.db'}")
    out = subprocess.run(["riskrules", "serve", "--port", port, "--workers", "2", "--policies", str(tree)],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr and "in use" in out.stderr
