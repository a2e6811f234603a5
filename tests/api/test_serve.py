"""`riskrules serve` end to end: a real server process on a free loopback port."""
from __future__ import annotations

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
