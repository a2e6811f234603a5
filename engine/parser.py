"""Text → Lark parse tree. The only module that knows Lark's parser; syntax errors become
diagnostics in plain words ("expected a number or a percentage here")."""
from __future__ import annotations

import functools
from pathlib import Path

from lark import Lark, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .diagnostics import Diagnostic, Span, error

GRAMMAR_PATH = Path(__file__).resolve().parent.parent / "dsl" / "grammar.lark"


@functools.lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(GRAMMAR_PATH.read_text(encoding="utf-8"), parser="lalr",
                propagate_positions=True, maybe_placeholders=False)


class ParseFailure(Exception):
    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def parse(text: str, file: str = "<policy>") -> Tree:
    """Parse policy text; raise ParseFailure carrying one syntax diagnostic."""
    try:
        return _parser().parse(text)
    except UnexpectedInput as exc:
        raise ParseFailure(_syntax_diagnostic(exc, text, file)) from None
    except (LarkError, RecursionError) as exc:  # grammar-level surprises must still be a diagnostic
        raise ParseFailure(error("syntax_error", "the policy could not be read",
                                 Span(file, 1, 1, 1, 1), str(exc)[:200])) from None


# Terminal names → words a policy officer reads.
_WORDS = {
    "NAME": "a name", "STRING": "a quoted text", "INT": "a whole number", "NUMBER": "a number",
    "PERCENT": "a percentage", "DATE": "a date (YYYY-MM-DD)", "UNIT": "a unit (days, months, years…)",
    "CMP_OP": "a comparison (>=, <, = …)", "MUL_OP": "`*`",
    "LBRACE": "`{`", "RBRACE": "`}`", "LPAR": "`(`", "RPAR": "`)`", "LSQB": "`[`", "RSQB": "`]`",
    "COLON": "`:`", "SEMICOLON": "`;`", "COMMA": "`,`", "DOT": "`.`", "VBAR": "`|`",
    "EQUAL": "`=`", "MORETHAN": "`>`", "LESSTHAN": "`<`", "MINUS": "`-`", "PLUS": "`+`",
    "$END": "the end of the file",
}


def _describe(terminal: str) -> str:
    if terminal in _WORDS:
        return _WORDS[terminal]
    pattern = _parser().get_terminal(terminal).pattern if terminal in _terminal_names() else None
    if pattern is not None and pattern.type == "str":
        return f"`{pattern.value}`"
    return terminal.lower().replace("_", " ")


def _is_literal(terminal: str) -> bool:
    return terminal in _terminal_names() and _parser().get_terminal(terminal).pattern.type == "str"


@functools.lru_cache(maxsize=1)
def _terminal_names() -> frozenset:
    return frozenset(t.name for t in _parser().terminals)


def _expected_words(expected) -> str:
    # Lark names some literals `__ANON_n` (`->`, `..`, `>=`, `<=`, …): those are words too
    words = sorted({_describe(t) for t in expected if not t.startswith("__") or _is_literal(t)})
    if not words:
        return ""
    if len(words) > 8:
        words = words[:8] + ["…"]
    return ", ".join(words)


def _syntax_diagnostic(exc: UnexpectedInput, text: str, file: str) -> Diagnostic:
    line = getattr(exc, "line", 0) or 0
    column = getattr(exc, "column", 0) or 0
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        lines = text.splitlines() or [""]
        line, column = len(lines), len(lines[-1]) + 1
        expected = _expected_words(getattr(exc, "expected", ()))
        return error("syntax_error", "the policy ends too early",
                     Span(file, line, column, line, column + 1),
                     f"expected {expected}" if expected else "a `}` may be missing")
    if isinstance(exc, UnexpectedCharacters):
        ch = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        expected = _expected_words(exc.allowed or ())
        help_ = _hint_for_character(ch) or (f"expected {expected}" if expected else "")
        return error("syntax_error", f"unexpected character `{ch}`",
                     Span(file, line, column, line, column + 1), help_)
    assert isinstance(exc, UnexpectedToken)
    token = exc.token
    width = max(len(str(token)), 1)
    expected_set = set(exc.expected or ())
    expected = _expected_words(expected_set)
    help_ = _hint_for_token(token, expected_set) or (f"expected {expected}" if expected else "")
    return error("syntax_error", f"unexpected `{token}`",
                 Span(file, line, column, line, column + width), help_)


def _hint_for_token(token, expected: set) -> str:
    if token.type == "NAME" and "SEMICOLON" in expected:
        return "separate the measures of one grade with `;` (expected `;` before the next measure)"
    if expected == {"COLON", "COMMA"}:
        # a name at the start of a measures line reads as the next grade: usually a missing `;`
        return "if the measures of one grade go on here, separate them with `;` (a new grade line is `B: …`)"
    if token.type == "NAME" and "WEIGHT" in expected:
        return "an indicator needs `weight N%` before its `:`"
    if token.type in ("INT", "NUMBER") and "PERCENT" in expected and "INT" not in expected:
        return f"write a percentage, e.g. `{token}%`"
    if token.type == "NAME" and str(token) in {"if", "then", "else", "elif"}:
        return "conditions are written `override <condition> -> <grade>`"
    if token.type == "BASIS" and "RBRACE" in expected:
        return "the policy's own `basis` goes in the header, before grades and inputs"
    return ""


def _hint_for_character(ch: str) -> str:
    hints = {
        "'": "texts are written in double quotes: \"…\"",
        "“": "texts are written in ASCII double quotes: \"…\"",
        "”": "texts are written in ASCII double quotes: \"…\"",
        "：": "use an ASCII colon `:`",
        "，": "use an ASCII comma `,`",
        "％": "use an ASCII percent sign `%`",
        "；": "use an ASCII semicolon `;`",
        "（": "use an ASCII parenthesis `(`",
        "）": "use an ASCII parenthesis `)`",
    }
    return hints.get(ch, "")
