"""Batch benchmark: the 89-indicator reference scorecard (bench.scorecard) over the peers'
workload, ours beside hand-written baselines in the same process, interleaved.

    python bench/bench_batch.py --rows 1000000                 # engine only, then end to end
    python bench/bench_batch.py --rows 10000000 --no-duckdb    # (DuckDB's native copy needs 7 GB more)
    python bench/bench_batch.py --rows 10000000 --end-to-end-only

Engine only (the data already in memory, as each engine wants it): every round runs each
contender once, in a rotating order, so a burst of load on this shared machine hits all of
them; the table gives the best and the median round, and ours / hand-written per round.
  * riskrules Polars plan: `PolarsBatch.evaluate(frame)` on the typed columns read from the
    Parquet file (bool, integer, double) — every result column (score DECIMAL, grade, base
    grade, overrides, alerts, completeness, measures) and the rejects.
  * riskrules DuckDB SQL: `DuckDBBatch.evaluate(frame)`: the same frame registered as an Arrow
    table, the generated SQL, the results back as a Polars frame.
  * peer_polars / peer_duckdb (shared/bench/peers): hand-written; score, grade and ratio from a
    float64 frame / a native DuckDB table built from `workload.generate(n)` (not timed).
  * numba (`pip install numba`, a bench-only dependency): the peers' branch-free njit loop over
    the row-major float64 matrix, one thread; at 10 M rows it runs on 1 M-row blocks of the
    same matrix (the loop has no state across rows), converted before timing.
Exactness: every row of ours is checked against an exact integer score computed here in numpy
(score × 100 = Σ weight‰ × points, grade by cutoffs, x0 -> E), and the workload's 2,000 check
rows against `reference_eval`.

End to end: `classify_file` Parquet -> Parquet (results and rejects, the CLI's path) in a child
process, so its peak RSS is its own; beside it, a hand-written Polars pipeline
(`scan_parquet` -> the peer's expressions -> `sink_parquet`) in another child.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
PEERS = Path(os.environ.get("RISKRULES_PEERS", "/work/shared/bench/peers"))
sys.path[:0] = [str(ROOT), str(PEERS)]
import workload as W  # noqa: E402

OUT = ROOT / "bench" / "out"
AS_OF = dt.date(2024, 6, 30)
BLOCK = 1_000_000


# ---- data ---------------------------------------------------------------------------------

def scorecard_text() -> str:
    """bench/scorecard.py's policy (bench.scorecard), written from the workload."""
    sys.path.insert(0, str(ROOT / "bench"))
    import scorecard
    return scorecard.policy_text()


def ensure_parquet(n: int) -> Path:
    """bench/out/scorecard_<n>.parquet: id and x0..x88 typed (bool, int64, double), the rows of
    workload.generate(n) exactly (made block by block with the workload's seeds); cached."""
    path = OUT / f"scorecard_{n}.parquet"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([("id", pa.int64())] + [(W.NAMES[i], pa.bool_() if k == "bool" else pa.int64()
                                                 if k == "int" else pa.float64()) for i, k in enumerate(W.KINDS)])
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, schema, compression="zstd") as w:
        step = W.BLOCK * 64
        for s in range(0, n, step):
            m = min(step, n - s)
            X = np.empty((m, W.N_IND))
            for b in range(s // W.BLOCK, (s + m + W.BLOCK - 1) // W.BLOCK):
                lo = b * W.BLOCK
                blk = W._gen_block(np.random.default_rng([W.DATA_SEED, b]), W.BLOCK)
                a, e = max(lo, s), min(lo + W.BLOCK, s + m)
                X[a - s:e - s] = blk[a - lo:e - lo]
            arrs = [pa.array(np.arange(s, s + m, dtype=np.int64))]
            for i, k in enumerate(W.KINDS):
                c = X[:, i]
                arrs.append(pa.array(c == 1.0) if k == "bool" else pa.array(c.astype(np.int64)) if k == "int"
                            else pa.array(c))
            w.write_table(pa.Table.from_arrays(arrs, schema=schema), row_group_size=step)
    tmp.rename(path)
    return path


def exact_reference(pdf: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(score × 100, grade index) of every row, exactly: Σ weight‰ × points(0/3/7/10) is the
    score in hundredths (no rounding is involved), the grade the first cutoff it is below,
    E when x0 = 1."""
    T = np.array(W.THRESHOLDS)
    wp = np.array(W.WEIGHTS_PERMILLE, dtype=np.int64)
    pts = np.array(W.POINTS, dtype=np.int64)
    units = np.empty(pdf.height, dtype=np.int64)
    for s in range(0, pdf.height, 65536):
        X = pdf.slice(s, 65536).to_numpy()
        bins = (X[:, :, None] >= T[None]).sum(axis=2)
        units[s:s + len(X)] = (pts[bins] * wp).sum(axis=1)
    grade = np.searchsorted(np.array([2000, 4000, 6000, 8000]), units, side="right")
    grade[pdf["x0"].to_numpy() == 1.0] = 4
    return units, grade


def check_ours(res: pl.DataFrame, rej: pl.DataFrame, pdf: pl.DataFrame) -> dict:
    units, grade = exact_reference(pdf)
    got = res.sort("id")
    ours_units = got["score"].to_physical().cast(pl.Int64).to_numpy()     # DECIMAL(18, 2): hundredths
    ours_grade = got["grade"].to_physical().to_numpy()
    ids = got["id"].to_numpy()
    full = int(rej.height) + int(np.sum((ours_units != units[ids]) | (ours_grade != grade[ids])))
    # and the workload's own judge on its check rows (edge rows at the cutoffs, overrides)
    X = pdf.head(min(pdf.height, 300_000)).to_numpy()
    idx = W.check_indices(X)
    sub = got.filter(pl.col("id").is_in(idx)).sort("id")
    judged = sum(1 for r in sub.iter_rows(named=True)
                 if (float(r["score"]), r["grade"]) != W.reference_eval(W.row_dict(X, r["id"]))[:2])
    return {"rows": res.height + rej.height, "mismatches_all_rows": full, "check_rows": len(idx),
            "mismatches_check_rows": judged}


# ---- engine only --------------------------------------------------------------------------

def engine_only(n: int, rounds: int, duckdb: bool) -> dict:
    from engine import compile_text
    from engine.batch import PolarsBatch
    from engine.batch_plan import plan as make_plan
    from engine.batch_sql import DuckDBBatch
    checked, diags = compile_text(scorecard_text(), "bench.scorecard")
    assert checked is not None, [d.message for d in diags if d.is_error]
    plan = make_plan(checked, AS_OF, events_given=False)
    path = ensure_parquet(n)
    df = pl.read_parquet(path)
    # the peers' input: the same rows as float64 (workload.generate(n) is what the file holds)
    pdf = df.select([pl.col(c).cast(pl.Float64) for c in W.NAMES])
    probe = W.generate(min(n, 20_000))
    assert np.array_equal(pdf.head(len(probe)).to_numpy(), probe), "the Parquet file is not workload.generate(n)"

    import peer_polars
    peer_polars.build()
    ours = PolarsBatch(plan)
    contenders = {"riskrules Polars plan": lambda: ours.evaluate(df),
                  "hand-written Polars (peer_polars)": lambda: peer_polars.eval_prepared(pdf)}
    if duckdb:
        import peer_duckdb
        peer_duckdb.build()
        duck = DuckDBBatch(plan)
        cols = {c: pdf[c].to_numpy() for c in W.NAMES}  # noqa: F841 (scanned by name below)
        peer_duckdb._con.execute("CREATE OR REPLACE TABLE prepared AS SELECT * FROM cols")
        del cols
        contenders["riskrules DuckDB SQL"] = lambda: duck.evaluate(df)
        contenders["hand-written DuckDB SQL (peer_duckdb)"] = lambda: peer_duckdb.eval_prepared("prepared")
    numba_note = ""
    try:
        import peer_numba
        peer_numba.build()
        if n <= BLOCK:
            X = np.ascontiguousarray(pdf.to_numpy())
            contenders["numba njit loop, 1 thread (peer_numba)"] = lambda: peer_numba.eval_batch(X)
        else:
            numba_note = f" (in {BLOCK:,}-row blocks)"
            contenders["numba njit loop, 1 thread (peer_numba)"] = lambda: _numba_blocks(peer_numba, pdf)
    except ImportError:
        print("numba is not installed (pip install numba): its row is left out", file=sys.stderr)

    times = {name: [] for name in contenders}
    names = list(contenders)
    result = None
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            gc.collect()
            t0 = time.perf_counter()
            out = contenders[name]()
            el = time.perf_counter() - t0
            if isinstance(out, tuple) and len(out) == 3 and isinstance(out[0], float):
                el = out[0]          # numba in blocks: the kernel time only
            times[name].append(el)
            if name == "riskrules Polars plan" and result is None:
                result = out
            del out
    check = check_ours(result[0], result[1], pdf)
    ours_t = times["riskrules Polars plan"]
    rows = []
    for name in names:
        t = times[name]
        rows.append({"name": name + (numba_note if name.startswith("numba") else ""),
                     "best_s": min(t), "median_s": statistics.median(t),
                     "best_rate": n / min(t), "median_rate": n / statistics.median(t),
                     # ours / its hand-written counterpart within each round, then the median
                     "ratio": _ratio(name, times)})
    return {"rows": n, "rounds": rounds, "contenders": rows, "check": check}


TWIN = {"riskrules Polars plan": "hand-written Polars (peer_polars)",
        "riskrules DuckDB SQL": "hand-written DuckDB SQL (peer_duckdb)"}


def _ratio(name: str, times: dict):
    """Throughput of ours ÷ its hand-written twin, per round (the median of the rounds); for a
    hand-written row, ours (the Polars plan) ÷ it."""
    if name in TWIN:
        ours, theirs = times[name], times.get(TWIN[name])
    else:
        ours, theirs = times["riskrules Polars plan"], times[name]
    if not theirs or ours is theirs:
        return None
    return statistics.median(b / a for a, b in zip(ours, theirs))


def _numba_blocks(peer_numba, pdf: pl.DataFrame):
    kernel = 0.0
    for s in range(0, pdf.height, BLOCK):
        X = np.ascontiguousarray(pdf.slice(s, BLOCK).to_numpy())
        t0 = time.perf_counter()
        peer_numba.eval_batch(X)
        kernel += time.perf_counter() - t0
        del X
    return (kernel, None, None)


# ---- end to end ---------------------------------------------------------------------------

def end_to_end_child(which: str, n: int, chunk: int) -> dict:
    """Runs in a child process: one Parquet -> Parquet run, its time and peak RSS."""
    path = ensure_parquet(n)
    if which == "ours":
        from engine import compile_text
        from engine.batch_io import classify_file
        from engine.batch_plan import plan as make_plan
        checked, _ = compile_text(scorecard_text(), "bench.scorecard")
        plan = make_plan(checked, AS_OF, events_given=False)
        t0 = time.perf_counter()          # from here: what `riskrules classify` does per file
        s = classify_file(plan, str(path), str(OUT / f"results_{n}.parquet"), id_column="id", chunk=chunk)
        extra = {"rejected": s.rejected, "grades": s.grades}
    else:
        import peer_polars
        score, grade, ratio = peer_polars.build()
        t0 = time.perf_counter()
        (pl.scan_parquet(path).select(pl.col("id"), *[pl.col(c).cast(pl.Float64) for c in W.NAMES])
         .select(pl.col("id"), score, pl.col("x0")).select("id", "score", grade).select("id", "score", "grade", ratio)
         .sink_parquet(OUT / f"peer_results_{n}.parquet"))
        extra = {}
    el = time.perf_counter() - t0
    # VmHWM: this process's own peak (ru_maxrss survives exec and counts the pages of the
    # parent it was forked from)
    hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    return dict(extra, seconds=el, rate=n / el, peak_rss_mib=hwm / 1024,
                ru_maxrss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def end_to_end(n: int, chunk: int, runs: int) -> dict:
    ensure_parquet(n)
    out = {"ours": [], "peer": []}
    for r in range(runs):
        for which in (("ours", "peer") if r % 2 == 0 else ("peer", "ours")):
            p = subprocess.run([sys.executable, __file__, "--child", which, "--rows", str(n), "--chunk", str(chunk)],
                               capture_output=True, text=True, check=True)
            out[which].append(json.loads(p.stdout.strip().splitlines()[-1]))
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"rows": n, "chunk": chunk, "runs": out, "children_peak_rss_mib": children}


# ---- report -------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--chunk", type=int, default=1 << 20)
    ap.add_argument("--e2e-runs", type=int, default=2)
    ap.add_argument("--end-to-end-only", action="store_true")
    ap.add_argument("--engine-only", action="store_true")
    ap.add_argument("--no-duckdb", action="store_true")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--child", choices=("ours", "peer"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(end_to_end_child(args.child, args.rows, args.chunk)))
        return
    n = args.rows
    report = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
                         f"polars {pl.__version__}", "load_before": os.getloadavg()}
    try:
        report["commit"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                          capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    print(f"{report['date']}  {report['machine']}  commit {report.get('commit')}  "
          f"load {report['load_before'][0]:.2f} {report['load_before'][1]:.2f} {report['load_before'][2]:.2f}")
    if not args.engine_only:
        e2e = end_to_end(n, args.chunk, args.e2e_runs)
        report["end_to_end"] = e2e
        print(f"\nend to end Parquet -> Parquet, {n:,} rows, chunk {args.chunk:,}, {args.e2e_runs} runs each, "
              f"alternating, each in a child process (peak RSS: the child's VmHWM)")
        print("| pipeline | best s | M rows/s | peak RSS MiB (max of runs) |")
        print("|---|---|---|---|")
        for which, label in (("ours", "riskrules classify_file (all result columns + rejects)"),
                             ("peer", "hand-written Polars scan -> sink (score, grade, ratio)")):
            runs = e2e["runs"][which]
            best = min(runs, key=lambda r: r["seconds"])
            print(f"| {label} | {best['seconds']:.2f} | {best['rate'] / 1e6:.2f} | "
                  f"{max(r['peak_rss_mib'] for r in runs):,.0f} |")
        print(f"getrusage(RUSAGE_CHILDREN).ru_maxrss: {e2e['children_peak_rss_mib']:,.0f} MiB")
    if not args.end_to_end_only:
        e = engine_only(n, args.rounds, not args.no_duckdb)
        report["engine_only"] = e
        c = e["check"]
        print(f"\nengine only, {n:,} rows, {e['rounds']} interleaved rounds; ours exact on "
              f"{c['rows'] - c['mismatches_all_rows']:,}/{c['rows']:,} rows, "
              f"check rows {c['check_rows'] - c['mismatches_check_rows']}/{c['check_rows']}")
        print("| contender | best M rows/s | median M rows/s | ratio (median of rounds) |")
        print("|---|---|---|---|")
        for r in e["contenders"]:
            name = r["name"]
            ratio = "" if r["ratio"] is None else (
                f"{r['ratio']:.2f} = ours ÷ {TWIN[name].split(' (')[0]}" if name in TWIN
                else f"{r['ratio']:.2f} = riskrules Polars ÷ this")
            print(f"| {name} | {r['best_rate'] / 1e6:.2f} | {r['median_rate'] / 1e6:.2f} | {ratio} |")
    report["load_after"] = os.getloadavg()
    print(f"\nload after {report['load_after'][0]:.2f} {report['load_after'][1]:.2f} {report['load_after'][2]:.2f}; "
          f"peak RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
