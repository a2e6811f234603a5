"""Lark parse tree → the policy AST (engine/nodes.py).

Lowering is structural: it converts literals and shapes, and reports what it cannot convert
(a date like 2021-13-45, a header item given twice) as diagnostics — it never raises, and no
Lark Tree or Token leaves this module.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from lark import Token, Transformer, Tree, v_args

from . import nodes as n
from .diagnostics import Diagnostics, Span

_UNITS = {"day": "day", "days": "day", "week": "week", "weeks": "week", "month": "month",
          "months": "month", "quarter": "quarter", "quarters": "quarter", "year": "year", "years": "year"}


def to_ast(tree: Tree, file: str = "<policy>") -> tuple[n.Policy | None, list]:
    """Lower a parse tree; returns (policy, diagnostics)."""
    diags = Diagnostics()
    lowering = _Lower(file, diags)
    try:
        policy = lowering.transform(tree)
    except RecursionError:
        diags.error("syntax_error", "the policy is nested too deeply to read", Span(file, 1, 1, 1, 1))
        return None, diags.items
    return policy, diags.items


def _unquote(token: str) -> str:
    body = token[1:-1]
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


@v_args(meta=True)
class _Lower(Transformer):
    def __init__(self, file: str, diags: Diagnostics):
        super().__init__(visit_tokens=False)
        self.file = file
        self.diags = diags

    # ---- helpers ---------------------------------------------------------------------
    def _span(self, meta) -> Span:
        if meta is None or getattr(meta, "empty", True):
            return Span(self.file, 0, 0, 0, 0)
        return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tspan(self, tok: Token) -> Span:
        return Span(self.file, tok.line or 0, tok.column or 0, tok.end_line or 0, tok.end_column or 0)

    def _decimal(self, tok: Token) -> Decimal:
        try:
            return Decimal(str(tok))
        except InvalidOperation:
            self.diags.error("invalid_literal", f"`{tok}` is not a number", self._tspan(tok))
            return Decimal(0)

    def _date(self, tok: Token) -> dt.date:
        try:
            return dt.date.fromisoformat(str(tok))
        except ValueError:
            self.diags.error("invalid_literal", f"`{tok}` is not a calendar date", self._tspan(tok),
                             "write dates as YYYY-MM-DD with a real month and day")
            return dt.date(1970, 1, 1)

    def _int(self, tok: Token) -> int:
        text = str(tok)
        if len(text) > 9:
            self.diags.error("invalid_literal", f"`{tok}` is too large", self._tspan(tok))
            return 0
        return int(text)

    @staticmethod
    def _split(children):
        """Sort children into provenance, label strings and the rest."""
        prov = tuple(c for c in children if isinstance(c, n.Provenance))
        rest = [c for c in children if not isinstance(c, n.Provenance)]
        return prov, rest

    @staticmethod
    def _label(rest):
        for c in rest:
            if isinstance(c, Token) and c.type == "STRING":
                return _unquote(str(c))
        return None

    # ---- literals --------------------------------------------------------------------
    def number(self, meta, ch):
        return n.Number(self._decimal(ch[0]), span=self._span(meta))

    def negative(self, meta, ch):
        return n.Number(-self._decimal(ch[0]), span=self._span(meta))

    def percent(self, meta, ch):
        return n.Percent(self._weight(ch[0]), span=self._span(meta))

    def date(self, meta, ch):
        return n.DateLit(self._date(ch[0]), span=self._span(meta))

    def string(self, meta, ch):
        return n.Str(_unquote(str(ch[0])), span=self._span(meta))

    def true(self, meta, ch):
        return n.BoolLit(True, span=self._span(meta))

    def false(self, meta, ch):
        return n.BoolLit(False, span=self._span(meta))

    def symbol(self, meta, ch):
        return n.Symbol(str(ch[0]), span=self._span(meta))

    def duration(self, meta, ch):
        return n.Duration(self._int(ch[0]), _UNITS[str(ch[1])], span=self._span(meta))

    def empty_list(self, meta, ch):
        return n.DateList((), span=self._span(meta))

    def date_list(self, meta, ch):
        return n.DateList(tuple(self._date(t) for t in ch), span=self._span(meta))

    def missing_value(self, meta, ch):
        return n.MissingLit(span=self._span(meta))

    # ---- provenance ------------------------------------------------------------------
    def provenance(self, meta, ch):
        return ch[0]

    def basis(self, meta, ch):
        return n.Provenance("basis", _unquote(str(ch[0])), span=self._span(meta))

    def assumed(self, meta, ch):
        return n.Provenance("assumed", _unquote(str(ch[0])), span=self._span(meta))

    # ---- header ----------------------------------------------------------------------
    def policy_id(self, meta, ch):
        return ("policy_id", f"{ch[0]}.{ch[1]}", self._span(meta))

    def title(self, meta, ch):
        return ("title", _unquote(str(ch[0])), self._span(meta))

    def version(self, meta, ch):
        return ("version", _unquote(str(ch[0])), self._span(meta))

    def effective(self, meta, ch):
        return ("effective", self._date(ch[0]), self._span(meta))

    def policy_basis(self, meta, ch):
        return ("basis", _unquote(str(ch[0])), self._span(meta))

    def precision(self, meta, ch):
        value = self._int(ch[0])
        if value > 12:
            self.diags.error("invalid_literal", f"precision {value} is more decimals than any score needs",
                             self._span(meta), "use at most 12 decimal places")
            value = 2
        return ("precision", value, self._span(meta))

    # ---- grades, use -----------------------------------------------------------------
    def grade_decl(self, meta, ch):
        return n.GradeDecl(str(ch[0]), self._label(ch[1:]), span=self._span(meta))

    def grades(self, meta, ch):
        prov, rest = self._split(ch)
        return ("grades", (tuple(rest), prov), self._span(meta))

    def use(self, meta, ch):
        pid = ch[0][1]
        return n.Use(pid, str(ch[1]), span=self._span(meta))

    # ---- inputs ----------------------------------------------------------------------
    def count_type(self, meta, ch):
        return n.Type("count", span=self._span(meta))

    def number_type(self, meta, ch):
        if ch:
            low, high = ch[0]
            return n.Type("number", low=low, high=high, span=self._span(meta))
        return n.Type("number", span=self._span(meta))

    def bounds(self, meta, ch):
        return (ch[0].value, ch[1].value)

    def ratio_type(self, meta, ch):
        return n.Type("ratio", span=self._span(meta))

    def bool_type(self, meta, ch):
        return n.Type("bool", span=self._span(meta))

    def enum_type(self, meta, ch):
        return n.Type("enum", members=tuple(str(t) for t in ch), span=self._span(meta))

    def date_type(self, meta, ch):
        return n.Type("date", span=self._span(meta))

    def grade_type(self, meta, ch):
        return n.Type("grade", span=self._span(meta))

    def events_type(self, meta, ch):
        return n.Type("events", span=self._span(meta))

    def duration_type(self, meta, ch):
        return n.Type("duration", span=self._span(meta))

    def default(self, meta, ch):
        return ("default", ch[0])

    def missing_required(self, meta, ch):
        return n.Missing("required", span=self._span(meta))

    def missing_worst(self, meta, ch):
        return n.Missing("worst", span=self._span(meta))

    def missing_exclude(self, meta, ch):
        return n.Missing("exclude", span=self._span(meta))

    def missing_points(self, meta, ch):
        return n.Missing("points", ch[0].value, span=self._span(meta))

    def input_decl(self, meta, ch):
        prov, rest = self._split(ch)
        name = str(rest[0])
        type_ = rest[1]
        default = next((c[1] for c in rest if isinstance(c, tuple) and c[0] == "default"), None)
        missing = next((c for c in rest if isinstance(c, n.Missing)), None)
        if missing is None:
            missing = n.Missing("default" if default is not None else "required", span=self._span(meta))
        return n.Input(name, type_, self._label(rest[2:]), default, missing, prov, span=self._span(meta))

    def single_input(self, meta, ch):
        return ("inputs", (ch[0],), self._span(meta))

    def inputs(self, meta, ch):
        return ("inputs", tuple(ch), self._span(meta))

    # ---- indicators ------------------------------------------------------------------
    def match_value(self, meta, ch):
        return n.MatchValue(ch[0], span=self._span(meta))

    def match_closed(self, meta, ch):
        return n.MatchRange(ch[0].value, ch[1].value, True, span=self._span(meta))

    def match_half_open(self, meta, ch):
        return n.MatchRange(ch[0].value, ch[1].value, False, span=self._span(meta))

    def match_compare(self, meta, ch):
        op = str(ch[0])
        op = "=" if op == "==" else op
        if op == "!=":
            self.diags.error("syntax_error", "a bin cannot match `!=`", self._span(meta),
                             "give the values the bin matches, or use `otherwise`")
            op = "="
        return n.MatchCompare(op, ch[1].value, span=self._span(meta))

    def match_otherwise(self, meta, ch):
        return n.MatchOtherwise(span=self._span(meta))

    def bin(self, meta, ch):
        return n.Bin(ch[0], ch[1].value, span=self._span(meta))

    def operand(self, meta, ch):
        return ch[0]

    def bins(self, meta, ch):
        return n.Bins(ch[0], tuple(ch[1:]), span=self._span(meta))

    def arithmetic(self, meta, ch):
        return n.Arithmetic(ch[0], span=self._span(meta))

    def _weight(self, tok: Token) -> Decimal:
        return Decimal(str(tok)[:-1]) / Decimal(100)

    def indicator(self, meta, ch):
        prov, rest = self._split(ch)
        name = str(rest[0])
        label = self._label(rest[1:2])
        weight_tok = next(c for c in rest if isinstance(c, Token) and c.type == "PERCENT")
        scoring = rest[-1]
        return n.Indicator(name, self._weight(weight_tok), scoring, label, prov, span=self._span(meta))

    def group(self, meta, ch):
        prov, rest = self._split(ch)
        name = str(rest[0])
        label = self._label(rest[1:2])
        weight_tok = next(c for c in rest if isinstance(c, Token) and c.type == "PERCENT")
        inds = tuple(c for c in rest if isinstance(c, n.Indicator))
        return n.Group(name, self._weight(weight_tok), inds, label, prov, span=self._span(meta))

    def indicators(self, meta, ch):
        prov, rest = self._split(ch)
        return n.Indicators(tuple(rest), prov, span=self._span(meta))

    # ---- grading ---------------------------------------------------------------------
    def cutoff_below(self, meta, ch):
        prov, rest = self._split(ch)
        return n.Cutoff(str(rest[0]), rest[1].value, prov, span=self._span(meta))

    def cutoff_otherwise(self, meta, ch):
        prov, rest = self._split(ch)
        return n.Cutoff(str(rest[0]), None, prov, span=self._span(meta))

    def grade_by_score(self, meta, ch):
        prov, rest = self._split(ch)
        return n.GradeByScore(tuple(rest), prov, span=self._span(meta))

    def grade_from_input(self, meta, ch):
        prov, rest = self._split(ch)
        return n.GradeFromInput(rest[0], prov, span=self._span(meta))

    # ---- overrides -------------------------------------------------------------------
    def override_name(self, meta, ch):
        return ("override_name", str(ch[0]), self._label(ch[1:]))

    def effect_set(self, meta, ch):
        return n.Effect("set", grade=str(ch[0]), span=self._span(meta))

    def effect_at_least(self, meta, ch):
        return n.Effect("at_least", grade=str(ch[0]), span=self._span(meta))

    def effect_at_most(self, meta, ch):
        return n.Effect("at_most", grade=str(ch[0]), span=self._span(meta))

    def effect_raise(self, meta, ch):
        return n.Effect("raise", steps=self._int(ch[0]), span=self._span(meta))

    def effect_lower(self, meta, ch):
        return n.Effect("lower", steps=self._int(ch[0]), span=self._span(meta))

    def override_for(self, meta, ch):
        return ("for", n.Duration(self._int(ch[0]), _UNITS[str(ch[1])], span=self._span(meta)))

    def override(self, meta, ch):
        prov, rest = self._split(ch)
        name, label, named = None, None, False
        if isinstance(rest[0], tuple) and rest[0][0] == "override_name":
            _, name, label = rest[0]
            named = True
            rest = rest[1:]
        duration = next((c[1] for c in rest[2:] if isinstance(c, tuple) and c[0] == "for"), None)
        return n.Override(name or "", rest[0], rest[1], label, named, prov, duration, span=self._span(meta))

    # ---- measures --------------------------------------------------------------------
    def period_one(self, meta, ch):
        return n.Period(1, 1, _UNITS[str(ch[0])], span=self._span(meta))

    def period_n(self, meta, ch):
        k = self._int(ch[0])
        return n.Period(k, k, _UNITS[str(ch[1])], span=self._span(meta))

    def period_range(self, meta, ch):
        return n.Period(self._int(ch[0]), self._int(ch[1]), _UNITS[str(ch[2])], span=self._span(meta))

    def _requirement(self, op, meta, ch):
        period = ch[-1] if ch and isinstance(ch[-1], n.Period) else None
        values = [c for c in ch if not isinstance(c, n.Period)]
        high = values[1] if op == "range" else None
        return n.Requirement(op, values[0], high, period, span=self._span(meta))

    def req_exact(self, meta, ch):
        return self._requirement("exact", meta, ch)

    def req_min(self, meta, ch):
        return self._requirement("min", meta, ch)

    def req_soft_min(self, meta, ch):
        return self._requirement("soft_min", meta, ch)

    def req_max(self, meta, ch):
        return self._requirement("max", meta, ch)

    def req_range(self, meta, ch):
        return self._requirement("range", meta, ch)

    def measure_decl(self, meta, ch):
        prov, rest = self._split(ch)
        return n.MeasureDecl(str(rest[0]), rest[1], self._label(rest[2:]), prov, span=self._span(meta))

    def measure_when(self, meta, ch):
        return ("when", ch[0])

    @staticmethod
    def _when(rest):
        return next((c[1] for c in rest if isinstance(c, tuple) and c and c[0] == "when"), None)

    def measure_value(self, meta, ch):
        prov, rest = self._split(ch)
        return n.MeasureValue(str(rest[0]), rest[1], prov, self._when(rest), span=self._span(meta))

    def measure_action(self, meta, ch):
        prov, rest = self._split(ch)
        return n.MeasureAction(str(rest[0]), _unquote(str(rest[1])), prov, self._when(rest),
                               span=self._span(meta))

    def measure_items(self, meta, ch):
        return tuple(ch)

    def grade_measures_one(self, meta, ch):
        return n.GradeMeasures((str(ch[0]),), ch[1], span=self._span(meta))

    def grade_measures_many(self, meta, ch):
        return n.GradeMeasures(tuple(str(t) for t in ch[:-1]), ch[-1], span=self._span(meta))

    def grade_measures_all(self, meta, ch):
        return n.GradeMeasures((), ch[0], span=self._span(meta))

    def measures(self, meta, ch):
        prov, rest = self._split(ch)
        decls = tuple(c for c in rest if isinstance(c, n.MeasureDecl))
        rules = tuple(c for c in rest if isinstance(c, n.GradeMeasures))
        return n.Measures(decls, rules, prov, span=self._span(meta))

    # ---- alerts, requirements, plans -------------------------------------------------
    def alert(self, meta, ch):
        prov, rest = self._split(ch)
        label = self._label(rest[1:2]) if len(rest) > 2 else None
        return n.Alert(str(rest[0]), rest[-1], label, prov, span=self._span(meta))

    def require(self, meta, ch):
        prov, rest = self._split(ch)
        return n.Require("completeness", self._weight(rest[0]), prov, span=self._span(meta))

    # ---- population rules: plans, draws, group rules ---------------------------------
    def plan_quota(self, meta, ch):
        prov, rest = self._split(ch)
        base = rest[1]
        period = rest[2] if len(rest) > 2 else None
        return n.PlanQuota(self._weight(rest[0]), period, prov, base_plan=base[1], span=self._span(meta))

    def base_population(self, meta, ch):
        return ("base", None)

    def base_plan(self, meta, ch):
        return ("base", str(ch[0]))

    def _rounding(self, mode, meta, ch):
        return n.Rounding(mode, tuple(ch), span=self._span(meta))

    def rounding_up(self, meta, ch):
        return self._rounding("up", meta, ch)

    def rounding_down(self, meta, ch):
        return self._rounding("down", meta, ch)

    def rounding_nearest(self, meta, ch):
        return self._rounding("nearest", meta, ch)

    def plan_exclude(self, meta, ch):
        prov, rest = self._split(ch)
        return n.Exclude(rest[0], prov, span=self._span(meta))

    def plan_first(self, meta, ch):
        prov, rest = self._split(ch)
        return n.Priority(rest[0], prov, span=self._span(meta))

    def order_asc(self, meta, ch):
        return n.OrderKey("input", str(ch[0]), False, span=self._span(meta))

    def order_desc(self, meta, ch):
        return n.OrderKey("input", str(ch[0]), True, span=self._span(meta))

    def order_grade_asc(self, meta, ch):
        return n.OrderKey("grade", None, False, span=self._span(meta))

    def order_grade_desc(self, meta, ch):
        return n.OrderKey("grade", None, True, span=self._span(meta))

    def order_score_asc(self, meta, ch):
        return n.OrderKey("score", None, False, span=self._span(meta))

    def order_score_desc(self, meta, ch):
        return n.OrderKey("score", None, True, span=self._span(meta))

    def order_random(self, meta, ch):
        return n.OrderKey("random", span=self._span(meta))

    def plan_order(self, meta, ch):
        prov, rest = self._split(ch)
        return n.PriorityOrder(tuple(rest), prov, span=self._span(meta))

    def plan_fill(self, meta, ch):
        return n.RandomFill(tuple(ch), span=self._span(meta))

    def check_item(self, meta, ch):
        prov, rest = self._split(ch)
        label = self._label(rest[1:2])
        tags = tuple(str(t) for t in rest[1:] if not (isinstance(t, Token) and t.type == "STRING"))
        return n.CheckItem(str(rest[0]), tags, label, prov, span=self._span(meta))

    def match_items(self, meta, ch):
        prov, rest = self._split(ch)
        return n.MatchItems(tuple(rest), prov, span=self._span(meta))

    def assign_avoid_district(self, meta, ch):
        return ("avoid_district", True)

    def assign_within_district(self, meta, ch):
        return ("within_district", True)

    def assign_load_cap(self, meta, ch):
        return ("load_cap", self._int(ch[0]))

    def assign(self, meta, ch):
        prov, rest = self._split(ch)
        options = dict(c for c in rest[1:] if isinstance(c, tuple))
        return n.Assign(self._int(rest[0]), provenance=prov, span=self._span(meta), **options)

    def plan(self, meta, ch):
        prov, rest = self._split(ch)
        label = self._label(rest[1:2])
        items = tuple(c for c in rest[1:] if not isinstance(c, Token))
        return n.Plan(str(rest[0]), items, label, prov, span=self._span(meta))

    def mode_per_grade(self, meta, ch):
        return n.DrawMode("per_grade", 0, tuple(ch), span=self._span(meta))

    def mode_combined(self, meta, ch):
        return n.DrawMode("combined", 0, tuple(ch), span=self._span(meta))

    def mode_batches(self, meta, ch):
        prov, rest = self._split(ch)
        return n.DrawMode("batches", self._int(rest[0]), prov, span=self._span(meta))

    def draw_grades(self, meta, ch):
        prov, rest = self._split(ch)
        return n.DrawGrades(tuple(str(t) for t in rest), prov, span=self._span(meta))

    def draw_ratio(self, meta, ch):
        prov, rest = self._split(ch)
        return n.DrawRatio(str(rest[0]), prov, span=self._span(meta))

    def draw(self, meta, ch):
        prov, rest = self._split(ch)
        label = self._label(rest[1:2])
        items = tuple(c for c in rest[1:] if not isinstance(c, Token))
        return n.Draw(str(rest[0]), items, label, prov, span=self._span(meta))

    def group_count(self, meta, ch):
        cond = ch[0] if len(ch) == 3 else None
        op, value = str(ch[-2]), ch[-1]
        return n.GroupCondition("count", cond, "=" if op == "==" else op, Decimal(self._int(value)),
                                span=self._span(meta))

    def group_share(self, meta, ch):
        op = str(ch[1])
        return n.GroupCondition("share", ch[0], "=" if op == "==" else op, self._weight(ch[2]),
                                span=self._span(meta))

    def group_rule(self, meta, ch):
        prov, rest = self._split(ch)
        conditions = tuple(c for c in rest if isinstance(c, n.GroupCondition))
        action, text = rest[-2], rest[-1]
        return n.GroupRule(str(rest[0]), conditions, str(action), _unquote(str(text)), prov,
                           span=self._span(meta))

    # ---- expressions -----------------------------------------------------------------
    def ref(self, meta, ch):
        return n.Ref(tuple(str(t) for t in ch), span=self._span(meta))

    def grade_ref(self, meta, ch):
        return n.Ref(("grade",), span=self._span(meta))

    def score_ref(self, meta, ch):
        return n.Ref(("score",), span=self._span(meta))

    def used_grade_ref(self, meta, ch):
        return n.Ref((str(ch[0]), "grade"), span=self._span(meta))

    def used_score_ref(self, meta, ch):
        return n.Ref((str(ch[0]), "score"), span=self._span(meta))

    # `?or_expr: … -> or_` is not inlined when it has one operand (the alias wins over `?`),
    # so a lone operand is unwrapped here: `points = n * 2` is an Arith, not Or(And(Arith)).
    def or_(self, meta, ch):
        return ch[0] if len(ch) == 1 else n.Or(tuple(ch), span=self._span(meta))

    def and_(self, meta, ch):
        return ch[0] if len(ch) == 1 else n.And(tuple(ch), span=self._span(meta))

    def not_(self, meta, ch):
        return n.Not(ch[0], span=self._span(meta))

    def compare(self, meta, ch):
        op = str(ch[1])
        return n.Compare("=" if op == "==" else op, ch[0], ch[2], span=self._span(meta))

    def member(self, meta, ch):
        return n.Member(ch[0], tuple(ch[1:]), span=self._span(meta))

    def is_missing(self, meta, ch):
        return n.IsMissing(ch[0], False, span=self._span(meta))

    def is_present(self, meta, ch):
        return n.IsMissing(ch[0], True, span=self._span(meta))

    def arith(self, meta, ch):
        return n.Arith(str(ch[1]), ch[0], ch[2], span=self._span(meta))

    def neg(self, meta, ch):
        return n.Neg(ch[0], span=self._span(meta))

    def call(self, meta, ch):
        return n.Call(str(ch[0]), tuple(ch[1:]), span=self._span(meta))

    def count_call(self, meta, ch):
        return n.CountEvents(ch[0], ch[1], span=self._span(meta))

    def window_last(self, meta, ch):
        return n.Window(self._int(ch[0]), _UNITS[str(ch[1])], span=self._span(meta))

    def window_before(self, meta, ch):
        # `3 months before last 3 months`: the window's own length, then the offset back
        return n.Window(self._int(ch[0]), _UNITS[str(ch[1])], self._int(ch[2]), _UNITS[str(ch[3])],
                        span=self._span(meta))

    # ---- tests -----------------------------------------------------------------------
    def as_of(self, meta, ch):
        return ("as_of", self._date(ch[0]))

    def assignment(self, meta, ch):
        path = tuple(str(t) for t in ch[:-1])
        return n.Given(path, ch[-1], span=self._span(meta))

    def given(self, meta, ch):
        return ("given", tuple(ch))

    def expect(self, meta, ch):
        return ("expect", tuple(ch))

    def _exp(self, kind, meta, **kw):
        return n.Expectation(kind, span=self._span(meta), **kw)

    def expect_grade(self, meta, ch):
        return self._exp("grade", meta, name=str(ch[0]))

    def expect_score(self, meta, ch):
        return self._exp("score", meta, low=ch[0].value, high=ch[0].value)

    def expect_score_range(self, meta, ch):
        return self._exp("score_range", meta, low=ch[0].value, high=ch[1].value)

    def expect_measure(self, meta, ch):
        return self._exp("measure", meta, name=str(ch[0]), requirement=ch[1])

    def expect_action(self, meta, ch):
        return self._exp("action", meta, name=str(ch[0]))

    def expect_no_action(self, meta, ch):
        return self._exp("no_action", meta, name=str(ch[0]))

    def expect_alert(self, meta, ch):
        return self._exp("alert", meta, name=str(ch[0]))

    def expect_no_alert(self, meta, ch):
        return self._exp("no_alert", meta, name=str(ch[0]))

    def expect_override(self, meta, ch):
        return self._exp("override", meta, name=str(ch[0]))

    def expect_override_until(self, meta, ch):
        return self._exp("override", meta, name=str(ch[0]), until=self._date(ch[1]))

    def expect_no_override(self, meta, ch):
        return self._exp("no_override", meta, name=str(ch[0]))

    def expect_completeness(self, meta, ch):
        v = ch[0]
        if not isinstance(v, (n.Number, n.Percent)):
            self.diags.error("type_mismatch", "completeness is a share, e.g. `90%`", self._span(meta))
            return self._exp("completeness", meta, low=Decimal(0))
        return self._exp("completeness", meta, low=v.value)

    def expect_completeness_met(self, meta, ch):
        return self._exp("completeness_met", meta)

    def expect_completeness_not_met(self, meta, ch):
        return self._exp("completeness_not_met", meta)

    def expect_error(self, meta, ch):
        return self._exp("error", meta, text=_unquote(str(ch[0])))

    def test_case(self, meta, ch):
        name = _unquote(str(ch[0]))
        givens, expects, as_of = [], [], None
        for kind, value in ch[1:]:
            if kind == "given":
                givens.extend(value)
            elif kind == "expect":
                expects.extend(value)
            else:
                as_of = value
        return n.TestCase(name, tuple(givens), tuple(expects), as_of, span=self._span(meta))

    # ---- the policy ------------------------------------------------------------------
    def start(self, meta, ch):
        return ch[0]

    def policy(self, meta, ch):
        pid = ch[0][1]
        header: dict = {}
        fields: dict = {"grades": (), "grades_provenance": (), "uses": [], "inputs": [], "overrides": [],
                        "alerts": [], "requires": [], "plans": [], "draws": [], "group_rules": [],
                        "tests": []}
        seen_blocks: dict = {}
        for item in ch[1:]:
            if isinstance(item, tuple) and item[0] in ("title", "version", "effective", "basis", "precision"):
                key, value, span = item
                if key in header:
                    self.diags.error("duplicate_header", f"`{key}` is given twice", span,
                                     f"keep one `{key}`; the first is on line {header[key][1].line}")
                    continue
                header[key] = (value, span)
            elif isinstance(item, tuple) and item[0] == "grades":
                self._once(seen_blocks, "grades", item[2])
                if not fields["grades"]:
                    fields["grades"], fields["grades_provenance"] = item[1]
            elif isinstance(item, tuple) and item[0] == "inputs":
                fields["inputs"].extend(item[1])
            elif isinstance(item, n.Use):
                fields["uses"].append(item)
            elif isinstance(item, n.Indicators):
                if self._once(seen_blocks, "indicators", item.span):
                    fields["indicators"] = item
            elif isinstance(item, (n.GradeByScore, n.GradeFromInput)):
                if self._once(seen_blocks, "grade", item.span):
                    fields["grading"] = item
            elif isinstance(item, n.Override):
                if not item.named:
                    item = n.Override(f"override#{len(fields['overrides']) + 1}", item.condition, item.effect,
                                      item.label, False, item.provenance, item.duration, span=item.span)
                fields["overrides"].append(item)
            elif isinstance(item, n.Measures):
                if self._once(seen_blocks, "measures", item.span):
                    fields["measures"] = item
            elif isinstance(item, n.Alert):
                fields["alerts"].append(item)
            elif isinstance(item, n.Require):
                fields["requires"].append(item)
            elif isinstance(item, n.Plan):
                fields["plans"].append(item)
            elif isinstance(item, n.Draw):
                fields["draws"].append(item)
            elif isinstance(item, n.GroupRule):
                fields["group_rules"].append(item)
            elif isinstance(item, n.TestCase):
                fields["tests"].append(item)
        for key in ("uses", "inputs", "overrides", "alerts", "requires", "plans", "draws", "group_rules", "tests"):
            fields[key] = tuple(fields[key])
        return n.Policy(
            id=pid,
            title=header.get("title", (None,))[0],
            version=header.get("version", (None,))[0],
            effective=header.get("effective", (None,))[0],
            basis=header.get("basis", (None,))[0],
            precision=header.get("precision", (2,))[0],
            span=self._span(meta),
            **fields,
        )

    def _once(self, seen: dict, block: str, span: Span) -> bool:
        if block in seen:
            self.diags.error("duplicate_header", f"a second `{block}` block", span,
                             f"merge it into the first one on line {seen[block].line}")
            return False
        seen[block] = span
        return True
