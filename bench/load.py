"""Load benchmark of the evaluation service over loopback (127.0.0.1 only).

    python bench/load.py                      # SQLite store, 2 workers, 10 s of wrk, batches
    python bench/load.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

It writes the 89-indicator reference scorecard as policy `bench.scorecard`
(bench/load_policy.py), starts `riskrules serve` in its own process on a fresh store,
makes a key, checks a sample of answers against the workload's reference evaluation, then:
  1. single evaluations: wrk (a second process, Lua script bench/load.lua) POSTs one
     enterprise per request with N connections for D seconds → requests/s, p50/p99;
  2. batches: clients stream NDJSON batches, post JSON arrays, and post Arrow IPC streams
     (100,000 records each; api/arrow_batches.py) → records/s.
Every request is bounded in count and time, and the server is stopped at the end.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import io
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
import polars as pl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import load_policy  # noqa: E402

POLICY = "bench.scorecard"


def start_server(args, workdir: Path) -> subprocess.Popen:
    env = dict(os.environ, RISKRULES_DATABASE_URL=args.database_url)
    cmd = ["riskrules", "serve", "--host", "127.0.0.1", "--port", str(args.port), "--workers", str(args.workers),
           "--policies", str(load_policy.POLICY_DIR)]
    proc = subprocess.Popen(cmd, env=env, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base(args)}/v1/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
        if proc.poll() is not None:
            raise SystemExit(f"the server did not start:\n{proc.stdout.read().decode()}")
    raise SystemExit("the server did not answer /v1/health within 60 s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _pg(url: str):
    import psycopg
    return psycopg.connect(url.replace("postgresql+psycopg", "postgresql").split("?")[0], autocommit=True)


def own_schema(url: str) -> str:
    schema = f"rr_load_{os.getpid()}"
    with _pg(url) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    return schema


def drop_schema(url: str, schema: str) -> None:
    with _pg(url) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def base(args) -> str:
    return f"http://127.0.0.1:{args.port}"


def make_key(args, workdir: Path) -> str:
    env = dict(os.environ, RISKRULES_DATABASE_URL=args.database_url)
    out = subprocess.run(["riskrules", "keys", "create", "--role", "system", "--jurisdiction", "bench",
                          "--name", "load benchmark"], env=env, cwd=workdir, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip().splitlines()[-1]


def check_answers(args, key: str, rows: list, expected: list) -> None:
    """The service must agree with the workload's reference before its speed means anything."""
    h = {"Authorization": f"Bearer {key}"}
    items = [{"enterprise_id": f"e{i}", "inputs": r} for i, r in enumerate(rows)]
    r = httpx.post(f"{base(args)}/v1/policies/{POLICY}/evaluations/batch", json=items, headers=h, timeout=60)
    r.raise_for_status()
    got = [(a["result"]["score"], a["result"]["grade"]) for a in r.json()["results"]]
    bad = sum(g != e for g, e in zip(got, expected))
    one = httpx.post(f"{base(args)}/v1/policies/{POLICY}/evaluations", json=items[0], headers=h, timeout=10)
    one.raise_for_status()
    bad += (one.json()["result"]["score"], one.json()["result"]["grade"]) != expected[0]
    print(f"check: {len(rows) + 1} answers compared with workload.reference_eval, {bad} mismatches")
    if bad:
        raise SystemExit("the service disagrees with the reference; not measuring")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children, alive ones, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except (OSError, IndexError):
            continue
    return total


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat: with the server's and
    wrk's own CPU this tells how much other work shared the machine during a run."""
    v = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]]
    return sum(v) - v[3] - v[4], sum(v)


def run_wrk(args, connections: int, key: str, bodies_file: Path, server_pid: int) -> dict:
    url = f"{base(args)}/v1/policies/{POLICY}/evaluations"
    cmd = ["wrk", f"-t{args.wrk_threads}", f"-c{connections}", f"-d{args.duration}s", "--latency",
           "--timeout", "5s", "-s", str(HERE / "load.lua"), url, "--", str(bodies_file), key]
    print("$ " + " ".join(cmd[:-1] + ["<key>"]))
    server0, machine0 = tree_cpu_seconds(server_pid), _cpu_times()
    wrk0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 60).stdout
    wrk1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = tree_cpu_seconds(server_pid) - server0
    busy, total = [b - a for a, b in zip(machine0, _cpu_times())]
    wrk_cpu = (wrk1.ru_utime - wrk0.ru_utime) + (wrk1.ru_stime - wrk0.ru_stime)
    values = dict(re.findall(r"^([\w.]+) (\d+)$", out, re.M))
    print("\n".join(line for line in out.splitlines()
                    if line.strip() and not line.startswith(("LATENCY", "REQUESTS", "DURATION", "STATUS"))))
    requests, duration = int(values["REQUESTS"]), int(values["DURATION_US"]) / 1e6
    return {"requests": requests, "seconds": round(duration, 2), "requests_per_s": round(requests / duration),
            "p50_ms": int(values["LATENCY_P50_US"]) / 1000, "p90_ms": int(values["LATENCY_P90_US"]) / 1000,
            "p99_ms": int(values["LATENCY_P99_US"]) / 1000, "p99_9_ms": int(values["LATENCY_P99.9_US"]) / 1000,
            "non_2xx": int(values["STATUS_ERRORS"]),
            # where the CPU went: the server's own, wrk's, and everything else on the machine
            "server_cpu_us_per_request": round(server_cpu / requests * 1e6),
            "wrk_cpu_us_per_request": round(wrk_cpu / requests * 1e6),
            "machine_busy_cores": round(busy / total * (os.cpu_count() or 1), 2),
            "cores_used_by_others": round(busy / total * (os.cpu_count() or 1) - (server_cpu + wrk_cpu) / duration, 2)}


def arrow_stream(rows: list) -> bytes:
    """The records as an Arrow IPC stream, a column per input (api/arrow_batches.py)."""
    out = io.BytesIO()
    pl.DataFrame(rows).write_ipc_stream(out)
    return out.getvalue()


def run_batches(args, key: str, rows: list, fmt: str, server_pid: int) -> dict:
    """`clients` concurrent clients, each sending `batches` batches of `batch_size` records
    (`arrow_batch_size` for Arrow streams) in format `fmt`: ndjson, json or arrow."""
    h = {"Authorization": f"Bearer {key}"}
    url = f"{base(args)}/v1/policies/{POLICY}/evaluations/batch"
    ndjson = fmt == "ndjson"
    size = args.arrow_batch_size if fmt == "arrow" else args.batch_size
    items = [{"inputs": r} for r in rows[:size]]
    if fmt == "arrow":
        body = arrow_stream(rows[:size])
        headers = dict(h, **{"Content-Type": "application/vnd.apache.arrow.stream"})
    elif ndjson:
        body = b"".join(json.dumps(i).encode() + b"\n" for i in items)
        headers = dict(h, **{"Content-Type": "application/x-ndjson"})
    else:
        body = json.dumps(items).encode()
        headers = dict(h, **{"Content-Type": "application/json"})

    def client(_):
        n = 0
        with httpx.Client(timeout=300) as c:
            for _ in range(args.batches):
                with c.stream("POST", url, content=body, headers=headers) as r:
                    r.raise_for_status()
                    if fmt == "arrow":
                        answers = pl.read_ipc_stream(io.BytesIO(r.read()))
                        n += answers.height - answers["error"].is_not_null().sum()
                    elif ndjson:
                        n += sum(1 for line in r.iter_lines() if line and '"result"' in line)
                    else:
                        n += json.loads(r.read())["summary"]["evaluated"]
        return n

    t0, server0, machine0 = time.perf_counter(), tree_cpu_seconds(server_pid), _cpu_times()
    with cf.ThreadPoolExecutor(args.clients) as pool:
        evaluated = sum(pool.map(client, range(args.clients)))
    seconds = time.perf_counter() - t0
    server_cpu = tree_cpu_seconds(server_pid) - server0
    busy, total = [b - a for a, b in zip(machine0, _cpu_times())]
    return {"format": fmt, "records": evaluated, "seconds": round(seconds, 2),
            "records_per_s": round(evaluated / seconds), "batch_size": size, "clients": args.clients,
            "server_cpu_us_per_record": round(server_cpu / evaluated * 1e6, 1),
            "machine_busy_cores": round(busy / total * (os.cpu_count() or 1), 2)}


def json_parse_floor(rows: list) -> dict:
    """What parsing the batch body's JSON alone costs, in this process with orjson (the fastest
    parser we know for Python; Polars' read_ndjson took more CPU): no server can answer faster
    than the machine's cores parse its input, before evaluating or writing anything."""
    lines = [json.dumps({"inputs": r}).encode() for r in rows]
    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        for line in lines:
            orjson.loads(line)
        best = min(best, time.process_time() - t0)
    per_record = best / len(lines)
    return {"bytes_per_record": round(sum(map(len, lines)) / len(lines)),
            "parse_cpu_us_per_record": round(per_record * 1e6, 2),
            "records_per_s_if_every_core_only_parsed": round((os.cpu_count() or 1) / per_record)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--database-url", default=None, help="default: a fresh SQLite file in a temporary folder")
    ap.add_argument("--duration", type=int, default=10, help="seconds of wrk")
    ap.add_argument("--connections", type=int, nargs="+", default=[8, 16, 32],
                    help="wrk connections; one run per value (latency grows with the connections "
                         "held open at a given rate: mean latency = connections / requests per second)")
    ap.add_argument("--wrk-threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=10_000)
    ap.add_argument("--arrow-batch-size", type=int, default=100_000)
    ap.add_argument("--formats", nargs="+", default=["ndjson", "json", "arrow"], choices=["ndjson", "json", "arrow"])
    ap.add_argument("--batches", type=int, default=3, help="batches per client")
    ap.add_argument("--clients", type=int, default=4,
                    help="concurrent batch clients (each worker gets connections of its own only by "
                         "the kernel's hash, so 2 clients land on one worker half the time)")
    ap.add_argument("--skip-single", action="store_true")
    ap.add_argument("--skip-batch", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args()
    if shutil.which("wrk") is None and not args.skip_single:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")

    load_policy.write_policy()
    workdir = Path(tempfile.mkdtemp(prefix="riskrules-load-"))
    given_url = args.database_url
    schema = None
    if given_url and given_url.startswith("postgresql"):
        schema = own_schema(given_url)      # a schema of its own, dropped at the end
        args.database_url = f"{given_url}{'&' if '?' in given_url else '?'}options=-csearch_path%3D{schema}"
    args.database_url = args.database_url or f"sqlite:///{workdir}/load.db"
    rows = load_policy.records(max(args.batch_size, args.arrow_batch_size if "arrow" in args.formats else 0, 2000))
    expected = load_policy.expected(rows[:2000])
    bodies_file = workdir / "bodies.ndjson"
    bodies_file.write_text("".join(json.dumps({"enterprise_id": f"e{i}", "inputs": r}) + "\n"
                                   for i, r in enumerate(rows[:2000])))
    key = make_key(args, workdir)
    proc = start_server(args, workdir)
    report = {"workers": args.workers, "store": args.database_url.split(":", 1)[0], "cores": os.cpu_count(),
              "load_average_before": os.getloadavg()[0]}
    try:
        check_answers(args, key, rows[:2000], expected)
        if not args.skip_single:
            report["single"] = []
            for connections in args.connections:
                run = dict(connections=connections, **run_wrk(args, connections, key, bodies_file, proc.pid))
                report["single"].append(run)
                print("single:", json.dumps(run))
        if not args.skip_batch:
            report["batch_json_parse_floor"] = json_parse_floor(rows[: args.batch_size])
            print("batch floor:", json.dumps(report["batch_json_parse_floor"]))
            for fmt in args.formats:
                report[f"batch_{fmt}"] = run_batches(args, key, rows, fmt, server_pid=proc.pid)
                print("batch:", json.dumps(report[f"batch_{fmt}"]))
    finally:
        stop_server(proc)
        if schema:
            drop_schema(given_url, schema)
    report["load_average_after"] = os.getloadavg()[0]
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
