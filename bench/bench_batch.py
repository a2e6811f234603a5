"""Batch benchmark: the 89-indicator reference scorecard over workload.generate(n), ours beside
hand-written baselines in the same run. Engine only (data already in memory) and end to end
(Parquet in, Parquet out, via `classify_file`), with peak RSS.

    python bench/bench_batch.py --rows 1000000            # engine only + end to end
    python bench/bench_batch.py --rows 10000000 --end-to-end-only
"""
from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
PEERS = Path("/work/shared/bench/peers")
sys.path[:0] = [str(ROOT), str(PEERS)]
import workload as W  # noqa: E402

OUT = ROOT / "bench" / "out"
AS_OF = dt.date(2024, 6, 30)


def scorecard_text() -> str:
    """bench/scorecard.py's policy when present, else the same scorecard written here."""
    try:
        from bench import scorecard  # noqa: F401
        path = OUT / "scorecard.rules"
        if path.exists():
            return path.read_text(encoding="utf-8")
    except ImportError:
        pass
    inputs, inds = [], []
    for i, k in enumerate(W.KINDS):
        t = {"bool": "bool", "int": "count", "float": "number"}[k]
        inputs.append(f"    x{i} : {t}")
        t1, t2, t3 = W.THRESHOLDS[i]
        w = f"{W.WEIGHTS_PERMILLE[i] / 10:g}%"
        if k == "bool":
            pts = [(0, 0), (1, (0, 30, 70, 100)[sum(1 for t in (t1, t2, t3) if 1 >= t)])]
            inds.append(f"    i{i} weight {w}: x{i} false -> 0 | true -> {pts[1][1]}")
        else:
            f = (lambda v: str(int(v))) if k == "int" else W.fmt_num
            inds.append(f"    i{i} weight {w}: x{i} < {f(t1)} -> 0 | {f(t1)}..<{f(t2)} -> 30 | "
                        f"{f(t2)}..<{f(t3)} -> 70 | >= {f(t3)} -> 100")
    return ("policy bench.scorecard {\n  version \"1\" effective 2020-01-01\n  grades A, B, C, D, E\n"
            "  inputs {\n" + "\n".join(inputs) + "\n  }\n  indicators {\n" + "\n".join(inds) + "\n  }\n"
            "  grade by score { A below 20  B below 40  C below 60  D below 80  E otherwise }\n"
            "  override x0 = true -> E\n}\n")


def ensure_parquet(n: int) -> Path:
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


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def best(fn, reps=3):
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        t.append(time.perf_counter() - t0)
    return min(t), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--end-to-end-only", action="store_true")
    ap.add_argument("--engine-only", action="store_true")
    args = ap.parse_args()
    from engine import compile_text
    from engine.batch import PolarsBatch
    from engine.batch_io import classify_file
    from engine.batch_plan import plan as make_plan
    from engine.batch_sql import DuckDBBatch
    checked, diags = compile_text(scorecard_text(), "bench.scorecard")
    assert checked is not None, [d.message for d in diags if d.is_error]
    p = make_plan(checked, AS_OF, events_given=False)
    n = args.rows
    path = ensure_parquet(n)
    rows = []
    if not args.end_to_end_only:
        df = pl.read_parquet(path)
        ours = PolarsBatch(p)
        t, (res, rej) = best(lambda: ours.evaluate(df))
        # correctness on the check rows against workload.reference_eval
        X = W.generate(min(n, 300_000))
        idx = [i for i in W.check_indices(X) if i < n]
        sub = res.filter(pl.col("id").is_in(idx)).sort("id")
        bad = sum(1 for r in sub.iter_rows(named=True)
                  if (float(r["score"]), r["grade"]) != W.reference_eval(W.row_dict(X, r["id"]))[:2])
        rows.append(("riskrules Polars plan (generated, exact integers)", n / t, bad, len(idx)))
        duck = DuckDBBatch(p)
        small = df.head(min(n, 1_000_000))
        t, _ = best(lambda: duck.evaluate(small), reps=1)
        rows.append(("riskrules DuckDB SQL (generated)", small.height / t, None, None))
        import peer_polars
        peer_polars.build()
        Xp = X[: min(n, 1_000_000)] if n <= 300_000 else W.generate(min(n, 1_000_000))
        pdf = peer_polars.prepare_batch(Xp)
        t, _ = best(lambda: peer_polars.eval_prepared(pdf))
        rows.append(("hand-written Polars (peer, float)", len(Xp) / t, None, None))
        import peer_duckdb
        peer_duckdb.build()
        tbl = peer_duckdb.prepare_batch(Xp)
        t, _ = best(lambda: peer_duckdb.eval_prepared(tbl), reps=1)
        rows.append(("hand-written DuckDB SQL (peer, DECIMAL)", len(Xp) / t, None, None))
        try:
            import peer_numba
            peer_numba.build()
            t, _ = best(lambda: peer_numba.eval_batch(Xp))
            rows.append(("hand-written numba (peer, ceiling)", len(Xp) / t, None, None))
        except ImportError:
            rows.append(("hand-written numba: not installed", 0, None, None))
        del df
        print("engine only (data in memory), rows/s:")
        for name, rate, bad, checked_rows in rows:
            extra = f"  mismatches {bad}/{checked_rows}" if bad is not None else ""
            print(f"  {name:55s} {rate / 1e6:6.2f} M/s{extra}")
    if not args.engine_only:
        out = OUT / f"results_{n}.parquet"
        t0 = time.perf_counter()
        s = classify_file(p, str(path), str(out), id_column="id", chunk=1 << 20)
        t = time.perf_counter() - t0
        print(f"end to end Parquet→Parquet, {n:,} rows: {t:.1f} s = {n / t / 1e6:.2f} M/s, rejected {s.rejected}, "
              f"grades {s.grades}")
    print(f"peak RSS {rss_mb():,.0f} MiB")


if __name__ == "__main__":
    main()
