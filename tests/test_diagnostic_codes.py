"""The registry of diagnostic codes (engine.diagnostics.CODES) and the cases that test them.

Every registered code has a case file tests/cases/diagnostics/<code>.yaml wanting that code
(with its message and span), no case wants a code that is not registered, and every code the
engine's source emits is registered."""
import re
from pathlib import Path

from engine.diagnostics import CODES

from _cases import CASES, files, read

ENGINE = Path(__file__).resolve().parent.parent / "engine"


def _wanted_codes(topic: str) -> dict:
    """case file → the codes its cases want."""
    out = {}
    for path in files(topic):
        out[path] = {w["code"] for case in read(path)["cases"] for w in case["want"]}
    return out


def test_every_registered_code_has_a_case_file_that_wants_it():
    wanted = {p.stem: codes for p, codes in _wanted_codes("diagnostics").items()}
    missing = [code for code in CODES if code not in wanted]
    assert not missing, f"codes without tests/cases/diagnostics/<code>.yaml: {missing}"
    not_wanted = [code for code in CODES if code not in wanted[code]]
    assert not not_wanted, f"case files that never want their own code: {not_wanted}"


def test_case_files_are_named_after_registered_codes():
    strays = [p.name for p in files("diagnostics") if p.stem not in CODES]
    assert not strays, f"case files named after no registered code: {strays}"


def test_no_case_wants_an_unregistered_code():
    unknown = {f"{p.parent.name}/{p.name}": sorted(codes - set(CODES))
               for topic in ("diagnostics", "checker") for p, codes in _wanted_codes(topic).items()
               if codes - set(CODES)}
    assert not unknown, f"cases want codes that are not in engine.diagnostics.CODES: {unknown}"


def test_every_code_has_a_description():
    assert all(isinstance(text, str) and text.strip() for text in CODES.values())
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", code) for code in CODES), "codes are stable lowercase slugs"


def test_every_code_the_engine_emits_is_registered():
    emitted, literals = set(), set()
    call = re.compile(r"""\b(?:error|warning|info)\(\s*["']([a-z_]+)["']""")
    for path in ENGINE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        emitted |= set(call.findall(text))
        if path.name != "diagnostics.py":
            literals |= {code for code in CODES if f'"{code}"' in text}
    assert emitted, "the scan found no diagnostics at all: the pattern is out of date"
    assert emitted - set(CODES) == set(), f"emitted but not registered: {sorted(emitted - set(CODES))}"
    assert set(CODES) - literals == set(), f"registered but named nowhere in engine/: {sorted(set(CODES) - literals)}"
