"""Checked policy → a columnar Polars plan: the embedded fast path of `riskrules classify`.

The plan is built from the checked AST through engine/batch_plan.py, the same constants the
SQL generator (engine/sqlgen.py) uses, and computes per row what `Evaluator.evaluate`
computes per record (docs/semantics.md): integer contributions per bin, the score in scaled
integers with half-up rounding, grade, overrides by precedence, alerts with as-of windows,
completeness, measures of the final grade, and the problems that make a row a reject.

A plan is specialised per chunk to what the chunk holds: a column without nulls gets no
missing-value branches, a column whose minimum and maximum are in its domain gets no
validation. Both forms are under the differential test (tests/batch/).

    batch = compile_batch(checked, as_of)
    results, rejects = batch.evaluate(frame, events=batch.event_counts(events_frame))
"""
from __future__ import annotations

import calendar
import math
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Optional

import polars as pl

from . import nodes as n
from .batch_plan import (FLOAT_LIMIT, FLOAT_SCALE, COUNT_LIMIT, BatchPlan, Num, Unsupported, as_int,
                         common_scale, plan as make_plan)
from .checker.context import CheckedPolicy

I64, I128 = pl.Int64, pl.Int128
FINITE = 1.7976931348623157e308


def compile_batch(checked: CheckedPolicy, as_of: dt.date, *, resolve_used=None, events_given: bool = True,
                  contributions: bool = False, id_column: str = "id", lasting: bool = False) -> "PolarsBatch":
    """The Polars plan of `checked` as of `as_of`. An override that lasts (docs/semantics.md §10)
    adds the columns `override.<name>.since` / `.until`; a caller that renders overrides from
    their names alone (api/columnar.py) would lose those dates, so such a policy is refused
    (Unsupported, as before lasting overrides were planned) unless `lasting=True`."""
    p = make_plan(checked, as_of, resolve_used, events_given)
    if p.lasting and not lasting:
        o = checked.policy.overrides[p.lasting[0].override]
        raise Unsupported(f"override `{o.name}` that lasts (`-> {o.effect.grade} for …`, docs/semantics.md §10) "
                          "without compile_batch(lasting=True)", o.span,
                          help="its results carry override.<name>.since / .until")
    return PolarsBatch(p, contributions, id_column)


# ---- values of expressions ----------------------------------------------------------------

@dataclass
class V:
    """A compiled value: kind int (scaled by 10^scale), float, bool, str, grade (index), date."""
    kind: str
    expr: pl.Expr
    scale: int = 0
    num: Optional[Num] = None
    grades: tuple = ()
    literal: Optional[Decimal] = None      # a number literal's value
    name: str = ""                         # a symbol's name


def lit_int(v: int, wide: bool = False) -> pl.Expr:
    return pl.lit(v, dtype=I128 if wide else I64)


def half_up_div(num: pl.Expr, den, wide: bool) -> pl.Expr:
    """round(num / den) half away from zero, den > 0 (an int or an expression): exact."""
    t = I128 if wide else I64
    num = num.cast(t)
    two_den = den * 2 if isinstance(den, int) else den.cast(t) * 2
    d = den if isinstance(den, int) else den.cast(t)
    zero = pl.lit(0, dtype=t)                      # (Int128 has no unary minus in Polars)
    pos = (num * 2 + d) // two_den
    neg = zero - (((zero - num) * 2 + d) // two_den)
    return pl.when(num >= 0).then(pos).otherwise(neg)


def rescale(v: V, s: int, wide: bool) -> pl.Expr:
    e = v.expr.cast(I128) if wide else v.expr
    return e if s == v.scale else e * lit_int(10 ** (s - v.scale), wide)


class PolarsBatch:
    """A compiled batch plan; `evaluate` runs it over one chunk (a DataFrame)."""

    def __init__(self, plan: BatchPlan, contributions: bool = False, id_column: str = "id"):
        self.plan = plan
        self.contributions = contributions
        self.id_column = id_column
        self.grade_dtype = pl.Enum(list(plan.grades))
        self._compiled: dict = {}

    # ---- events ----------------------------------------------------------------------
    def event_counts(self, events: Optional[pl.DataFrame], id_column: Optional[str] = None) -> Optional[pl.DataFrame]:
        """Events (enterprise id, input, date) → one row per enterprise: a count per window and
        a flag per events input whose dates are malformed."""
        windows = self.plan.all_windows()
        names = self.plan.events_inputs()
        if events is None or not names:
            return None
        idc = id_column or self.id_column
        ev = events.lazy().filter(pl.col("input").is_in(names))
        date = pl.col("date")
        if events.schema["date"] == pl.String:
            parsed = date.str.to_date("%Y-%m-%d", strict=False)
            date = pl.when(date.str.contains(r"^\d{4}-\d{2}-\d{2}$")).then(parsed)
        ev = ev.with_columns(date.alias("date"))
        aggs = [((pl.col("input") == w.input) & (pl.col("date") > w.start) & (pl.col("date") <= w.end)).sum()
                .cast(I64).alias(f"__w{w.index}_{w.input}") for w in windows]
        aggs += [((pl.col("input") == name) & pl.col("date").is_null()).any().alias(f"__bad_{name}") for name in names]
        per_entity = ev.group_by(pl.col(idc).alias(self.id_column)).agg(aggs).collect()
        if not self.plan.lasting:
            return per_entity
        ev = ev.select(pl.col(idc).alias(self.id_column), "input", "date").filter(pl.col("date").is_not_null())
        return EventCounts(per_entity, {L.override: self._candidates(L, ev) for L in self.plan.lasting})

    def _candidates(self, L, ev: pl.LazyFrame) -> pl.DataFrame:
        """An override that lasts (docs/semantics.md §10): one row per (enterprise, candidate day
        __t) with the counts `__lw<override>_<j>` of its condition's windows as of __t. The
        candidates are the enterprise's own events in (start, as-of]; the counts a self-join of
        its events against the windows of that day (precomputed per day in the plan)."""
        idc = self.id_column
        nw = len(L.windows)
        days = pl.DataFrame({"__t": [t for t, _, _ in L.bounds], "__until": [u for _, u, _ in L.bounds]} |
                            {f"__lo{j}": [b[j][0] for _, _, b in L.bounds] for j in range(nw)} |
                            {f"__hi{j}": [b[j][1] for _, _, b in L.bounds] for j in range(nw)},
                            schema_overrides={"__t": pl.Date, "__until": pl.Date} |
                            {f"__{x}{j}": pl.Date for j in range(nw) for x in ("lo", "hi")})
        cand = (ev.filter(pl.col("input").is_in(list(L.inputs))).select(idc, pl.col("date").alias("__t")).unique()
                .join(days.lazy(), on="__t"))
        seen = ev.filter(pl.col("input").is_in([w for w, _ in L.windows]))
        counts = [((pl.col("input") == w) & (pl.col("date") > pl.col(f"__lo{j}")) & (pl.col("date") <= pl.col(f"__hi{j}")))
                  .sum().cast(I64).alias(f"__lw{L.override}_{j}") for j, (w, _) in enumerate(L.windows)]
        return cand.join(seen, on=idc).group_by(idc, "__t").agg([pl.col("__until").first()] + counts).collect()

    # ---- evaluation ------------------------------------------------------------------
    def evaluate(self, frame: pl.DataFrame, events=None):
        """(results, rejects) for one chunk. `events` comes from event_counts()."""
        df = frame
        lasting = {}
        if isinstance(events, EventCounts):
            events, lasting = events.per_entity, events.lasting
        if events is not None:
            df = df.join(events, on=self.id_column, how="left")
        ctx = _Chunk(self, df, events is not None)
        checks = ctx.checks(self.plan)
        # the expressions depend on the chunk only through its schema, which columns hold
        # nulls and which checks its values need (the conditions themselves: one label may stand
        # for `x < 0` in a chunk and `x > 1` in the next): chunks alike share one compiled form
        key = (tuple((c, str(t)) for c, t in df.schema.items()), frozenset(ctx.nulls), events is not None,
               tuple((label, str(cond)) for cond, label in checks))
        compiled = self._compiled.get(key)
        if compiled is None:
            if len(self._compiled) >= 32:
                self._compiled.clear()
            compiled = self._compiled[key] = _Compiled(ctx, checks)
        return compiled.run(df, lasting)


@dataclass
class EventCounts:
    """What event_counts() makes of the events when the policy has an override that lasts."""
    per_entity: pl.DataFrame           # one row per enterprise: a count per window, malformed flags
    lasting: dict                      # override index → candidate days and their counts (_candidates)


class _Compiled:
    """The plan specialised to one kind of chunk: one lazy query from the input columns to the
    result columns and a `__bad` flag; the problems of the rejected rows are listed afterwards,
    over those rows only."""

    def __init__(self, ctx: "_Chunk", checks: list):
        batch = ctx.batch
        plan = batch.plan
        self.id_column = batch.id_column
        self.prepared = ctx.prepared()
        # inputs as expressions see them (defaults applied, dates parsed), then used policies
        # (innermost first), then the policy itself
        self.used_stages = [st for sub in ctx.used_plans(plan) for st in ctx.policy_columns(sub)]
        self.stages = ctx.policy_columns(plan)
        # an override that lasts: its condition as of each candidate day (docs/semantics.md §10)
        self.lasting = {L.override: _Exprs(ctx, plan, lasting=L).condition(
            plan.checked.policy.overrides[L.override].condition, "base").fill_null(False)
            for L in plan.lasting} if ctx.events_given else {}
        # problems: a used policy's (its invalid inputs, its no_data), the record's own, and
        # no_data of the record only when nothing else is wrong (as Evaluator.evaluate)
        # `__<prefix>no_data` of the policies whose score may have no indicator left
        maybe = [sub for sub in ctx.used_plans(plan) + [plan] if sub.prefix not in ctx.never_no_data]
        self.no_data_cols = [f"__{sub.prefix}no_data" for sub in maybe]
        problems = list(checks)
        problems += [(pl.col(f"__{sub.prefix}no_data"), sub.prefix[:-1] + ":no_data") for sub in maybe if sub.prefix]
        flags = [c.fill_null(False) for c, _ in checks] + [pl.col(c) for c in self.no_data_cols]
        # no check left and no way to have no data: no row of such a chunk is rejected
        self.bad = pl.any_horizontal(flags).alias("__bad") if flags else None
        listed = [pl.when(c).then(pl.lit(label)) for c, label in problems]
        listed = pl.concat_list(listed).list.drop_nulls() if listed else pl.lit([], dtype=pl.List(pl.String))
        no_data = pl.col("__no_data") if "__no_data" in self.no_data_cols else pl.lit(False)
        self.problems = pl.when((listed.list.len() == 0) & no_data).then(pl.lit(["no_data"])) \
            .otherwise(listed).alias("problems")
        self.output, self.lists = ctx.output(plan)
        self.names = [e.meta.output_name() for e in self.output]

    def run(self, df: pl.DataFrame, lasting: dict):
        idc = self.id_column
        for k, cond in self.lasting.items():
            # the latest candidate day as of which the condition holds: `since`
            cand = lasting[k].join(df, on=idc, how="inner").lazy()
            if self.prepared:
                cand = cand.with_columns(self.prepared)
            cand = _with_stages(cand, self.used_stages)
            # (the last day held grows with the day set off: the max of both is one candidate's)
            since = cand.filter(cond).group_by(idc).agg(pl.col("__t").max().alias(f"__since{k}"),
                                                        pl.col("__until").max().alias(f"__until{k}")).collect()
            df = df.join(since, on=idc, how="left")
        lf = df.lazy()
        if self.prepared:
            lf = lf.with_columns(self.prepared)
        lf = _with_stages(lf, self.used_stages + self.stages)
        if self.bad is None:
            out, n_bad = lf.select(self.output).collect(), 0
        else:
            out = lf.select(self.output + [self.bad] + [pl.col(c) for c in self.no_data_cols]).collect()
            bad = out["__bad"]
            n_bad = int(bad.sum())
        if n_bad:
            flags = out.filter(bad).select(self.no_data_cols)
            rejects = df.filter(bad).with_columns(flags).select(pl.col(self.id_column), self.problems)
            out = out.filter(~bad)
        else:
            rejects = pl.DataFrame({self.id_column: pl.Series([], dtype=df.schema[self.id_column]),
                                    "problems": pl.Series([], dtype=pl.List(pl.String))})
        if self.lists:
            out = out.with_columns([_mask_to_names(out[mask], names).alias(name)
                                    for name, mask, names in self.lists])
        return out.select(self.names), rejects


def _mask_to_names(mask: pl.Series, names: list) -> pl.Series:
    """A bit mask per row (bit k: item k fired) → the list of the names that fired, in order.
    Only the masks present in the chunk are spelled out, once each."""
    table = {int(m): [nm for k, nm in enumerate(names) if int(m) >> k & 1] for m in mask.unique().to_list()}
    dtype = pl.List(pl.String)
    if not table:
        return pl.Series(mask.name, [], dtype=dtype)
    if len(table) > 16:
        return mask.replace_strict(table, return_dtype=dtype)
    # a few distinct masks (the usual case): a chain of list literals, measured 3x faster
    chain = None
    for m, items in table.items():
        cond = pl.col("m") == m
        chain = (pl.when(cond) if chain is None else chain.when(cond)).then(pl.lit(items, dtype=dtype))
    return mask.to_frame("m").select(chain.alias(mask.name)).to_series()


class _Chunk:
    """Builds the expressions for one chunk, specialised to which columns hold nulls."""

    def __init__(self, batch: PolarsBatch, df: pl.DataFrame, events_given: bool):
        self.batch = batch
        self.df = df
        self.events_given = events_given
        self.null_counts = dict(zip(df.columns, df.null_count().row(0)))
        self.nulls = {c for c, k in self.null_counts.items() if k}
        self.never_no_data: set = set()     # prefixes of the policies whose no_data is never true
        self.collected_const = None

    # ---- validation -----------------------------------------------------------------
    def checks(self, plan: BatchPlan) -> list:
        """(condition, "loc:type") for each check a row of this chunk may fail. The chunk's
        minimum and maximum per numeric column (one pass, NaN poisoning them) leave out the
        checks no row can fail: a clean chunk has none, and costs no mask at all."""
        out = []
        for sub in plan.used.values():
            out += self.checks(sub)
        stats = self._stats(plan)
        for name, decl in plan.inputs.items():
            col = plan.column(name)
            t = decl.type
            k = t.kind
            if k == "events":
                out += self._events_checks(plan, name, decl)
                continue
            x = pl.col(col)
            if col in self.nulls and name not in plan.defaults and decl.missing.kind == "required":
                out.append((x.is_null(), f"{col}:missing_required"))
            if k in ("count", "number", "ratio"):
                st = stats.get(col)
                if st is None:
                    continue                    # every value is null
                dtype = self.df.schema[col]
                is_float = dtype.is_float()
                # a sum that is not finite: a NaN or an infinity (or a huge sum): check everything
                unknown = is_float and not math.isfinite(st["sum"])
                lo, hi = st.get("min"), st.get("max")
                low, high = _bounds(decl)
                if k == "count":
                    if unknown or lo < 0:
                        out.append((x < 0, f"{col}:out_of_domain"))
                else:
                    finite = x.is_between(-FINITE, FINITE)
                    if unknown:
                        out.append((~finite, f"{col}:wrong_type"))
                    conds = []
                    if low is not None and (unknown or lo < low):
                        conds.append(x < float(low))
                    if high is not None and (unknown or hi > high):
                        conds.append(x > float(high))
                    if conds:
                        cond = conds[0] if len(conds) == 1 else conds[0] | conds[1]
                        out.append((cond & finite if is_float else cond, f"{col}:out_of_domain"))
                if name in plan.guarded:
                    limit = COUNT_LIMIT if k == "count" else FLOAT_LIMIT
                    if unknown or is_float or max(abs(lo), abs(hi)) > limit:
                        out.append((~self._in_batch_range(x, k, dtype), f"{col}:out_of_batch_range"))
            elif k in ("enum", "grade"):
                members = list(t.members) if k == "enum" else list(plan.grades)
                dtype = self.df.schema[col]
                if isinstance(dtype, pl.Enum) and set(dtype.categories.to_list()) <= set(members):
                    continue                    # the column's type admits members only
                x = x.cast(pl.String) if dtype != pl.String else x
                out.append((x.is_not_null() & ~x.is_in(members), f"{col}:not_a_member"))
            elif k == "date" and self.df.schema[col] == pl.String:
                out.append((x.is_not_null() & _parse_date(x).is_null(), f"{col}:wrong_type"))
        if plan.grade_input is not None and isinstance(plan.grade_input, n.InputRef):
            name = plan.grade_input.name
            col = plan.column(name)
            if name not in plan.defaults and plan.inputs[name].missing.kind != "required" and col in self.nulls:
                # the evaluator cannot grade a record whose grade input is missing (docs/batch.md)
                out.append((pl.col(col).is_null(), f"{col}:missing_required"))
        return out

    def _stats(self, plan: BatchPlan) -> dict:
        """Per numeric column with a value, in one pass over the chunk, only what its checks
        need: for a double, its sum (finite exactly when no NaN or infinity is there, barring
        a sum that overflows, which is then checked in full); the minimum when its domain has a
        lower bound, the maximum when it has an upper bound; both for a guarded integer."""
        aggs, wanted = [], {}
        for name, decl in plan.inputs.items():
            col = plan.column(name)
            if decl.type.kind not in ("count", "number", "ratio") or col not in self.df.columns:
                continue
            if self.null_counts.get(col, 0) == self.df.height:
                continue
            x = pl.col(col)
            low, high = _bounds(decl)
            guarded_int = name in plan.guarded and not self.df.schema[col].is_float()
            need = {}
            if self.df.schema[col].is_float():
                need["sum"] = x.sum()
            if low is not None or guarded_int:
                need["min"] = x.min()
            if high is not None or guarded_int:
                need["max"] = x.max()
            wanted[col] = list(need)
            aggs += [e.alias(f"{col}:{what}") for what, e in need.items()]
        row = self.df.select(aggs).row(0) if aggs else ()
        out, k = {}, 0
        for col, whats in wanted.items():
            out[col] = dict(zip(whats, row[k:k + len(whats)]))
            k += len(whats)
        return out

    def _in_batch_range(self, x: pl.Expr, kind: str, dtype) -> pl.Expr:
        if kind == "count" or not dtype.is_float():
            return x.is_null() | (x.abs() <= (COUNT_LIMIT if kind == "count" else FLOAT_LIMIT))
        # numpy's division is correctly rounded; Polars may multiply by the reciprocal instead
        exact = x.map_batches(_six_decimals, return_dtype=pl.Boolean)
        return x.is_null() | ~x.is_between(-FINITE, FINITE) | ((x.abs() <= FLOAT_LIMIT) & exact)

    def _events_checks(self, plan: BatchPlan, name: str, decl) -> list:
        col = plan.column(name)
        if self.events_given:
            return [(pl.col(f"__bad_{col}").fill_null(False), f"{col}:wrong_type")]
        if name not in plan.defaults and decl.missing.kind == "required":
            return [(pl.lit(True), f"{col}:missing_required")]
        return []

    # ---- inputs ---------------------------------------------------------------------
    def prepared(self) -> list:
        """`__v:<col>` for each input whose value needs work: defaults applied, dates parsed."""
        out = []
        for p in [self.batch.plan] + self._all_used(self.batch.plan):
            for name, decl in p.inputs.items():
                col = p.column(name)
                if decl.type.kind == "events" or col not in self.df.columns:
                    continue
                x = pl.col(col)
                changed = False
                if decl.type.kind == "date" and self.df.schema[col] == pl.String:
                    x = _parse_date(x)
                    changed = True
                if decl.type.kind in ("enum", "grade") and self.df.schema[col] != pl.String:
                    x = x.cast(pl.String)
                    changed = True
                if name in p.defaults and col in self.nulls:
                    x = x.fill_null(_lit_value(p.defaults[name], decl))
                    changed = True
                if changed:
                    out.append(x.alias(f"__v:{col}"))
        return out

    def _all_used(self, plan: BatchPlan) -> list:
        out = []
        for sub in plan.used.values():
            out += self._all_used(sub) + [sub]
        return out

    def used_plans(self, plan: BatchPlan) -> list:
        return self._all_used(plan)

    def value(self, p: BatchPlan, name: str) -> pl.Expr:
        col = p.column(name)
        decl = p.inputs[name]
        if decl.type.kind == "date" and self.df.schema.get(col) == pl.String or \
                decl.type.kind in ("enum", "grade") and self.df.schema.get(col) != pl.String or \
                (name in p.defaults and col in self.nulls):
            return pl.col(f"__v:{col}")
        return pl.col(col)

    def nullable(self, p: BatchPlan, name: str) -> bool:
        col = p.column(name)
        if p.inputs[name].type.kind == "events":
            return not self.events_given and name not in p.defaults
        return col in self.nulls and name not in p.defaults

    def defaulted(self, p: BatchPlan, name: str) -> Optional[pl.Expr]:
        """True where the input's default was used (None when it never is in this chunk)."""
        col = p.column(name)
        if name not in p.defaults:
            return None
        if p.inputs[name].type.kind == "events":
            return None if self.events_given else pl.lit(True)
        return pl.col(col).is_null() if col in self.nulls else None

    # ---- one policy -----------------------------------------------------------------
    def policy_columns(self, p: BatchPlan) -> list:
        """Score units, base and final grade, overrides, alerts, completeness of policy `p`,
        as columns `__<prefix>units`, `__<prefix>base`, …"""
        pre = "__" + p.prefix
        ex = _Exprs(self, p)
        cols = []
        contribs, excluded, collected, always = [], [], [], 0
        for ip in p.indicators:
            c, x, k, trace = ex.indicator(ip)
            contribs.append(c)
            if x is not None:
                excluded.append(x)
            if k is None:
                always += 1                 # collected on every row of this chunk
            else:
                collected.append(k)
            if self.batch.contributions and not p.prefix:
                cols.append(trace.cast(ex.sum_type).alias(f"__contrib_{ip.index}"))
        if p.thresholds is not None:
            wide = p.wide_total
            t = ex.sum_type
            total = _balanced(contribs) if contribs else pl.lit(0, dtype=t)
            if p.scale <= p.precision:
                plain = total.cast(I128 if wide else I64) * lit_int(10 ** (p.precision - p.scale), wide)
            elif p.nonnegative:
                # a >= 0, b = 10^k even: round_half_up(a / b) = (a + b/2) // b
                b = 10 ** (p.scale - p.precision)
                plain = (total + pl.lit(b // 2, dtype=t)) // pl.lit(b, dtype=t)
            else:
                plain = half_up_div(total, 10 ** (p.scale - p.precision), wide)
            if excluded:
                excl = _balanced(excluded)
                weights = lit_int(p.weight_total) - excl
                total = total.cast(I128 if wide else I64)
                renorm = half_up_div(total * lit_int(10 ** (p.weight_scale + p.precision), wide),
                                     weights * lit_int(10 ** p.scale, wide), wide)
                units = pl.when(excl == 0).then(plain).otherwise(
                    pl.when(weights > 0).then(renorm))
                no_data = weights <= 0
            else:
                units = plain
                no_data = pl.lit(False)
            units = units.cast(I128) if wide else units.cast(I64)
            base = _grade_chain(pl.col(pre + "units"), p.thresholds, p.cutoff_grades)
        else:
            units = pl.lit(None, dtype=I64)
            no_data = pl.lit(False)
            base = ex.grade_source()
        count = pl.lit(always, dtype=pl.Int32)
        if collected:
            count = pl.sum_horizontal(collected).cast(pl.Int32) + always if always else \
                pl.sum_horizontal(collected).cast(pl.Int32)
        cols += [units.alias(pre + "units"), no_data.alias(pre + "no_data"), count.alias(pre + "collected")]
        if p.thresholds is None or not excluded:
            self.never_no_data.add(p.prefix)
        if not p.prefix:
            self.collected_const = None if collected else always
        out = [cols, [base.cast(pl.Int32).alias(pre + "base")]]
        fired = [self._lasting_fired(p, k) if getattr(o, "duration", None) is not None else
                 ex.condition(o.condition, "base").fill_null(False).alias(f"{pre}o{k}")
                 for k, o in enumerate(p.checked.policy.overrides)]
        out.append(fired)
        out.append([self._final(p, pre).alias(pre + "grade")])
        out.append([ex.condition(a.condition, "grade").fill_null(False).alias(f"{pre}a{k}")
                    for k, a in enumerate(p.checked.policy.alerts)])
        # each list depends on the one before it: chain them as successive with_columns
        return _Stages(out)

    def _lasting_fired(self, p: BatchPlan, k: int) -> pl.Expr:
        """An override that lasts holds when some candidate day set it off (its `since`, joined
        in by _Compiled.run); without events nothing sets it off."""
        fired = pl.col(f"__since{k}").is_not_null() if self.events_given else pl.lit(False)
        return fired.alias(f"__{p.prefix}o{k}")

    def _final(self, p: BatchPlan, pre: str) -> pl.Expr:
        """docs/semantics.md §4: a set grade wins (the riskiest), else raise/lower, cap, floor."""
        overrides = p.checked.policy.overrides
        idx = p.grades.index
        g = pl.col(pre + "base")
        if not overrides:
            return g
        fired = [pl.col(f"{pre}o{k}") for k in range(len(overrides))]
        moves = [(f, o.effect.steps if o.effect.kind == "raise" else -o.effect.steps)
                 for f, o in zip(fired, overrides) if o.effect.kind in ("raise", "lower")]
        if moves:
            g = g + _balanced([pl.when(f).then(s).otherwise(0) for f, s in moves])
            g = g.clip(0, len(p.grades) - 1)
        for f, o in zip(fired, overrides):
            if o.effect.kind == "at_most":
                g = pl.when(f).then(pl.min_horizontal(g, pl.lit(idx(o.effect.grade)))).otherwise(g)
        for f, o in zip(fired, overrides):
            if o.effect.kind == "at_least":
                g = pl.when(f).then(pl.max_horizontal(g, pl.lit(idx(o.effect.grade)))).otherwise(g)
        sets = sorted(((idx(o.effect.grade), f) for f, o in zip(fired, overrides) if o.effect.kind == "set"),
                      key=lambda t: -t[0])
        if sets:
            chain = pl.when(sets[0][1]).then(pl.lit(sets[0][0]))
            for gi, f in sets[1:]:
                chain = chain.when(f).then(pl.lit(gi))
            g = chain.otherwise(g)
        return g.cast(pl.Int32)

    def _conditional_measures(self, p: BatchPlan, texts: list) -> pl.Expr:
        return _conditional_measures_expr(self, p, texts)

    # ---- output ---------------------------------------------------------------------
    def output(self, p: BatchPlan) -> tuple:
        """(the result columns, [(name, mask column, item names)] for the list columns, which
        are spelled out from their bit masks after the query: see _mask_to_names)."""
        b = self.batch
        grades = p.grades
        out = [pl.col(b.id_column)]
        lists = []
        if p.thresholds is not None:
            out.append(_decimal(pl.col("__units"), p.precision, p.wide_total, 38 if p.wide_total else 18).alias("score"))
        else:
            out.append(pl.lit(None, dtype=pl.Decimal(18, p.precision)).alias("score"))
        out.append(_enum_of(pl.col("__grade"), grades).alias("grade"))
        out.append(_enum_of(pl.col("__base"), grades).alias("base_grade"))
        for name, prefix, items in (("overrides", "__o", p.checked.policy.overrides),
                                    ("alerts", "__a", p.checked.policy.alerts)):
            if not items:
                out.append(pl.lit([], dtype=pl.List(pl.String)).alias(name))
            elif len(items) <= 62:
                # one integer per row (bit k: item k fired) instead of a list per row
                mask = _balanced([pl.col(f"{prefix}{k}").cast(I64) * (1 << k) for k in range(len(items))])
                out.append(mask.alias(name))
                lists.append((name, name, [it.name for it in items]))
            else:
                out.append(_names_list([(pl.col(f"{prefix}{k}"), it.name) for k, it in enumerate(items)]).alias(name))
        for k, o in enumerate(p.checked.policy.overrides):
            if getattr(o, "duration", None) is not None:
                for what in ("since", "until"):
                    v = pl.col(f"__{what}{k}") if self.events_given else pl.lit(None, dtype=pl.Date)
                    out.append(v.alias(f"override.{o.name}.{what}"))
        total = p.total_indicators
        const = self.collected_const
        collected = pl.col("__collected") if const is None else pl.lit(const, dtype=pl.Int32)
        out.append(collected.alias("collected"))
        if not total:
            ratio = pl.lit(10_000, dtype=I64)
        elif const is not None:
            ratio = pl.lit((2 * const * 10_000 + total) // (2 * total), dtype=I64)
        else:
            # collected >= 0: round_half_up(c·10^4 / total) = (2·c·10^4 + total) // (2·total)
            ratio = (collected.cast(I64) * 20_000 + total) // (2 * total)
        out.append(_decimal(ratio, 4, False, 5).alias("completeness"))
        if p.required is not None:
            num, den = p.completeness_units()
            out.append((pl.lit(total == 0) | (collected.cast(I64) * den >= num * total))
                       .alias("completeness_met"))
        # measures: the final grade's measures as JSON text; an Enum holds each text once
        texts = [p.measures_json[g] for g in grades]
        if not p.conditional_measures:
            out.append(_enum_of(pl.col("__grade"), texts).alias("measures"))
        else:
            out.append(self._conditional_measures(p, texts).alias("measures"))
        for alias, sub in p.used.items():
            sub_pre = "__" + sub.prefix
            out.append(_enum_of(pl.col(sub_pre + "grade"), sub.grades).alias(f"{alias}.grade"))
            if sub.thresholds is not None:
                out.append(_decimal(pl.col(sub_pre + "units"), sub.precision, sub.wide_total).alias(f"{alias}.score"))
        if b.contributions:
            for ip in p.indicators:
                out.append(_decimal(pl.col(f"__contrib_{ip.index}"), p.scale, p.wide_total)
                           .alias(f"contribution.{ip.name}"))
        return out, lists


def _enum_of(index: pl.Expr, values) -> pl.Expr:
    """Index k → the k-th value, as an Enum of the distinct values (null for null). A chain of
    literals: measured faster than replace_strict for a handful of grades."""
    dtype = pl.Enum(list(dict.fromkeys(values)))
    chain = None
    for k, v in enumerate(values):
        cond = index == k
        chain = (pl.when(cond) if chain is None else chain.when(cond)).then(pl.lit(v, dtype=dtype))
    return chain


def _conditional_measures_expr(chunk, p: BatchPlan, texts: list) -> pl.Expr:
    """docs/semantics.md §9, per row: item k is in when it applies (no `when`, or its condition
    is true) and no earlier item of the same name applied; the texts are joined in order."""
    ex = _Exprs(chunk, p)
    chain = None
    for k, g in enumerate(p.grades):
        items = p.conditional_measures.get(g)
        if items is None:
            value = pl.lit(texts[k])
        else:
            applies = [pl.lit(True) if c is None else ex.condition(c, "grade").fill_null(False) for _, _, c in items]
            pieces = []
            for i, (key, js, _) in enumerate(items):
                earlier = [applies[j] for j, (kj, _, _) in enumerate(items[:i]) if kj == key]
                ok = applies[i]
                for e in earlier:
                    ok = ok & ~e
                pieces.append(pl.when(ok).then(pl.lit(js)))
            value = pl.lit("[") + pl.concat_str(pieces, separator=", ", ignore_nulls=True) + pl.lit("]")
        cond = pl.col("__grade") == k
        chain = pl.when(cond).then(value) if chain is None else chain.when(cond).then(value)
    return chain


def _six_decimals(s: pl.Series) -> pl.Series:
    """Is each double exactly a decimal with FLOAT_SCALE places (the decimal it was written as)?"""
    import numpy as np
    v = s.to_numpy()
    with np.errstate(invalid="ignore", over="ignore"):
        return pl.Series(np.round(v * 10 ** FLOAT_SCALE) / 10 ** FLOAT_SCALE == v)


class _Stages(list):
    """Lists of column expressions where each list reads the columns of the lists before it."""


def _with_stages(lf: pl.LazyFrame, stages) -> pl.LazyFrame:
    for s in stages:
        if s:
            lf = lf.with_columns(s)
    return lf


def _names_list(items) -> pl.Expr:
    if not items:
        return pl.lit([], dtype=pl.List(pl.String))
    return pl.concat_list([pl.when(f).then(pl.lit(name)) for f, name in items]).list.drop_nulls()


def _decimal(units: pl.Expr, scale: int, wide: bool, precision: int = 38) -> pl.Expr:
    """Integer units of 10^-scale → a Decimal column, exactly."""
    step = pl.lit(Decimal(1).scaleb(-scale), dtype=pl.Decimal(38, scale))
    return (units.cast(pl.Decimal(38, 0)) * step).cast(pl.Decimal(precision, scale))


def _grade_chain(units: pl.Expr, thresholds, grades) -> pl.Expr:
    if not thresholds:
        return pl.lit(grades[0])
    chain = pl.when(units < thresholds[0]).then(pl.lit(grades[0]))
    for t, g in zip(thresholds[1:], grades[1:]):
        chain = chain.when(units < t).then(pl.lit(g))
    return chain.otherwise(pl.lit(grades[len(thresholds)]))


def _balanced(terms: list) -> pl.Expr:
    """((a + b) + (c + d)): the same exact integer sum, a shallower expression tree."""
    if len(terms) == 1:
        return terms[0]
    m = len(terms) // 2
    return _balanced(terms[:m]) + _balanced(terms[m:])


def _bounds(decl) -> tuple:
    """(low, high) of a numeric input's domain (None: unbounded)."""
    t = decl.type
    return {"count": (0, None), "ratio": (0, 1)}.get(t.kind, (t.low, t.high))


def _parse_date(x: pl.Expr) -> pl.Expr:
    return pl.when(x.str.contains(r"^\d{4}-\d{2}-\d{2}$")).then(x.str.to_date("%Y-%m-%d", strict=False))


def _lit_value(v, decl) -> pl.Expr:
    k = decl.type.kind
    if k == "count":
        return pl.lit(v, dtype=I64)
    if k in ("number", "ratio"):
        return pl.lit(v, dtype=pl.Float64)
    if k == "bool":
        return pl.lit(v, dtype=pl.Boolean)
    if k == "date":
        return pl.lit(v, dtype=pl.Date)
    return pl.lit(v, dtype=pl.String)


class _Exprs:
    """Resolved expressions of policy `p` → Polars expressions (three-valued: null = unknown)."""

    def __init__(self, chunk: _Chunk, p: BatchPlan, lasting=None):
        self.c = chunk
        self.p = p
        self.lasting = lasting             # a Lasting: event counts as of its candidate day
        # contributions and their sum in the narrowest integer that holds them (and twice the
        # sum, for rounding): 32-bit columns halve the memory the sum streams through
        b = 10 ** max(0, p.scale - p.precision)
        if p.wide_total:
            self.sum_type = I128
        elif 2 * p.total_bound + b < 2 ** 31:
            self.sum_type = pl.Int32
        else:
            self.sum_type = I64

    def lit(self, v: int) -> pl.Expr:
        return pl.lit(v, dtype=self.sum_type)

    # ---- indicators -----------------------------------------------------------------
    def indicator(self, ip):
        """(contribution, excluded weight or None, collected 0/1 or None when every row of the
        chunk is collected, traced contribution)."""
        p, c = self.p, self.c
        s = ip.scoring
        miss = self.lit(ip.missing_contrib if ip.missing == "add" else 0)
        if ip.direct is not None:
            name = ip.direct
            x = c.value(p, name)
            value = self._input_value(name)
            nullable = c.nullable(p, name)
            present = x.is_not_null() if nullable else None
            d = c.defaulted(p, name)
            collected = (~d) if d is not None else present
            # a missing value is the first branch of the bin chain, not a second pass
            contrib = self._bins(ip, value, miss if nullable else None)
            scored = self._bins(ip, value) if nullable and ip.missing == "exclude" else contrib
        else:
            value = self.expr(s.operand if isinstance(s, n.Bins) else s.expr)
            present = value.expr.is_not_null()
            nullable = True
            if isinstance(s, n.Bins):
                scored = self._bins(ip, value)
            else:
                scored = self._arith_points(ip, value)
            ds = [c.defaulted(p, x) for x in ip.defaulted]
            ds = [d for d in ds if d is not None]
            collected = present
            for d in ds:
                collected = collected & ~d
            if ip.missing == "dynamic":
                # the strictest rule among the inputs missing in the row (batch_plan.by_missing)
                chain = pl.when(present).then(scored)
                for x, cx in ip.by_missing:
                    chain = chain.when(self._input_missing(x)).then(self.lit(cx))
                anymiss = pl.any_horizontal([self._input_missing(x) for x, _ in ip.by_missing]) \
                    if ip.by_missing else pl.lit(False)
                return (chain.otherwise(self.lit(0)), pl.when(present | anymiss).then(lit_int(0))
                        .otherwise(lit_int(ip.weight_units)), collected.cast(pl.Int32), chain)
            contrib = pl.when(present).then(scored).otherwise(miss)
        excluded = None
        if nullable and ip.missing == "exclude":
            excluded = pl.when(present).then(lit_int(0)).otherwise(lit_int(ip.weight_units))
        trace = contrib if not nullable or ip.missing != "exclude" else pl.when(present).then(scored)
        return contrib, excluded, None if collected is None else collected.cast(pl.Int32), trace

    def _input_missing(self, name: str) -> pl.Expr:
        """The input has no data in the row (an input without a default)."""
        p, c = self.p, self.c
        if p.inputs[name].type.kind == "events":
            return pl.lit(not c.events_given)
        return c.value(p, name).is_null()

    def _input_value(self, name: str) -> V:
        return self.expr(n.InputRef(name))

    def _bins(self, ip, v: V, missing: Optional[pl.Expr] = None) -> pl.Expr:
        """The contribution of the bin `v` falls in; `missing` (when given) where v is null.
        Numeric bins are one when/then chain over the lower bounds, highest first: Polars
        evaluates it as one pass per bound, faster here than the branch-free sum of
        `(x >= t_k) * step_k` (measured: docs/batch.md)."""
        L = self.lit
        if ip.mapping:
            if v.kind == "bool":
                ct = next(c for val, c, _ in ip.mapping if val is True)
                cf = next(c for val, c, _ in ip.mapping if val is False)
                head = pl.when(v.expr.is_null()).then(missing).when(v.expr) if missing is not None else pl.when(v.expr)
                return head.then(L(ct)).otherwise(L(cf))
            if v.kind == "grade":
                m = {v.grades.index(val): c for val, c, _ in ip.mapping}
            else:
                m = {val: c for val, c, _ in ip.mapping}
            mapped = v.expr.replace_strict(m, default=None, return_dtype=self.sum_type)
            return mapped if missing is None else pl.when(v.expr.is_null()).then(missing).otherwise(mapped)
        # numeric: the bin is the highest interval whose lower bound the value reaches
        conds = [self._at_least(v, lo, closed) for lo, closed in ip.lows]
        chain = pl.when(v.expr.is_null()).then(missing) if missing is not None else None
        for k in range(len(conds) - 1, -1, -1):
            chain = (pl.when(conds[k]) if chain is None else chain.when(conds[k])).then(L(ip.contribs[k + 1]))
        return L(ip.contribs[0]) if chain is None else chain.otherwise(L(ip.contribs[0]))

    def _at_least(self, v: V, low: Decimal, closed: bool) -> pl.Expr:
        if v.kind == "float":
            return v.expr >= float(low) if closed else v.expr > float(low)
        # integer units u at scale s: u/10^s >= L  ⟺  u >= ceil(L·10^s);  > L  ⟺  u > floor(L·10^s)
        t = low.scaleb(v.scale)
        if closed:
            return v.expr >= int(t.to_integral_value(rounding="ROUND_CEILING"))
        return v.expr > int(t.to_integral_value(rounding="ROUND_FLOOR"))

    def _arith_points(self, ip, v: V) -> pl.Expr:
        """`points = expr`: round half-up to the policy's precision, times the weight."""
        p = self.p
        wide = v.num.wide or p.wide_total
        if v.scale > p.precision:
            pts = half_up_div(v.expr, 10 ** (v.scale - p.precision), wide)
        else:
            pts = rescale(v, p.precision, wide)
        factor = ip.weight_units * 10 ** (p.scale - p.weight_scale - p.precision)
        out = pts * lit_int(factor, wide)
        # exact within the bound the sum type was chosen for; a row outside it is rejected
        return out.cast(self.sum_type, strict=False)

    def grade_source(self) -> pl.Expr:
        ref = self.p.grade_input
        if isinstance(ref, n.Symbol):
            return pl.lit(self.p.grades.index(ref.name))    # a fixed base grade (§11)
        return self.expr(ref).expr

    # ---- expressions ----------------------------------------------------------------
    def condition(self, e, grade: str) -> pl.Expr:
        self._grade = grade
        return self.expr(e).expr

    def expr(self, e) -> V:
        return getattr(self, "e_" + type(e).__name__)(e)

    def e_InputRef(self, e) -> V:
        p, c = self.p, self.c
        decl = p.inputs[e.name]
        k = decl.type.kind
        if k == "events":
            raise Unsupported("an events input outside `count(…)`", e.span)
        x = c.value(p, e.name)
        if k == "count":
            return V("int", x.cast(I64), 0, Num("int", 0, COUNT_LIMIT))
        if k in ("number", "ratio"):
            if e.name in p.guarded:
                dtype = c.df.schema.get(p.column(e.name))
                num = p.num(e)
                if dtype is not None and dtype.is_float():
                    return V("int", (x * 10 ** FLOAT_SCALE).round(0).cast(I64, strict=False), FLOAT_SCALE, num)
                return V("int", x.cast(I64) * 10 ** FLOAT_SCALE, FLOAT_SCALE, num)
            return V("float", x)
        if k == "bool":
            return V("bool", x)
        if k == "enum":
            return V("str", x)
        if k == "grade":
            return V("grade", x.replace_strict({g: i for i, g in enumerate(p.grades)}, default=None,
                                               return_dtype=pl.Int32), grades=p.grades)
        if k == "date":
            return V("date", x)
        raise Unsupported(f"an input of type {k}", e.span)

    def e_Number(self, e) -> V:
        num = self.p.num(e)
        return V("int", lit_int(int(e.value.scaleb(num.scale))), num.scale, num, literal=e.value)

    e_Percent = e_Number

    def e_BoolLit(self, e) -> V:
        return V("bool", pl.lit(e.value))

    def e_DateLit(self, e) -> V:
        return V("date", pl.lit(e.value, dtype=pl.Date))

    def e_Symbol(self, e) -> V:
        return V("symbol", pl.lit(e.name), name=e.name)

    def e_Str(self, e) -> V:
        return V("str", pl.lit(e.value))

    def e_GradeRef(self, e) -> V:
        col = "__" + self.p.prefix + ("base" if self._grade == "base" else "grade")
        return V("grade", pl.col(col), grades=self.p.grades)

    def e_ScoreRef(self, e) -> V:
        p = self.p
        return V("int", pl.col("__" + p.prefix + "units"), p.precision, p.num(e))

    def e_UsedRef(self, e) -> V:
        sub = self.p.used[e.alias]
        pre = "__" + sub.prefix
        if e.field == "grade":
            return V("grade", pl.col(pre + "grade"), grades=sub.grades)
        if sub.thresholds is None:
            return V("int", pl.lit(None, dtype=I64), sub.precision, self.p.num(e))
        return V("int", pl.col(pre + "units"), sub.precision, self.p.num(e))

    def e_CountEvents(self, e) -> V:
        p, c = self.p, self.c
        name = e.events.name
        num = p.num(e)
        if self.lasting is not None:
            j = self.lasting.window_index(p.column(name), e.window)
            return V("int", pl.col(f"__lw{self.lasting.override}_{j}"), 0, num)
        w = p.window(name, e.window)
        if c.events_given:
            return V("int", pl.col(f"__w{w.index}_{w.input}").fill_null(0), 0, num)
        if name in p.defaults:
            k = sum(1 for d in p.defaults[name] if w.start < d <= w.end)
            return V("int", lit_int(k), 0, num)
        return V("int", pl.lit(None, dtype=I64), 0, num)

    def e_Call(self, e) -> V:
        if e.function in ("min", "max"):
            num = self.p.num(e)
            vals = [self._as_int(self.expr(a)) for a in e.args]
            s = num.scale
            es = [rescale(v, s, num.wide) for v in vals]
            f = pl.min_horizontal if e.function == "min" else pl.max_horizontal
            anynull = pl.any_horizontal([x.is_null() for x in es])
            return V("int", pl.when(~anynull).then(f(es)), s, num)
        d = self.expr(e.args[0]).expr
        as_of = self.p.as_of
        num = self.p.num(e)
        if e.function == "days_since":
            return V("int", (pl.lit(as_of, dtype=pl.Date) - d).dt.total_days().cast(I64), 0, num)
        months = (as_of.year - d.dt.year().cast(I64)) * 12 + (as_of.month - d.dt.month().cast(I64))
        dim = calendar.monthrange(as_of.year, as_of.month)[1]
        # add_months(d, m) lands in as_of's month on day min(d.day, dim); it is after as_of
        # exactly when d.day > as_of.day and as_of.day < dim
        if as_of.day < dim:
            months = months - (d.dt.day() > as_of.day).cast(I64)
        if e.function == "years_since":
            months = months // 12
        return V("int", months, 0, num)

    def e_Neg(self, e) -> V:
        v = self._as_int(self.expr(e.operand))
        return V("int", pl.lit(0, dtype=I128 if v.num and v.num.wide else I64) - v.expr, v.scale, self.p.num(e))

    def e_Arith(self, e) -> V:
        num = self.p.num(e)
        a, b = self._as_int(self.expr(e.left)), self._as_int(self.expr(e.right))
        w = num.wide
        if e.op == "*":
            ea, eb = (a.expr.cast(I128), b.expr.cast(I128)) if w else (a.expr, b.expr)
            return V("int", ea * eb, a.scale + b.scale, num)
        s = num.scale
        ea, eb = rescale(a, s, w), rescale(b, s, w)
        return V("int", ea + eb if e.op == "+" else ea - eb, s, num)

    def _as_int(self, v: V) -> V:
        if v.kind == "int":
            return v
        if v.kind == "float":
            return V("int", (v.expr * 10 ** FLOAT_SCALE).round(0).cast(I64, strict=False), FLOAT_SCALE, as_int(Num("float")))
        raise Unsupported(f"arithmetic on a {v.kind}")

    # ---- conditions -----------------------------------------------------------------
    def e_And(self, e) -> V:
        items = [self.expr(x).expr for x in e.items]
        out = items[0]
        for x in items[1:]:
            out = out & x
        return V("bool", out)

    def e_Or(self, e) -> V:
        items = [self.expr(x).expr for x in e.items]
        out = items[0]
        for x in items[1:]:
            out = out | x
        return V("bool", out)

    def e_Not(self, e) -> V:
        return V("bool", ~self.expr(e.operand).expr)

    def e_IsMissing(self, e) -> V:
        op = e.operand
        if isinstance(op, n.UsedRef):
            return V("bool", pl.lit(e.negated))      # a used policy's inputs are always given
        p, c = self.p, self.c
        decl = p.inputs[op.name]
        if decl.type.kind == "events":
            missing = pl.lit(not c.events_given and op.name not in p.defaults)
        else:
            missing = c.value(p, op.name).is_null()
        return V("bool", ~missing if e.negated else missing)

    def e_Compare(self, e) -> V:
        a, b = self.expr(e.left), self.expr(e.right)
        return V("bool", self._compare(e.op, a, b, e))

    def e_Member(self, e) -> V:
        a = self.expr(e.operand)
        out = None
        for v in e.values:
            x = self._compare("=", a, self.expr(v), e)
            out = x if out is None else out | x
        return V("bool", out)

    def _compare(self, op: str, a: V, b: V, e) -> pl.Expr:
        if (a.kind == "symbol" and b.kind != "symbol") or (a.literal is not None and b.literal is None):
            a, b = b, a
            op = _FLIP.get(op, op)
        if a.kind == "grade":
            if b.kind == "symbol":
                b = V("grade", pl.lit(a.grades.index(b.name)), grades=a.grades)
            return _OPS[op](a.expr, b.expr)
        if a.kind in ("str", "bool", "date", "symbol"):
            return _OPS[op](a.expr, b.expr)
        if a.kind == "float":
            if b.kind == "float":
                return _OPS[op](a.expr, b.expr)
            if b.literal is not None:
                # a double input against a literal: the double of the literal (docs/semantics.md §1)
                return _OPS[op](a.expr, pl.lit(float(b.literal)))
            raise Unsupported("comparing a number input with a computed value", e.span)
        if b.literal is not None:
            return _compare_int_literal(op, a, b.literal)
        s, wide = common_scale(a.num, b.num, e)
        return _OPS[op](rescale(a, s, wide), rescale(b, s, wide))


def _compare_int_literal(op: str, a: V, value: Decimal) -> pl.Expr:
    """An integer value (units of 10^-scale) against a decimal literal, with no rescaling of
    the column (so no overflow): u > t ⟺ u > floor(t), u < t ⟺ u < ceil(t) for whole u."""
    t = value.scaleb(a.scale)
    x = a.expr
    if t == t.to_integral_value():
        return _OPS[op](x, lit_int(int(t), a.num is not None and a.num.wide))
    lo = int(t.to_integral_value(rounding="ROUND_FLOOR"))
    if op in (">", ">="):
        return x > lo
    if op in ("<", "<="):
        return x < lo + 1
    return (x != x) if op == "=" else (x == x)      # never equal: false, or unknown when missing


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


_OPS = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}
