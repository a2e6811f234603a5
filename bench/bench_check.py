"""How fast `riskrules check` is: checks per second on the shipped policies.

    python bench/bench_check.py                # policies/ and the 89-indicator bench scorecard
    python bench/bench_check.py --repeat 50 --cli-runs 5

Three measures:
* in process, `engine.compile_text` per file (parse → lower → check; the policies a file
  `use`s are passed in already checked, as `riskrules check` has them);
* in process, `engine.load_paths` on each file's folder (discover + read + the above, the used
  policies checked along);
* end to end, the `riskrules check policies/` command in a fresh process (interpreter start,
  imports, grammar load, every file, rendering).
Each in-process figure is the median of --repeat runs after one warm-up (the grammar is loaded
once per process, as in a long-running service or language server).
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from engine import compile_text, load_paths  # noqa: E402


def timed(fn, repeat: int) -> float:
    fn()
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--cli-runs", type=int, default=5)
    ap.add_argument("paths", nargs="*", default=[str(ROOT / "policies")])
    args = ap.parse_args(argv)

    import scorecard
    scorecard_file = scorecard.write()

    sources = load_paths(args.paths)
    errors = [d for s in sources for d in s.diagnostics if d.is_error]
    if errors:
        print(f"note: the policies have {len(errors)} errors; timing them anyway", file=sys.stderr)
    checked = {s.checked.id: s.checked for s in sources if s.checked is not None}
    files = [(Path(s.path), s.text, {u.policy_id: checked[u.policy_id] for u in s.policy.uses
                                     if u.policy_id in checked} if s.policy else {}) for s in sources]
    files.append((scorecard_file, scorecard_file.read_text(encoding="utf-8"), {}))

    print(f"| file | lines | compile_text ms | checks/s | load_paths ms |")
    print("|---|---|---|---|---|")
    total_compile = 0.0
    for path, text, known in files:
        t_compile = timed(lambda: compile_text(text, str(path), known), args.repeat)
        t_load = timed(lambda: load_paths([path] + [_file_of(sources, pid) for pid in known]), args.repeat)
        total_compile += t_compile if path != scorecard_file else 0
        name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        print(f"| {name} | {text.count(chr(10))} | {t_compile * 1e3:.2f} | {1 / t_compile:,.0f} "
              f"| {t_load * 1e3:.2f} |")
    n = len(files) - 1
    t_tree = timed(lambda: load_paths(args.paths), max(args.repeat // 3, 3))
    print(f"\nshipped policies ({n} files): compile_text {total_compile * 1e3:.1f} ms in all, "
          f"{n / total_compile:,.0f} files/s; load_paths of the tree {t_tree * 1e3:.1f} ms")

    exe = shutil.which("riskrules")
    if exe:
        cmd = [exe, "check", *args.paths]
        runs = []
        for _ in range(args.cli_runs):
            t = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=False)
            runs.append(time.perf_counter() - t)
        import_only = []
        for _ in range(args.cli_runs):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import riskrules.cli"], capture_output=True, check=False)
            import_only.append(time.perf_counter() - t)
        print(f"`riskrules check {' '.join(args.paths)}` end to end: median {statistics.median(runs) * 1e3:.0f} ms "
              f"(min {min(runs) * 1e3:.0f}) over {args.cli_runs} runs; of which starting Python and importing "
              f"the CLI: {statistics.median(import_only) * 1e3:.0f} ms")
    else:
        print("(riskrules is not installed as a command: no end-to-end figure)")
    return 0


def _file_of(sources, policy_id):
    return next(Path(s.path) for s in sources if s.policy is not None and s.policy.id == policy_id)


if __name__ == "__main__":
    raise SystemExit(main())
