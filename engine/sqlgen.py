"""Checked policy → a sqlglot expression tree → SQL for DuckDB, PostgreSQL and Spark.

    sql = to_sql(checked, "postgres", as_of=date(2024, 6, 30), source="enterprises")

The query reads a table of enterprises (one column per input; a used policy's inputs are the
columns `alias.input`) and, when the policy counts events, a table of events
(`<id>, input, date`). It returns one row per enterprise with every column of
`docs/batch.md §Results` and `__bad` / `problems`, the reasons a row is rejected.
`engine/batch_sql.py` runs it in DuckDB or PostgreSQL and splits results from rejects.

Every identifier and literal enters the tree through sqlglot's constructors; nothing is
formatted into SQL text. The numbers come from engine/batch_plan.py (the same constants as the
Polars plan): integer contributions per bin, the score in scaled integers with half-up
rounding `sign(a)·floor((2|a| + b) / 2b)`, cutoffs as integer thresholds. The tree is built
once and rendered per dialect; what a dialect spells differently is rewritten in `_dialect`
(below), and what it cannot express raises `Unsupported` naming the construct and line.
"""
from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Optional

import sqlglot
from sqlglot import exp

from . import nodes as n
from .batch_plan import (FLOAT_LIMIT, FLOAT_SCALE, COUNT_LIMIT, BatchPlan, Num, Unsupported, as_int,
                         common_scale, plan as make_plan)
from .checker.context import CheckedPolicy

DIALECTS = ("duckdb", "postgres", "spark")
FINITE = 1.7976931348623157e308


def to_sql(checked: CheckedPolicy, dialect: str = "duckdb", *, as_of: dt.date, source: str = "enterprises",
           events: Optional[str] = None, id_column: str = "id", contributions: bool = False,
           resolve_used=None, pretty: bool = False) -> str:
    """The query of `checked` as of `as_of` in `dialect` (duckdb, postgres or spark)."""
    p = make_plan(checked, as_of, resolve_used, events_given=events is not None)
    return render(build(p, source=source, events=events, id_column=id_column, contributions=contributions),
                  dialect, pretty=pretty)


def render(tree: exp.Expression, dialect: str, pretty: bool = False) -> str:
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect `{dialect}`; one of {', '.join(DIALECTS)}")
    return _dialect(tree, dialect).sql(dialect=dialect, pretty=pretty)


def _dialect(tree: exp.Expression, dialect: str) -> exp.Expression:
    """The few constructs a dialect spells differently, rewritten on a copy of the tree.

    | construct                      | duckdb      | postgres                    | spark          |
    |--------------------------------|-------------|-----------------------------|----------------|
    | drop the NULLs of an array     | LIST_FILTER | ARRAY_REMOVE(a, NULL)       | FILTER         |
    | 128-bit integer                | HUGEINT     | NUMERIC(38, 0)              | not supported  |
    | a stage of the CTE chain       | CTE         | CTE … OFFSET 0 (a fence)    | CTE            |
    """
    tree = tree.copy()

    def fix(node):
        if isinstance(node, exp.CTE) and dialect == "postgres":
            # PostgreSQL inlines a CTE read once, and flattening the chain repeats each column's
            # expression wherever the next stage reads it: exponential text (weihai.se_filling:
            # 7 MB of plan, 58 s for 60 rows). OFFSET 0 keeps each stage a subquery of its own,
            # evaluated once per row and streamed; MATERIALIZED writes every stage out and was
            # 3x slower (the scorecard, 100k rows: 1.7 s against 5.5 s).
            body = node.this
            if isinstance(body, exp.Select) and body.args.get("offset") is None:
                node.set("this", body.offset(0))
            return node
        if isinstance(node, exp.ArrayFilter) and dialect == "postgres":
            return exp.ArrayRemove(this=node.this, expression=exp.Null())
        if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.INT128:
            if dialect == "postgres":
                return exp.DataType.build("DECIMAL(38, 0)")
            if dialect == "spark":
                raise Unsupported("arithmetic that needs 128-bit integers", backend="spark",
                                  help="Spark's DECIMAL(38) division is not exact here")
        return node
    return tree.transform(fix, copy=False)


# ---- small constructors --------------------------------------------------------------------

BIGINT = exp.DataType.build("BIGINT")
WIDE = exp.DataType.build("INT128", dialect="duckdb")
DOUBLE = exp.DataType.build("DOUBLE")
TEXT = exp.DataType.build("TEXT")
INT = exp.DataType.build("INT")


def cast(e: exp.Expression, to) -> exp.Cast:
    """CAST without sqlglot's defensive copy of `e`: the tree is built from fresh nodes and
    copied once, in render() (a copy per builder call made building quadratic)."""
    return exp.cast(e, to, copy=False)


def alias(e: exp.Expression, name: str, **kw) -> exp.Expression:
    return exp.alias_(e, name, copy=False, **kw)


def _tref(name: str, as_: str) -> exp.Table:
    """`name AS as_`: a CTE read under an alias."""
    return exp.Table(this=exp.to_identifier(name), alias=exp.TableAlias(this=exp.to_identifier(as_)))


def col(name: str) -> exp.Column:
    return exp.Column(this=exp.to_identifier(name, quoted=True))


def num(v) -> exp.Expression:
    if isinstance(v, bool):
        return exp.Boolean(this=v)
    if v < 0:
        return exp.Neg(this=exp.Literal.number(-v))
    return exp.Literal.number(v)


def int_lit(v: int, wide: bool = False) -> exp.Expression:
    return cast(num(v), WIDE if wide else BIGINT)


def text(v: str) -> exp.Literal:
    return exp.Literal.string(v)


def double(v: float) -> exp.Expression:
    return cast(exp.Literal.number(repr(float(v))), DOUBLE)


def date_lit(d: dt.date) -> exp.Expression:
    return cast(text(d.isoformat()), exp.DataType.build("DATE"))


def case(pairs, default=None) -> exp.Case:
    return exp.Case(ifs=[exp.If(this=cond, true=value) for cond, value in pairs], default=default)


def paren(e):
    return exp.Paren(this=e)


def add(a, b):
    return exp.Add(this=a, expression=b)


def sub(a, b):
    return exp.Sub(this=a, expression=b)


def mul(a, b):
    return exp.Mul(this=paren(a), expression=paren(b))


def int_div(a, b, wide: bool = False):
    """Integer division of non-negative operands (truncation = floor there)."""
    return cast(exp.IntDiv(this=paren(a), expression=paren(b)), WIDE if wide else BIGINT)


def and_(items):
    """a AND b AND …, as a balanced tree (the same three-valued result; a shallow tree keeps
    89 terms from nesting 89 levels deep in the text and in the planner)."""
    return _tree(list(items), exp.And)


def or_(items):
    return _tree(list(items), exp.Or)


def _tree(items, op):
    if len(items) == 1:
        return items[0]
    m = len(items) // 2
    return op(this=paren(_tree(items[:m], op)), expression=paren(_tree(items[m:], op)))


def not_(x):
    return exp.Not(this=paren(x))


def is_null(x):
    return exp.Is(this=paren(x), expression=exp.Null())


def not_null(x):
    return not_(is_null(x))


def coalesce_false(x):
    return exp.Coalesce(this=paren(x), expressions=[exp.false()])


def half_up_div(num_: exp.Expression, den, wide: bool) -> exp.Expression:
    """round(num / den) half away from zero, den > 0: sign(a)·floor((2|a| + b) / 2b)."""
    t = WIDE if wide else BIGINT
    a = cast(paren(num_), t)
    d = int_lit(den, wide) if isinstance(den, int) else cast(paren(den), t)
    two_d = mul(d, int_lit(2, wide))
    pos = int_div(add(mul(a, int_lit(2, wide)), d), two_d, wide)
    neg = exp.Neg(this=paren(int_div(add(mul(exp.Neg(this=paren(a)), int_lit(2, wide)), d), two_d, wide)))
    return case([(exp.GTE(this=a, expression=int_lit(0, wide)), pos)], neg)


def balanced(terms: list) -> exp.Expression:
    if len(terms) == 1:
        return terms[0]
    m = len(terms) // 2
    return paren(add(balanced(terms[:m]), balanced(terms[m:])))


def compact(items: list) -> exp.Expression:
    """An array of the non-NULL items (names of fired overrides, problems …)."""
    arr = exp.Array(expressions=[cast(exp.Null(), TEXT)] + items)
    x = exp.to_identifier("x")
    return exp.ArrayFilter(this=arr, expression=exp.Lambda(this=not_null(exp.Column(this=x)), expressions=[x]))


def decimal_of(units: exp.Expression, scale: int, precision: int = 18) -> exp.Expression:
    """Integer units of 10^-scale → DECIMAL(precision, scale), exactly (a product, no division)."""
    step = cast(exp.Literal.number(str(Decimal(1).scaleb(-scale))), exp.DataType.build(f"DECIMAL({scale + 1}, {scale})"))
    return cast(mul(cast(units, exp.DataType.build(f"DECIMAL({precision}, 0)")), step),
                    exp.DataType.build(f"DECIMAL({precision}, {scale})"))


_OPS = {"=": exp.EQ, "!=": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


def cmp(op: str, a, b):
    return _OPS[op](this=paren(a), expression=paren(b))


# ---- the query -----------------------------------------------------------------------------

class _Query:
    """CTEs in order: a chain of stages, each selecting every column of the one before it plus
    new columns, and side CTEs (an override that lasts) that a stage joins in."""

    def __init__(self, first: exp.Select):
        self.ctes = [("s0", first)]
        self.head = "s0"
        self.n = 1

    def stage(self, columns: list) -> None:
        if not columns:
            return
        self._chain(exp.select(exp.Star(), *columns, copy=False).from_(exp.to_identifier(self.head), copy=False))

    def _chain(self, body: exp.Select) -> None:
        name = f"s{self.n}"
        self.n += 1
        self.ctes.append((name, body))
        self.head = name

    def side(self, name: str, body: exp.Select) -> None:
        self.ctes.append((name, body))

    def join_stage(self, side: str, columns: list, id_column: str) -> None:
        """The chain's columns and `columns` of CTE `side`, matched by enterprise id (LEFT JOIN)."""
        h, j = exp.to_identifier("h"), exp.to_identifier("j")
        body = exp.select(exp.Column(this=exp.Star(), table=h),
                          *[exp.column(c, "j", quoted=True) for c in columns], copy=False) \
            .from_(_tref(self.head, "h"), copy=False) \
            .join(_tref(side, "j"), join_type="LEFT", copy=False,
                  on=cmp("=", exp.column(id_column, "h", quoted=True), exp.column(id_column, "j", quoted=True)))
        self._chain(body)

    @property
    def last(self) -> str:
        return self.head

    def select(self, columns: list) -> exp.Select:
        q = exp.select(*columns, copy=False).from_(exp.to_identifier(self.head), copy=False)
        q.set("with_", exp.With(expressions=[exp.CTE(this=body, alias=exp.TableAlias(this=exp.to_identifier(name)))
                                             for name, body in self.ctes]))
        return q


def build(p: BatchPlan, *, source: str = "enterprises", events: Optional[str] = None, id_column: str = "id",
          contributions: bool = False) -> exp.Select:
    """The query tree of plan `p` (see the module docstring)."""
    g = _Gen(p, events is not None, id_column, contributions)
    table = exp.to_table(source) if "." in source else exp.Table(this=exp.to_identifier(source, quoted=True))
    first = exp.select(exp.Star()).from_(alias(table, "src", table=True))
    if events is not None and p.events_inputs():
        first = exp.select(exp.Column(this=exp.Star(), table=exp.to_identifier("src")),
                           *[exp.Column(this=exp.to_identifier(c, quoted=True), table=exp.to_identifier("ev"))
                             for c in g.event_columns()]).from_(alias(table, "src", table=True))
        first = first.join(exp.Subquery(this=g.events_query(events), alias=exp.TableAlias(this=exp.to_identifier("ev"))),
                           join_type="LEFT",
                           on=cmp("=", exp.column(id_column, "src", quoted=True),
                                  exp.column(id_column, "ev", quoted=True)))
    q = _Query(first)
    q.stage(g.prepared())
    for sub_plan in g.used_plans(p):
        for cols in g.policy_columns(sub_plan):
            q.stage(cols)
    if events is not None:
        for L in p.lasting:
            g.lasting(q, L, events)
    for cols in g.policy_columns(p):
        q.stage(cols)
    conds = g.problems(p)
    conds += [(col(f"__{s.prefix}no_data"), s.prefix[:-1] + ":no_data")
              for s in g.used_plans(p) if s.thresholds is not None]
    # COALESCE(a OR b OR …, FALSE) is true exactly when one of them is true
    q.stage([alias(coalesce_false(or_([c for c, _ in conds])) if conds else exp.false(), "__bad_other",
                        quoted=True)])
    bad = paren(or_([col("__bad_other"), col("__no_data")]))
    no_data = exp.And(this=not_(col("__bad_other")), expression=col("__no_data"))
    items = [case([(c, text(t))]) for c, t in conds] + [case([(no_data, text("no_data"))])]
    # the problems are listed for the rejected rows only, and the costly result columns are
    # built for the others only
    problems = case([(bad, compact(items))])
    return q.select(g.output(p, kept=not_(bad)) + [alias(bad, "__bad", quoted=True),
                                                     alias(problems, "problems", quoted=True)])


@dataclass
class V:
    kind: str                 # int float bool str grade date symbol
    expr: exp.Expression
    scale: int = 0
    num: Optional[Num] = None
    grades: tuple = ()
    literal: Optional[Decimal] = None
    name: str = ""


class _Gen:
    def __init__(self, p: BatchPlan, events_given: bool, id_column: str, contributions: bool):
        self.p = p
        self.events_given = events_given
        self.id_column = id_column
        self.contributions = contributions

    # ---- events ---------------------------------------------------------------------
    def event_columns(self) -> list[str]:
        return [f"__w{w.index}_{w.input}" for w in self.p.all_windows()] + \
            [f"__bad_{name}" for name in self.p.events_inputs()]

    def events_query(self, table: str) -> exp.Select:
        names = self.p.events_inputs()
        inp, date = exp.column("input", quoted=True), exp.column("date", quoted=True)
        aggs = []
        for w in self.p.all_windows():
            hit = and_([cmp("=", inp, text(w.input)), cmp(">", date, date_lit(w.start)),
                        cmp("<=", date, date_lit(w.end))])
            aggs.append(alias(cast(exp.Sum(this=case([(hit, num(1))], num(0))), BIGINT),
                                   f"__w{w.index}_{w.input}", quoted=True))
        for name in names:
            badc = and_([cmp("=", inp, text(name)), is_null(date)])
            aggs.append(alias(cmp(">", exp.Max(this=case([(badc, num(1))], num(0))), num(0)),
                                   f"__bad_{name}", quoted=True))
        idc = exp.column(self.id_column, quoted=True)
        tbl = exp.to_table(table) if "." in table else exp.Table(this=exp.to_identifier(table, quoted=True))
        return exp.select(idc, *aggs).from_(tbl).where(
            exp.In(this=inp, expressions=[text(x) for x in names])).group_by(idc)

    # ---- overrides that last (docs/semantics.md §10) ----------------------------------
    def lasting(self, q: _Query, L, events: str) -> None:
        """Side CTEs for override L, then a stage with its `__since<k>`:
        lb<k>: per possible candidate day __t, the (lo, hi] of each window as of __t;
        lc<k>: per (enterprise, candidate day) — its own events in (start, as-of] — the counts
               of the condition's windows, a self-join of the events;
        ls<k>: per enterprise, the latest candidate day whose condition holds (the condition
               reads the chain's columns and the counts)."""
        k, idc = L.override, self.id_column
        ev_table = exp.to_table(events) if "." in events else exp.Table(this=exp.to_identifier(events, quoted=True))
        nw = len(L.windows)
        names = ["__t", "__until"] + [f"__{x}{j}" for j in range(nw) for x in ("lo", "hi")]
        rows = [exp.Tuple(expressions=[date_lit(t), date_lit(until)] + [date_lit(d) for lo_hi in bounds for d in lo_hi])
                for t, until, bounds in L.bounds]
        values = exp.Values(expressions=rows, alias=exp.TableAlias(
            this=exp.to_identifier("v"), columns=[exp.to_identifier(c, quoted=True) for c in names]))
        q.side(f"lb{k}", exp.select(exp.Star(), copy=False).from_(values, copy=False))

        def c_(name, table):
            return exp.column(name, table, quoted=True)
        cand = exp.select(c_(idc, "ev"), exp.Column(this=exp.Star(), table=exp.to_identifier("b")), copy=False) \
            .distinct(copy=False) \
            .from_(alias(ev_table.copy(), "ev", table=True), copy=False) \
            .join(_tref(f"lb{k}", "b"), copy=False,
                  on=cmp("=", c_("date", "ev"), c_("__t", "b"))) \
            .where(exp.In(this=c_("input", "ev"), expressions=[text(x) for x in L.inputs]), copy=False)
        counts = []
        for j, (w, _) in enumerate(L.windows):
            hit = and_([cmp("=", c_("input", "e"), text(w)), cmp(">", c_("date", "e"), c_(f"__lo{j}", "c")),
                        cmp("<=", c_("date", "e"), c_(f"__hi{j}", "c"))])
            counts.append(alias(cast(exp.Sum(this=case([(hit, num(1))], num(0))), BIGINT), f"__lw{k}_{j}",
                                quoted=True))
        keys = [c_(c, "c") for c in [idc] + names]
        lc = exp.select(c_(idc, "c"), c_("__t", "c"), c_("__until", "c"), *counts, copy=False) \
            .from_(exp.Subquery(this=cand, alias=exp.TableAlias(this=exp.to_identifier("c"))), copy=False) \
            .join(alias(ev_table.copy(), "e", table=True), copy=False, on=cmp("=", c_(idc, "e"), c_(idc, "c"))) \
            .where(exp.In(this=c_("input", "e"), expressions=[text(w) for w in dict.fromkeys(w for w, _ in L.windows)]),
                   copy=False) \
            .group_by(*keys, copy=False)
        q.side(f"lc{k}", lc)
        cond = coalesce_false(_Exprs(self, self.p, lasting=L).condition(
            self.p.checked.policy.overrides[k].condition, "base"))
        # (the last day held grows with the day set off: the max of both is one candidate's)
        since = exp.select(c_(idc, "lc"), alias(exp.Max(this=case([(cond, c_("__t", "lc"))])), f"__since{k}",
                                                 quoted=True),
                           alias(exp.Max(this=case([(cond.copy(), c_("__until", "lc"))])), f"__until{k}", quoted=True),
                           copy=False) \
            .from_(_tref(f"lc{k}", "lc"), copy=False) \
            .join(_tref(q.head, "s"), copy=False,
                  on=cmp("=", c_(idc, "s"), c_(idc, "lc"))) \
            .group_by(c_(idc, "lc"), copy=False)
        q.side(f"ls{k}", since)
        q.join_stage(f"ls{k}", [f"__since{k}", f"__until{k}"], idc)

    # ---- inputs ---------------------------------------------------------------------
    def _plans(self, p):
        out = []
        for s in p.used.values():
            out += self._plans(s) + [s]
        return out

    def used_plans(self, p):
        return self._plans(p)

    def prepared(self) -> list:
        out = []
        for p in [self.p] + self._plans(self.p):
            for name, decl in p.inputs.items():
                if name in p.defaults and decl.type.kind != "events":
                    c = col(p.column(name))
                    out.append(alias(exp.Coalesce(this=c, expressions=[_lit_value(p.defaults[name], decl)]),
                                          f"__v:{p.column(name)}", quoted=True))
        return out

    def value(self, p, name) -> exp.Expression:
        if name in p.defaults:
            return col(f"__v:{p.column(name)}")
        return col(p.column(name))

    # ---- validation -----------------------------------------------------------------
    def problems(self, p) -> list:
        """(condition, "loc:type") for every way a row can be invalid."""
        out = []
        for s in p.used.values():
            out += self.problems(s)
        for name, decl in p.inputs.items():
            c = p.column(name)
            x = col(c)
            t = decl.type
            k = t.kind
            if k == "events":
                if self.events_given:
                    out.append((coalesce_false(col(f"__bad_{c}")), f"{c}:wrong_type"))
                elif name not in p.defaults and decl.missing.kind == "required":
                    out.append((exp.true(), f"{c}:missing_required"))
                continue
            if name not in p.defaults and decl.missing.kind == "required":
                out.append((is_null(x), f"{c}:missing_required"))
            if k == "count":
                out.append((cmp("<", x, num(0)), f"{c}:out_of_domain"))
            elif k in ("number", "ratio"):
                finite = exp.Between(this=x, low=double(-FINITE), high=double(FINITE))
                out.append((not_(finite), f"{c}:wrong_type"))
                low, high = (0, 1) if k == "ratio" else (t.low, t.high)
                conds = []
                if low is not None:
                    conds.append(cmp("<", x, double(low)))
                if high is not None:
                    conds.append(cmp(">", x, double(high)))
                if conds:
                    out.append((and_([or_(conds), finite]), f"{c}:out_of_domain"))
            elif k in ("enum", "grade"):
                members = list(t.members) if k == "enum" else list(p.grades)
                out.append((not_(exp.In(this=x, expressions=[text(m) for m in members])), f"{c}:not_a_member"))
            if name in p.guarded and k in ("count", "number", "ratio"):
                if k == "count":
                    ok = cmp("<=", exp.Abs(this=x), int_lit(COUNT_LIMIT))
                else:
                    units = exp.Round(this=mul(x, double(10 ** FLOAT_SCALE)))
                    ok = and_([cmp("<=", exp.Abs(this=x), double(FLOAT_LIMIT)),
                               cmp("=", exp.Div(this=paren(cast(units, DOUBLE)), expression=double(10 ** FLOAT_SCALE)), x)])
                    ok = or_([ok, not_(exp.Between(this=x, low=double(-FINITE), high=double(FINITE)))])
                out.append((and_([not_null(x), not_(ok)]), f"{c}:out_of_batch_range"))
        if isinstance(p.grade_input, n.InputRef):
            name = p.grade_input.name
            if name not in p.defaults and p.inputs[name].missing.kind != "required":
                out.append((is_null(col(p.column(name))), f"{p.column(name)}:missing_required"))
        return out

    # ---- one policy -----------------------------------------------------------------
    def policy_columns(self, p) -> list:
        pre = "__" + p.prefix
        ex = _Exprs(self, p)
        # the value of an indicator computed from an expression, in a stage of its own: its
        # contribution reads it up to six times (missing?, bins or half-up rounding, collected)
        values = []
        for ip in p.indicators:
            if ip.direct is None:
                s_ = ip.scoring
                v = ex.expr(s_.operand if isinstance(s_, n.Bins) else s_.expr)
                name = f"{pre}val{ip.index}"
                values.append(alias(v.expr, name, quoted=True))
                ex.staged[ip.index] = replace(v, expr=col(name), literal=None)
        stage1 = []
        contribs, excluded, collected = [], [], []
        for ip in p.indicators:
            c, x, k, trace = ex.indicator(ip)
            contribs.append(c)
            if x is not None:
                excluded.append(x)
            collected.append(k)
            if self.contributions and not p.prefix:
                stage1.append(alias(trace, f"__contrib_{ip.index}", quoted=True))
        if p.thresholds is not None:
            wide = p.wide_total
            t = WIDE if wide else BIGINT
            # the sum (and the weight left out) in a stage of their own: the rounding reads
            # them several times, and must not repeat the 89-term sum in the text
            stage1.append(alias(balanced([cast(c, t) for c in contribs]) if contribs else int_lit(0, wide),
                                     pre + "total", quoted=True))
            if excluded:
                stage1.append(alias(balanced(excluded), pre + "excl", quoted=True))
            total = col(pre + "total")
            if p.scale <= p.precision:
                plain = mul(total, int_lit(10 ** (p.precision - p.scale), wide))
            elif p.nonnegative:
                # a >= 0, b = 10^k even: round_half_up(a / b) = (a + b/2) // b
                b = 10 ** (p.scale - p.precision)
                plain = int_div(add(total, int_lit(b // 2, wide)), int_lit(b, wide), wide)
            else:
                plain = half_up_div(total, 10 ** (p.scale - p.precision), wide)
            if excluded:
                excl = col(pre + "excl")
                weights = sub(int_lit(p.weight_total, wide), excl)
                # GREATEST(…, 1): the branch is not taken when no weight is left, but an engine may
                # still evaluate it (DuckDB raises on a division by zero)
                safe = exp.Greatest(this=paren(weights), expressions=[int_lit(1, wide)], ignore_nulls=True)
                renorm = half_up_div(mul(total, int_lit(10 ** (p.weight_scale + p.precision), wide)),
                                     mul(safe, int_lit(10 ** p.scale, wide)), wide)
                units = case([(cmp("=", excl, num(0)), plain),
                              (cmp(">", weights, num(0)), renorm)], cast(exp.Null(), t))
                no_data = cmp("<=", weights, num(0))
            else:
                units, no_data = plain, exp.false()
            units = cast(units, t)
            base_of = lambda: _grade_chain(col(pre + "units"), p.thresholds, p.cutoff_grades)  # noqa: E731
        else:
            units = cast(exp.Null(), BIGINT)
            no_data = exp.false()
            base_of = ex.grade_source
        stage1.append(alias(cast(balanced(collected) if collected else num(0), INT), pre + "collected",
                                 quoted=True))
        stage2 = [alias(units, pre + "units", quoted=True), alias(no_data, pre + "no_data", quoted=True)]
        stages = [values, stage1, stage2, [alias(cast(base_of(), INT), pre + "base", quoted=True)]]
        stages.append([alias(self._lasting_fired(k) if getattr(o, "duration", None) is not None else
                             coalesce_false(ex.condition(o.condition, "base")), f"{pre}o{k}", quoted=True)
                       for k, o in enumerate(p.checked.policy.overrides)])
        stages.append([alias(cast(self._final(p, pre), INT), pre + "grade", quoted=True)])
        stages.append([alias(coalesce_false(ex.condition(a.condition, "grade")), f"{pre}a{k}", quoted=True)
                       for k, a in enumerate(p.checked.policy.alerts)])
        return stages

    def _lasting_fired(self, k: int) -> exp.Expression:
        """An override that lasts holds when some candidate day set it off (`__since<k>`, joined
        in by lasting()); without events nothing sets it off."""
        return not_null(col(f"__since{k}")) if self.events_given else exp.false()

    def _final(self, p, pre) -> exp.Expression:
        overrides = p.checked.policy.overrides
        idx = p.grades.index
        g = col(pre + "base")
        if not overrides:
            return g
        fired = [col(f"{pre}o{k}") for k in range(len(overrides))]
        moves = [(f, o.effect.steps if o.effect.kind == "raise" else -o.effect.steps)
                 for f, o in zip(fired, overrides) if o.effect.kind in ("raise", "lower")]
        if moves:
            g = add(g, balanced([case([(f, num(s))], num(0)) for f, s in moves]))
            g = exp.Greatest(this=num(0), ignore_nulls=True,
                             expressions=[exp.Least(this=paren(g), expressions=[num(len(p.grades) - 1)], ignore_nulls=True)])
        for f, o in zip(fired, overrides):
            if o.effect.kind == "at_most":
                g = case([(f, exp.Least(this=paren(g), expressions=[num(idx(o.effect.grade))], ignore_nulls=True))], g)
        for f, o in zip(fired, overrides):
            if o.effect.kind == "at_least":
                g = case([(f, exp.Greatest(this=paren(g), expressions=[num(idx(o.effect.grade))], ignore_nulls=True))], g)
        sets = sorted(((idx(o.effect.grade), f) for f, o in zip(fired, overrides) if o.effect.kind == "set"),
                      key=lambda t: -t[0])
        if sets:
            g = case([(f, num(gi)) for gi, f in sets], g)
        return g

    def _measures(self, p, grade):
        return _measures_of(self, p, grade)

    # ---- output ---------------------------------------------------------------------
    def output(self, p, kept=None) -> list:
        """The result columns; the costly ones (lists, measures, contributions) are NULL where
        `kept` is false (a rejected row, which goes to the rejects with its problems only)."""
        only = (lambda e: e) if kept is None else (lambda e: case([(kept, e)]))  # noqa: E731
        out = [alias(col(self.id_column), self.id_column, quoted=True)]
        if p.thresholds is not None:
            out.append(alias(decimal_of(col("__units"), p.precision, 38 if p.wide_total else 18), "score",
                                  quoted=True))
        else:
            out.append(alias(cast(exp.Null(), exp.DataType.build(f"DECIMAL(18, {p.precision})")), "score",
                                  quoted=True))
        out.append(alias(_grade_name(col("__grade"), p.grades), "grade", quoted=True))
        out.append(alias(_grade_name(col("__base"), p.grades), "base_grade", quoted=True))
        out.append(alias(only(compact([case([(col(f"__o{k}"), text(o.name))])
                                            for k, o in enumerate(p.checked.policy.overrides)])),
                              "overrides", quoted=True))
        out.append(alias(only(compact([case([(col(f"__a{k}"), text(a.name))])
                                            for k, a in enumerate(p.checked.policy.alerts)])), "alerts", quoted=True))
        for k, o in enumerate(p.checked.policy.overrides):
            if getattr(o, "duration", None) is not None:
                for what in ("since", "until"):
                    v = col(f"__{what}{k}") if self.events_given else cast(exp.Null(), exp.DataType.build("DATE"))
                    out.append(alias(v, f"override.{o.name}.{what}", quoted=True))
        total = p.total_indicators
        out.append(alias(col("__collected"), "collected", quoted=True))
        # collected >= 0: round_half_up(c·10^4 / total) = (2·c·10^4 + total) // (2·total)
        ratio = int_div(add(mul(col("__collected"), int_lit(20_000)), int_lit(total)), int_lit(2 * total)) \
            if total else int_lit(10_000)
        out.append(alias(decimal_of(ratio, 4, 5), "completeness", quoted=True))
        if p.required is not None:
            numr, den = p.completeness_units()
            met = exp.true() if total == 0 else cmp(">=", mul(col("__collected"), int_lit(den)), int_lit(numr * total))
            out.append(alias(met, "completeness_met", quoted=True))
        out.append(alias(only(case([(cmp("=", col("__grade"), num(k)), self._measures(p, g))
                                         for k, g in enumerate(p.grades)])), "measures", quoted=True))
        for used_as, s in p.used.items():
            pre = "__" + s.prefix
            out.append(alias(_grade_name(col(pre + "grade"), s.grades), f"{used_as}.grade", quoted=True))
            if s.thresholds is not None:
                out.append(alias(decimal_of(col(pre + "units"), s.precision, 38 if s.wide_total else 18),
                                      f"{used_as}.score", quoted=True))
        if self.contributions:
            for ip in p.indicators:
                out.append(alias(only(decimal_of(col(f"__contrib_{ip.index}"), p.scale, 38)),
                                      f"contribution.{ip.name}", quoted=True))
        return out


def _measures_of(gen, p, grade) -> exp.Expression:
    """The JSON text of the final grade's measures; with `when` items (docs/semantics.md §9)
    item k is in when it applies and no earlier item of the same name applied."""
    items = p.conditional_measures.get(grade)
    if items is None:
        return text(p.measures_json[grade])
    ex = _Exprs(gen, p)
    applies = [exp.true() if c is None else coalesce_false(ex.condition(c, "grade")) for _, _, c in items]
    pieces = []
    for i, (key, js, _) in enumerate(items):
        earlier = [applies[j] for j, (kj, _, _) in enumerate(items[:i]) if kj == key]
        ok = and_([applies[i]] + [not_(e) for e in earlier])
        pieces.append(case([(ok, text(js))]))
    joined = exp.ArrayToString(this=compact(pieces), expression=text(", "))
    return exp.DPipe(this=exp.DPipe(this=text("["), expression=joined), expression=text("]"))


def _grade_name(idx: exp.Expression, grades) -> exp.Expression:
    return case([(cmp("=", idx, num(k)), text(g)) for k, g in enumerate(grades)])


def _grade_chain(units, thresholds, grades) -> exp.Expression:
    pairs = [(cmp("<", units, int_lit(t)), num(g)) for t, g in zip(thresholds, grades)]
    return case(pairs, num(grades[len(thresholds)])) if pairs else num(grades[0])


def _lit_value(v, decl) -> exp.Expression:
    k = decl.type.kind
    if k == "count":
        return int_lit(v)
    if k in ("number", "ratio"):
        return double(v)
    if k == "bool":
        return exp.Boolean(this=v)
    if k == "date":
        return date_lit(v)
    return text(v)


class _Exprs:
    """Resolved expressions of policy `p` → SQL expressions (NULL = unknown, as in §5)."""

    def __init__(self, gen: _Gen, p: BatchPlan, lasting=None):
        self.g = gen
        self.p = p
        self.lasting = lasting             # a Lasting: event counts as of its candidate day
        self.staged: dict = {}             # indicator index → its value, a column of an earlier stage
        self._grade = "base"

    # ---- indicators -----------------------------------------------------------------
    def indicator(self, ip):
        p, g = self.p, self.g
        s = ip.scoring
        if ip.direct is not None:
            name = ip.direct
            value = self.expr(n.InputRef(name))
            x = g.value(p, name)
            present = not_null(x)
            scored = self._bins(ip, value)
            if name in p.defaults:
                collected = not_null(col(p.column(name)))
            else:
                collected = present
            # a required input that is missing rejects the row: its contribution is never read
            nullable = name not in p.defaults and ip.missing != "none"
        else:
            value = self.staged.get(ip.index) or self.expr(s.operand if isinstance(s, n.Bins) else s.expr)
            present = not_null(value.expr)
            scored = self._bins(ip, value) if isinstance(s, n.Bins) else self._arith_points(ip, value)
            conds = [present] + [is_null(col(p.column(x))) for x in ip.defaulted
                                 if p.inputs[x].type.kind != "events"]
            conds = [not_(c) if k else c for k, c in enumerate(conds)]
            if any(p.inputs[x].type.kind == "events" for x in ip.defaulted) and not g.events_given:
                conds.append(exp.false())
            collected = and_(conds)
            nullable = True
        t = WIDE if p.wide_total else BIGINT
        if not nullable:
            contrib, excluded, trace = scored, None, scored
        elif ip.missing == "dynamic":
            # the strictest rule among the inputs missing in the row (batch_plan.by_missing)
            missing = [(self._input_missing(x), int_lit(cx)) for x, cx in ip.by_missing]
            contrib = case([(present, scored)] + missing, int_lit(0))
            trace = case([(present, scored)] + missing)
            kept = or_([present] + [m for m, _ in missing])
            excluded = case([(kept, int_lit(0))], int_lit(ip.weight_units))
        else:
            miss = int_lit(ip.missing_contrib) if ip.missing == "add" else int_lit(0)
            # one CASE: the missing value first, then the bins (not a CASE inside a CASE)
            contrib = exp.Case(ifs=[exp.If(this=not_(present), true=miss)] + [i.copy() for i in scored.args["ifs"]],
                               default=scored.args.get("default")) \
                if isinstance(scored, exp.Case) else case([(present, scored)], miss)
            excluded = case([(present, int_lit(0))], int_lit(ip.weight_units)) if ip.missing == "exclude" else None
            trace = contrib if ip.missing != "exclude" else case([(present, scored)])
        return cast(contrib, t), excluded, case([(collected, num(1))], num(0)), cast(trace, t)

    def _input_missing(self, name: str) -> exp.Expression:
        """The input has no data in the row (an input without a default)."""
        if self.p.inputs[name].type.kind == "events":
            return exp.Boolean(this=not self.g.events_given)
        return is_null(self.g.value(self.p, name))

    def _bins(self, ip, v: V) -> exp.Expression:
        if ip.mapping:
            if v.kind == "bool":
                ct = next(c for val, c, _ in ip.mapping if val is True)
                cf = next(c for val, c, _ in ip.mapping if val is False)
                return case([(v.expr, int_lit(ct))], int_lit(cf))
            if v.kind == "grade":
                return case([(cmp("=", v.expr, num(v.grades.index(val))), int_lit(c)) for val, c, _ in ip.mapping])
            return case([(cmp("=", v.expr, text(val)), int_lit(c)) for val, c, _ in ip.mapping])
        pairs = [(self._at_least(v, lo, closed), int_lit(ip.contribs[k + 1]))
                 for k, (lo, closed) in enumerate(ip.lows)]
        return case(list(reversed(pairs)), int_lit(ip.contribs[0])) if pairs else int_lit(ip.contribs[0])

    def _at_least(self, v: V, low: Decimal, closed: bool):
        if v.kind == "float":
            return cmp(">=" if closed else ">", v.expr, double(low))
        t = low.scaleb(v.scale)
        if closed:
            return cmp(">=", v.expr, num(int(t.to_integral_value(rounding="ROUND_CEILING"))))
        return cmp(">", v.expr, num(int(t.to_integral_value(rounding="ROUND_FLOOR"))))

    def _arith_points(self, ip, v: V):
        p = self.p
        wide = v.num.wide or p.wide_total
        if v.scale > p.precision:
            pts = half_up_div(v.expr, 10 ** (v.scale - p.precision), wide)
        else:
            pts = _rescale(v, p.precision, wide)
        factor = ip.weight_units * 10 ** (p.scale - p.weight_scale - p.precision)
        return mul(pts, int_lit(factor, wide))

    def grade_source(self):
        ref = self.p.grade_input
        if isinstance(ref, n.Symbol):
            return num(self.p.grades.index(ref.name))     # a fixed base grade (§11)
        return self.expr(ref).expr

    # ---- expressions ----------------------------------------------------------------
    def condition(self, e, grade: str):
        self._grade = grade
        return self.expr(e).expr

    def expr(self, e) -> V:
        return getattr(self, "e_" + type(e).__name__)(e)

    def e_InputRef(self, e) -> V:
        p = self.p
        decl = p.inputs[e.name]
        k = decl.type.kind
        x = self.g.value(p, e.name)
        if k == "count":
            if e.name in p.guarded:
                # beyond the bound the row is rejected; NULL keeps its arithmetic from overflowing
                x = case([(cmp("<=", exp.Abs(this=x), int_lit(COUNT_LIMIT)), x)])
            return V("int", x, 0, Num("int", 0, COUNT_LIMIT))
        if k in ("number", "ratio"):
            if e.name in p.guarded:
                return V("int", _units_of_double(x), FLOAT_SCALE, p.num(e))
            return V("float", x)
        if k == "bool":
            return V("bool", x)
        if k == "enum":
            return V("str", x)
        if k == "grade":
            return V("grade", case([(cmp("=", x, text(gr)), num(i)) for i, gr in enumerate(p.grades)]),
                     grades=p.grades)
        if k == "date":
            return V("date", x)
        raise Unsupported(f"an input of type {k} outside `count(…)`", e.span, "sql")

    def e_Number(self, e) -> V:
        nm = self.p.num(e)
        return V("int", int_lit(int(e.value.scaleb(nm.scale))), nm.scale, nm, literal=e.value)

    e_Percent = e_Number

    def e_BoolLit(self, e) -> V:
        return V("bool", exp.Boolean(this=e.value))

    def e_DateLit(self, e) -> V:
        return V("date", date_lit(e.value))

    def e_Symbol(self, e) -> V:
        return V("symbol", text(e.name), name=e.name)

    def e_Str(self, e) -> V:
        return V("str", text(e.value))

    def e_GradeRef(self, e) -> V:
        c = "__" + self.p.prefix + ("base" if self._grade == "base" else "grade")
        return V("grade", col(c), grades=self.p.grades)

    def e_ScoreRef(self, e) -> V:
        return V("int", col("__" + self.p.prefix + "units"), self.p.precision, self.p.num(e))

    def e_UsedRef(self, e) -> V:
        s = self.p.used[e.alias]
        pre = "__" + s.prefix
        if e.field == "grade":
            return V("grade", col(pre + "grade"), grades=s.grades)
        if s.thresholds is None:
            return V("int", cast(exp.Null(), BIGINT), s.precision, self.p.num(e))
        return V("int", col(pre + "units"), s.precision, self.p.num(e))

    def e_CountEvents(self, e) -> V:
        p = self.p
        name = e.events.name
        nm = p.num(e)
        if self.lasting is not None:
            j = self.lasting.window_index(p.column(name), e.window)
            return V("int", col(f"__lw{self.lasting.override}_{j}"), 0, nm)
        w = p.window(name, e.window)
        if self.g.events_given:
            return V("int", exp.Coalesce(this=col(f"__w{w.index}_{w.input}"), expressions=[int_lit(0)]), 0, nm)
        if name in p.defaults:
            return V("int", int_lit(sum(1 for d in p.defaults[name] if w.start < d <= w.end)), 0, nm)
        return V("int", cast(exp.Null(), BIGINT), 0, nm)

    def e_Call(self, e) -> V:
        p = self.p
        nm = p.num(e)
        if e.function in ("min", "max"):
            vals = [self._as_int(self.expr(a)) for a in e.args]
            es = [_rescale(v, nm.scale, nm.wide) for v in vals]
            f = exp.Least if e.function == "min" else exp.Greatest
            # min/max of an unknown is unknown: said here once, so the dialect's own NULL rule for
            # LEAST/GREATEST does not matter (ignore_nulls: sqlglot adds no second NULL test)
            anynull = or_([is_null(x) for x in es])
            return V("int", case([(not_(anynull), f(this=es[0], expressions=es[1:], ignore_nulls=True))]), nm.scale, nm)
        d = self.expr(e.args[0]).expr
        as_of = p.as_of
        if e.function == "days_since":
            return V("int", cast(exp.DateDiff(this=date_lit(as_of), expression=d, unit=exp.var("DAY")), BIGINT),
                     0, nm)
        months = add(mul(sub(num(as_of.year), cast(exp.Year(this=d), BIGINT)), num(12)),
                     paren(sub(num(as_of.month), cast(exp.Month(this=d), BIGINT))))
        dim = calendar.monthrange(as_of.year, as_of.month)[1]
        if as_of.day < dim:
            months = sub(paren(months), case([(cmp(">", cast(exp.Day(this=d), BIGINT), num(as_of.day)), num(1))],
                                             num(0)))
        if e.function == "years_since":
            m = paren(months)
            months = case([(cmp(">=", m, num(0)), int_div(m, num(12)))],
                          exp.Neg(this=paren(int_div(add(exp.Neg(this=m), num(11)), num(12)))))
        return V("int", cast(months, BIGINT), 0, nm)

    def e_Neg(self, e) -> V:
        v = self._as_int(self.expr(e.operand))
        return V("int", exp.Neg(this=paren(v.expr)), v.scale, self.p.num(e))

    def e_Arith(self, e) -> V:
        nm = self.p.num(e)
        a, b = self._as_int(self.expr(e.left)), self._as_int(self.expr(e.right))
        w = nm.wide
        if e.op == "*":
            t = WIDE if w else BIGINT
            return V("int", mul(cast(a.expr, t), cast(b.expr, t)), a.scale + b.scale, nm)
        ea, eb = _rescale(a, nm.scale, w), _rescale(b, nm.scale, w)
        return V("int", paren(add(ea, eb) if e.op == "+" else sub(ea, eb)), nm.scale, nm)

    def _as_int(self, v: V) -> V:
        if v.kind == "int":
            return v
        if v.kind == "float":
            return V("int", _units_of_double(v.expr), FLOAT_SCALE, as_int(Num("float")))
        raise Unsupported(f"arithmetic on a {v.kind}", backend="sql")

    def e_And(self, e) -> V:
        return V("bool", and_([self.expr(x).expr for x in e.items]))

    def e_Or(self, e) -> V:
        return V("bool", or_([self.expr(x).expr for x in e.items]))

    def e_Not(self, e) -> V:
        return V("bool", not_(self.expr(e.operand).expr))

    def e_IsMissing(self, e) -> V:
        op = e.operand
        if isinstance(op, n.UsedRef):
            return V("bool", exp.Boolean(this=e.negated))
        p = self.p
        if p.inputs[op.name].type.kind == "events":
            missing = exp.Boolean(this=not self.g.events_given and op.name not in p.defaults)
        else:
            missing = is_null(self.g.value(p, op.name))
        return V("bool", not_(missing) if e.negated else missing)

    def e_Compare(self, e) -> V:
        return V("bool", self._compare(e.op, self.expr(e.left), self.expr(e.right), e))

    def e_Member(self, e) -> V:
        a = self.expr(e.operand)
        return V("bool", or_([self._compare("=", a, self.expr(v), e) for v in e.values]))

    def _compare(self, op, a: V, b: V, e):
        if (a.kind == "symbol" and b.kind != "symbol") or (a.literal is not None and b.literal is None):
            a, b = b, a
            op = _FLIP.get(op, op)
        if a.kind == "grade":
            if b.kind == "symbol":
                b = V("grade", num(a.grades.index(b.name)), grades=a.grades)
            return cmp(op, a.expr, b.expr)
        if a.kind in ("str", "bool", "date", "symbol"):
            return cmp(op, a.expr, b.expr)
        if a.kind == "float":
            if b.kind == "float":
                return cmp(op, a.expr, b.expr)
            if b.literal is not None:
                return cmp(op, a.expr, double(b.literal))
            raise Unsupported("comparing a number input with a computed value", e.span, "sql")
        if b.literal is not None:
            t = b.literal.scaleb(a.scale)
            if t == t.to_integral_value():
                return cmp(op, a.expr, num(int(t)))
            lo = int(t.to_integral_value(rounding="ROUND_FLOOR"))
            if op in (">", ">="):
                return cmp(">", a.expr, num(lo))
            if op in ("<", "<="):
                return cmp("<", a.expr, num(lo + 1))
            return cmp("!=" if op == "=" else "=", a.expr, a.expr)
        s, wide = common_scale(a.num, b.num, e)
        return cmp(op, _rescale(a, s, wide), _rescale(b, s, wide))


def _units_of_double(x: exp.Expression) -> exp.Expression:
    """A double as an integer of 10^-6 units where |x| <= FLOAT_LIMIT; NULL for a NaN, an
    infinity or a value beyond the bound (rows the checks reject), so that the cast cannot
    fail the whole query."""
    ok = cmp("<=", exp.Abs(this=x), double(FLOAT_LIMIT))
    return case([(ok, cast(exp.Round(this=mul(x, double(10 ** FLOAT_SCALE))), BIGINT))])


def _rescale(v: V, s: int, wide: bool) -> exp.Expression:
    e = cast(v.expr, WIDE) if wide else v.expr
    return e if s == v.scale else mul(e, int_lit(10 ** (s - v.scale), wide))


def parse_back(sql: str, dialect: str) -> exp.Expression:
    """Parse generated SQL again (a test that the text is valid for the dialect's grammar)."""
    return sqlglot.parse_one(sql, read=dialect)
