"""Single-evaluation latency of the compiled evaluator on the peers' reference scorecard.

    python bench/bench_eval.py                 # correctness on the check rows, then latency
    python bench/bench_eval.py --profile       # … and where the time goes (cProfile)
    python bench/bench_eval.py --json bench/out/bench_eval.json

Same protocol as the peers' harness (shared/bench/peers/run_peers.py), so the figures line up:

1. The policy is bench/scorecard.py's `bench.scorecard`, compiled once.
2. Correctness: our (score, grade, sampling ratio) against `workload.reference_eval` on the
   workload's `check_indices` rows — the first 1,500 rows and 500 edge rows (scores on or 0.01
   beside a cutoff, x0 overrides). Any mismatch is printed and makes the exit status 1.
3. Latency: 200 warm-up calls, then 2,000 calls over the check rows, each timed alone with
   `perf_counter_ns`, in process; median and p99 in µs — with the explanation off
   (`evaluate(rec, as_of)`), on (`evaluate(…, explain=True)`), and on and rendered
   (`evaluate(…, explain=True).to_json()`); plus, for reference, off and rendered.

The workload carries bools as 0/1; our `bool` inputs take JSON true/false, so the records are
converted once, before anything is timed (a service receives true/false in the JSON body).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import scorecard  # noqa: E402

from engine import compile_text  # noqa: E402
from engine.compiler import Evaluator  # noqa: E402

AS_OF = dt.date(2024, 6, 30)
PEERS_US = [("hand-written Python (naive bisect)", 12.1), ("GoRules Zen, compiled expression", 46.1),
            ("GoRules Zen, JDM expression node", 356), ("GoRules Zen, JDM 89 decision tables", 941),
            ("rule-engine", 1130), ("OPA (Go) via opa-golib", 1632)]


def build():
    text = scorecard.policy_text()
    checked, diags = compile_text(text, "bench/out/scorecard.rules")
    assert checked is not None, [d.message for d in diags if d.is_error]
    t = time.perf_counter()
    ev = Evaluator(checked)
    return ev, time.perf_counter() - t


def check_rows(wl):
    """The peers' check rows: generate(n) is a prefix of generate(m), so 327,680 rows hold the
    same 2,000 rows as the harness's 1,000,000 as long as the edge rows are found before that."""
    X = wl.generate(5 * 65536)
    idx = wl.check_indices(X)
    assert len(idx) == 2000, f"only {len(idx)} check rows in the first {len(X)} rows"
    return [wl.row_dict(X, r) for r in idx]


def as_record(wl, row: dict) -> dict:
    """The workload's 0/1 for bool columns → JSON true/false (not timed)."""
    return {k: (bool(v) if wl.KINDS[i] == "bool" else v) for i, (k, v) in enumerate(row.items())}


def ours(ev, rec) -> tuple:
    r = ev.evaluate(rec, AS_OF)
    (ratio,) = [m["value"] for m in r.measures if m["name"] == "sampling_ratio"]
    return float(r.score), r.grade, float(ratio)


def correctness(wl, ev, rows, records) -> list:
    mismatches = []
    for row, rec in zip(rows, records):
        want = wl.reference_eval(row)
        try:
            got = ours(ev, rec)
            ok = wl.compare(want, got)
        except Exception as exc:       # an exception is a mismatch too
            got, ok = f"{type(exc).__name__}: {exc}", False
        if not ok:
            mismatches.append({"row": row, "expected": want, "got": got})
    return mismatches


def latency(fn, records, warmup=200, calls=2000) -> dict:
    n = len(records)
    for j in range(warmup):
        fn(records[j % n])
    pc = time.perf_counter_ns
    lat = []
    for j in range(calls):
        r = records[j % n]
        t = pc()
        fn(r)
        lat.append(pc() - t)
    lat.sort()
    return {"median_us": statistics.median(lat) / 1e3, "p99_us": lat[int(0.99 * (len(lat) - 1))] / 1e3,
            "mean_us": statistics.fmean(lat) / 1e3, "calls": calls}


def profile(ev, records, n=20000, explain=False) -> str:
    import cProfile
    import io
    import pstats

    pr = cProfile.Profile()
    pr.enable()
    for j in range(n):
        ev.evaluate(records[j % len(records)], AS_OF, explain=explain)
    pr.disable()
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(12)
    return s.getvalue()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--profile", action="store_true", help="print a cProfile breakdown (explanation off and on)")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = ap.parse_args(argv)

    wl = scorecard.workload()
    ev, build_s = build()
    rows = check_rows(wl)
    records = [as_record(wl, r) for r in rows]

    mismatches = correctness(wl, ev, rows, records)
    edge = sum(1 for r in rows[1500:])
    print(f"correctness: {len(rows) - len(mismatches)}/{len(rows)} check rows agree with reference_eval "
          f"(1,500 first + {edge} edge rows)")
    for m in mismatches[:10]:
        print(f"  MISMATCH expected {m['expected']} got {m['got']}", file=sys.stderr)
    if mismatches:
        print(f"!!! {len(mismatches)} MISMATCHES against the reference: this is a bug !!!", file=sys.stderr)

    modes = {
        "explanation off": lambda rec: ev.evaluate(rec, AS_OF),
        "explanation on": lambda rec: ev.evaluate(rec, AS_OF, explain=True),
        "explanation on + to_json()": lambda rec: ev.evaluate(rec, AS_OF, explain=True).to_json(),
        "(extra) off + to_json()": lambda rec: ev.evaluate(rec, AS_OF).to_json(),
    }
    results = {name: latency(fn, records, args.warmup, args.calls) for name, fn in modes.items()}

    print(f"\nbench.scorecard: 89 indicators, evaluator built in {build_s * 1e3:.1f} ms; "
          f"{args.calls} timed calls after {args.warmup} warm-up; Python {platform.python_version()}")
    print(f"| {'mode':<30} | median µs | p99 µs | mean µs |")
    print(f"|{'-' * 32}|-----------|--------|---------|")
    for name, r in results.items():
        print(f"| {name:<30} | {r['median_us']:9.1f} | {r['p99_us']:6.1f} | {r['mean_us']:7.1f} |")
    print("\npeers on the same workload (shared/bench/peers, median µs): " +
          ", ".join(f"{n} {v:,}" for n, v in PEERS_US))
    print("targets: <= 25 µs explanation off, <= 45 µs explanation on")

    if args.profile:
        print("\n---- cProfile, explanation off (20,000 evaluations, by own time) ----")
        print(profile(ev, records))
        print("---- cProfile, explanation on + to_json() ----")
        import cProfile
        import io
        import pstats
        pr = cProfile.Profile()
        pr.enable()
        for j in range(5000):
            ev.evaluate(records[j % len(records)], AS_OF, explain=True).to_json()
        pr.disable()
        s = io.StringIO()
        pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(12)
        print(s.getvalue())

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"date": dt.datetime.now().astimezone().isoformat(timespec="minutes"),
                                         "python": platform.python_version(), "build_ms": build_s * 1e3,
                                         "check_rows": len(rows), "mismatches": len(mismatches),
                                         "latency": results}, indent=2), encoding="utf-8")
    return 1 if mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
