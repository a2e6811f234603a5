"""Benchmark of the draw engine: a stratified 双随机 draw from 10 million enterprises in 5 grades,
with 2,000 officers assigned two per inspection (avoid own district, declared conflicts, a load cap).

    python bench/bench_draw.py                       # 10 M enterprises, 2,000 officers
    python bench/bench_draw.py --enterprises 1000000 --officers 500 --repeat 3

The population is built in memory (not timed): 18-character ids shaped like 统一社会信用代码
(`91` + one of 16 region codes + a 9-character organisation code + a check character),
shuffled, so the engine must put them in canonical order itself. The timed part is
`engine.population.run` and the summary: canonical order, the population's fingerprint, the
draw per grade and the officer assignment (verified against every rule before it returns);
writing the sample as Parquet is timed separately. Peak memory is the process's maximum resident set size
(`resource.getrusage`), which includes the generated population. Results: bench/README.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import population  # noqa: E402
from engine.loader import compile_text  # noqa: E402

POLICY = """
policy bench.draw {
  title "10 M draw benchmark"
  version "1"
  effective 2024-01-01
  grades A "低风险", B "中风险", C "中高风险", D "高风险", E "重大风险"  assumed "benchmark"
  input provincial_grade : grade "分类结果"
  grade = provincial_grade
  measures {
    sampling_ratio : ratio "双随机抽查比例"
    A: sampling_ratio generally >= 1%   assumed "benchmark"
    B: sampling_ratio generally >= 3%   assumed "benchmark"
    C: sampling_ratio generally >= 10%  assumed "benchmark"
    D: sampling_ratio generally >= 20%  assumed "benchmark"
    E: sampling_ratio generally >= 50%  assumed "benchmark"
  }
  draw 双随机 "年度双随机抽查" {
    mode batches 4            assumed "benchmark"
    ratio sampling_ratio
    rounding up               assumed "benchmark"
    assign 2 officers avoid district at most CAP per officer  assumed "benchmark"
  }
}
"""
SHARES = [0.55, 0.25, 0.12, 0.06, 0.02]
RATIOS = [0.01, 0.03, 0.10, 0.20, 0.50]
ALNUM = np.frombuffer(b"0123456789ABCDEFGHJKLMNPQRTUWXY", dtype=np.uint8)   # the code's 31 characters


def make_population(n: int, districts: int, rng) -> pl.DataFrame:
    regions = np.array([f"3710{k:02d}" for k in range(1, districts + 1)])
    region = rng.integers(0, districts, n)
    # a 9-character organisation code: a bijection of 0..n-1 into 31^9, so ids are unique
    org = (np.arange(n, dtype=np.uint64) * np.uint64(2_654_435_761) + np.uint64(97)) % np.uint64(31 ** 9)
    data = np.empty((n, 18), dtype=np.uint8)
    data[:, 0:2] = np.frombuffer(b"91", dtype=np.uint8)
    data[:, 2:8] = np.frombuffer("".join(regions).encode(), dtype=np.uint8).reshape(districts, 6)[region]
    for p in range(16, 7, -1):
        data[:, p] = ALNUM[(org % np.uint64(31)).astype(np.int64)]
        org //= np.uint64(31)
    data[:, 17] = ALNUM[rng.integers(0, 31, n)]
    offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int64) * 18).tobytes())
    ids = pa.LargeStringArray.from_buffers(n, offsets, pa.py_buffer(data.tobytes()))
    grade = rng.choice(np.array(list("ABCDE")), n, p=SHARES)
    frame = pl.DataFrame({"id": pl.from_arrow(ids), "grade": grade,
                          "district": pl.Series(regions).gather(pl.Series(region))})
    return frame.sample(fraction=1.0, shuffle=True, seed=int(rng.integers(0, 2 ** 31)))


def make_officers(count: int, districts: int, frame: pl.DataFrame, rng) -> pl.DataFrame:
    regions = [f"3710{k:02d}" for k in range(1, districts + 1)]
    conflict = frame["id"].gather(pl.Series(rng.integers(0, frame.height, count)))
    return pl.DataFrame({"id": [f"WH{k:05d}" for k in range(count)],
                         "district": [regions[k % districts] for k in range(count)],
                         "conflicts": conflict})


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--enterprises", type=int, default=10_000_000)
    ap.add_argument("--officers", type=int, default=2_000)
    ap.add_argument("--districts", type=int, default=16)
    ap.add_argument("--seed", type=int, default=20240630)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(7)

    t0 = time.perf_counter()
    frame = make_population(args.enterprises, args.districts, rng)
    officers = make_officers(args.officers, args.districts, frame, rng)
    gen = time.perf_counter() - t0
    expected = sum(int(np.ceil(r * s * args.enterprises)) for r, s in zip(RATIOS, SHARES))
    cap = int(np.ceil(2 * expected / args.officers * 1.10))      # 10 % slack over the average load
    checked, diags = compile_text(POLICY.replace("CAP", str(cap)), "bench_draw.rules")
    assert checked is not None, [d.message for d in diags if d.is_error]

    runs = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        result = population.run(checked, frame, args.seed, as_of=dt.date(2024, 6, 30), officers=officers)
        summary = result.to_json()          # waits for the fingerprint, hashed while the draw ran
        runs.append(time.perf_counter() - t)
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result.write(Path(tmp) / "sample.parquet")
    write = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    summary = summary["draws"][0]
    report = {
        "enterprises": args.enterprises, "officers": args.officers, "districts": args.districts,
        "drawn": summary["drawn"], "officer_places": 2 * summary["drawn"], "load_cap": cap,
        "max_load": summary["assignment"]["max_load"],
        "generate_s": round(gen, 2), "draw_s": [round(x, 2) for x in runs], "best_draw_s": round(min(runs), 2),
        "write_parquet_s": round(write, 2), "peak_rss_mb": round(peak_mb),
        "fingerprint": result.population.fingerprint,
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
