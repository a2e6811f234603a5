"""The policy and the request bodies of the load benchmark (bench/load.py).

    python bench/load_policy.py        # writes bench/out/load/policies/bench/scorecard.rules

The policy is the 89-indicator reference scorecard that bench/scorecard.py writes (policy id
`bench.scorecard`), in a folder of its own so the server loads nothing else. Request inputs
come from shared/bench/peers/workload.py; in our language bool inputs are JSON true/false, so
the workload's 0/1 bool columns are converted.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import scorecard  # noqa: E402

wl = scorecard.workload()

POLICY_DIR = HERE / "out" / "load" / "policies"
POLICY_FILE = POLICY_DIR / "bench" / "scorecard.rules"


def write_policy() -> Path:
    return scorecard.write(POLICY_FILE)


def records(n: int, seed: int = wl.DATA_SEED) -> list[dict]:
    """n enterprises as request inputs (bool columns as true/false)."""
    X = wl.generate(n, seed)
    out = []
    for r in range(n):
        row = wl.row_dict(X, r)
        for i, name in enumerate(wl.NAMES):
            if wl.KINDS[i] == "bool":
                row[name] = bool(row[name])
        out.append(row)
    return out


def expected(rows: list[dict]) -> list[tuple[str, str]]:
    """(score as the API writes it, grade) from the workload's reference evaluation."""
    out = []
    for row in rows:
        plain = {k: int(v) if isinstance(v, bool) else v for k, v in row.items()}
        score, grade, _ = wl.reference_eval(plain)
        out.append((f"{score:.2f}", grade))
    return out


if __name__ == "__main__":
    print(write_policy())
    print(json.dumps({"inputs": records(1)[0]})[:200] + "…")
