"""policies/README.md is generated from the policies (python policies/make_readme.py): its
published/assumed columns and test counts must be what the policies say today."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_policies_readme_is_current():
    done = subprocess.run([sys.executable, str(ROOT / "policies" / "make_readme.py"), "--check"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr or done.stdout


def test_every_shipped_policy_passes_its_own_tests():
    from engine.loader import Registry
    from engine.testing import run_tests

    registry, diags = Registry.from_paths([ROOT / "policies"])
    assert [d for d in diags if d.is_error] == []
    assert [d for d in diags if d.code == "untraced_number"] == []
    failed = [f"{o.policy_id} · {o.name}: {o.failures}" for o in run_tests(registry) if not o.passed]
    assert failed == []
