"""Checked policy → a per-record evaluator.

The indicator arithmetic — the hot loop of every evaluation — is generated as one Python
function from the checked AST, built with the `ast` module's node constructors: input names
and literals enter it only as `ast.Constant` values and every variable name is generated
(`v3`, `b7`), so no policy text is ever parsed as Python. Conditions (overrides, alerts) run as
closures (engine/expressions.py). The generated source can be inspected: `Evaluator.source`.

Semantics: docs/semantics.md. Scores are integers in 10^-scale units until the end.
"""
from __future__ import annotations

import ast
import bisect
import datetime as dt
import math
from decimal import Decimal

from . import nodes as n
from .checker.context import CheckedPolicy, IndicatorSpec
from .expressions import MISSING, Env, compile_expr, to_decimal
from .result import Result, measure_json as _measure_json
from .semantics import (score_scales, last_day_held, renormalised_score, round_half_up, scaled,
                        score_from_total, shift)
from .validate import InputError, parse_date, parse_events, problem, problems

_STRICTNESS = {"required": 3, "worst": 2, "points": 1, "exclude": 0, "default": -1}


def compile_policy(checked: CheckedPolicy, resolve_used=None) -> "Evaluator":
    return Evaluator(checked, resolve_used)


class _Values:
    """Inputs as expressions see them: defaults applied, dates and events parsed (lazily)."""
    __slots__ = ("rec", "ev")

    def __init__(self, rec, ev):
        self.rec = rec
        self.ev = ev

    def get(self, name, fallback=MISSING):
        v = self.rec.get(name)
        ev = self.ev
        if v is None:
            return ev._defaults.get(name, fallback)
        parse = ev._parsers.get(name)
        return parse(v) if parse is not None else v


class Evaluator:
    def __init__(self, checked: CheckedPolicy, resolve_used=None):
        self.checked = checked
        self.policy = checked.policy
        self.grades = checked.grades
        self.precision = checked.precision
        self._resolve_used = resolve_used
        self._used_evaluators = {alias: Evaluator(c) for alias, c in checked.used.items()}
        used_grades = {alias: c.grades for alias, c in checked.used.items()}
        inputs = checked.inputs

        self._defaults = {name: default_value(i) for name, i in inputs.items() if i.default is not None
                          and not isinstance(i.default, n.MissingLit)}
        self._parsers = {name: (parse_date if i.type.kind == "date" else parse_events)
                         for name, i in inputs.items() if i.type.kind in ("date", "events")}
        self._known = frozenset(inputs) | frozenset(u.alias for u in self.policy.uses)

        # --- scales: every contribution is an integer count of 10^-scale units ---------
        specs = checked.indicators
        self.weight_scale, self.scale = score_scales(specs, inputs, self.precision)
        self.weight_total = sum(scaled(s.weight, self.weight_scale) for s in specs)

        # --- grading ---------------------------------------------------------------------
        g = self.policy.grading
        if isinstance(g, n.GradeByScore):
            self._thresholds = [math.ceil(c.below.scaleb(self.precision)) for c in g.cutoffs if c.below is not None]
            self._cutoff_grades = [self.grades.index(c.grade) for c in g.cutoffs]
            self._grade_input = None
        else:
            self._thresholds = None
            self._grade_input = g.ref

        self._overrides = [(o, compile_expr(o.condition, self.grades, used_grades, inputs))
                           for o in self.policy.overrides]
        # overrides that last (`-> G for 1 quarter`, docs/semantics.md §10): the day that set them off
        self._lasting = {o.name: _lasting_trigger(o, cond) for o, cond in self._overrides if o.duration is not None}
        self._alerts = [(a, compile_expr(a.condition, self.grades, used_grades, inputs))
                        for a in self.policy.alerts]
        self._measures = {gr: tuple(_measure_json(checked, it) for it in items)
                          for gr, items in checked.measures_by_grade.items()}
        # grades with `when` items choose their measures per record (docs/semantics.md
        # §Conditional measures); the others return the precomputed tuple
        self._conditional_measures = {
            gr: tuple((_measure_key(it), js, None if it.condition is None else
                       compile_expr(it.condition, self.grades, used_grades, inputs))
                      for it, js in zip(items, self._measures[gr]))
            for gr, items in checked.measures_by_grade.items() if any(it.condition is not None for it in items)}
        self._required = next((r.minimum for r in self.policy.requires if r.kind == "completeness"), None)

        self._missing_helpers: dict = {}
        module, namespace = _generate(self, specs, inputs)
        self.source = ast.unparse(module)
        code = compile(module, f"<riskrules {checked.id} {checked.version}>", "exec")
        exec(code, namespace)  # generated from the checked AST by node constructors, not from text
        self._run = namespace["run"]
        self._run_traced = namespace["run_traced"]

    # ---- evaluation ----------------------------------------------------------------------
    def evaluate(self, record: dict, as_of: dt.date | None = None, explain: bool = False) -> Result:
        if as_of is None:
            as_of = dt.date.today()
        if type(record) is not dict:
            raise InputError([problem((), "wrong_type", "expected an object with the enterprise's inputs")])
        used = self._evaluate_used(record, as_of) if self._used_evaluators else {}
        env = Env(_Values(record, self), as_of, used)
        out = (self._run_traced if explain else self._run)(record, env)
        if out is None:
            raise InputError(problems(self.checked, record) or
                             [problem((), "invalid", "the record does not fit the policy's inputs")])
        total, excluded, collected, trace = out
        score = None
        if self._thresholds is not None:
            weights = self.weight_total - excluded
            if weights <= 0:
                raise InputError([problem((), "no_data", "every indicator's input is missing: no score can be "
                                          "computed")])
            if excluded:
                units = renormalised_score(total, self.scale, weights, self.weight_scale, self.precision)
            else:
                units = score_from_total(total, self.scale, self.precision)
            score = Decimal(units).scaleb(-self.precision)
            base = self._cutoff_grades[bisect.bisect_right(self._thresholds, units)]
        else:
            base = self._base_from_input(env)
        env.score = score
        env.grade = base
        periods = None
        if self._lasting:
            fired, periods = self._fire_lasting(env)
        else:
            fired = tuple(o for o, cond in self._overrides if cond(env) is True) if self._overrides else ()
        final = self._apply_overrides(base, fired) if fired else base
        env.grade = final
        alerts = tuple(a for a, cond in self._alerts if cond(env) is True) if self._alerts else ()
        grade = self.grades[final]
        measures = self._measures[grade] if grade not in self._conditional_measures else \
            _choose_measures(self._conditional_measures[grade], env)
        return Result(self, as_of, score, self.grades[base], grade, fired, alerts, measures,
                      collected, len(self.checked.indicators), used, record if explain else None, trace,
                      periods)

    def _fire_lasting(self, env: Env):
        fired, periods = [], {}
        for o, cond in self._overrides:
            trigger = self._lasting.get(o.name)
            if trigger is None:
                if cond(env) is True:
                    fired.append(o)
                continue
            since = trigger(env)
            if since is not None:
                fired.append(o)
                periods[o.name] = (since, last_day_held(since, o.duration.n, o.duration.unit))
        return tuple(fired), periods

    def _base_from_input(self, env: Env) -> int:
        ref = self._grade_input
        if isinstance(ref, n.Symbol):
            return self.grades.index(ref.name)       # a fixed base grade (docs/semantics.md §11)
        if isinstance(ref, n.UsedRef):
            return self.grades.index(env.used[ref.alias].grade)
        value = env.values.get(ref.name)
        if value is MISSING:
            raise InputError([problem((ref.name,), "missing_required",
                                      f"`{ref.name}` decides the grade: it cannot be missing")])
        return self.grades.index(value)

    def _apply_overrides(self, base: int, fired) -> int:
        """Precedence (docs/semantics.md §Overrides): a set grade wins (the riskiest if several);
        otherwise raise/lower move the base grade, then `at most` caps it, then `at least` floors it."""
        idx = self.grades.index
        sets = [idx(o.effect.grade) for o in fired if o.effect.kind == "set"]
        if sets:
            return max(sets)
        g = base
        g += sum(o.effect.steps for o in fired if o.effect.kind == "raise")
        g -= sum(o.effect.steps for o in fired if o.effect.kind == "lower")
        g = min(max(g, 0), len(self.grades) - 1)
        caps = [idx(o.effect.grade) for o in fired if o.effect.kind == "at_most"]
        if caps:
            g = min(g, min(caps))
        floors = [idx(o.effect.grade) for o in fired if o.effect.kind == "at_least"]
        if floors:
            g = max(g, max(floors))
        return g

    def _evaluate_used(self, record: dict, as_of: dt.date) -> dict:
        out = {}
        errors = []
        for alias, ev in self._used_evaluators.items():
            if self._resolve_used is not None:
                ev = self._resolve_used(ev.checked.id, as_of) or ev
            sub = record.get(alias)
            if type(sub) is not dict:
                # absent, null or not an object: the used policy cannot be evaluated, so the
                # record is refused (the validator names the problem at the alias)
                errors.append(None)
                continue
            try:
                out[alias] = ev.evaluate(sub, as_of)
            except InputError as exc:
                errors += [dict(p, loc=[alias] + p["loc"]) for p in exc.problems]
        if errors:
            nested = [e for e in errors if e is not None]
            own = [p for p in problems(self.checked, record)
                   if not (p["loc"][:1] in [[a] for a in self._used_evaluators] and len(p["loc"]) > 1)]
            raise InputError(own + nested)
        return out

    def completeness_met(self, collected: int, total: int):
        if self._required is None:
            return None
        return total == 0 or Decimal(collected) >= self._required * total


def _lasting_trigger(o: n.Override, cond):
    """`f(env)` → the latest day in the last <duration> (as of env.as_of) on which an event the
    condition counts occurred and the condition, evaluated as of that day, was true; or None."""
    names = sorted(_counted_events(o.condition))
    length, unit = o.duration.n, o.duration.unit

    def trigger(env: Env):
        end = env.as_of
        start = shift(end, length, unit)
        days = set()
        for name in names:
            events = env.values.get(name, MISSING)
            if events is MISSING:
                continue
            days.update(events[bisect.bisect_right(events, start):bisect.bisect_right(events, end)])
        for day in sorted(days, reverse=True):
            then = Env(env.values, day, env.used)
            if cond(then) is True:
                return day
        return None
    return trigger


def _counted_events(e) -> set:
    return {x.events.name for x in n.walk(e) if isinstance(x, n.CountEvents)}


def _measure_key(item) -> tuple:
    return ("measure", item.measure) if isinstance(item, n.MeasureValue) else ("action", item.name)


def _choose_measures(entries, env) -> tuple:
    """The items whose `when` is true (or absent), in the order written; the first item of each
    measure or action wins."""
    seen = set()
    out = []
    for key, js, cond in entries:
        if key in seen:
            continue
        if cond is None or cond(env) is True:
            seen.add(key)
            out.append(js)
    return tuple(out)


# ---- code generation ---------------------------------------------------------------------

def default_value(i: n.Input):
    """An input's default as the evaluator (and every batch backend) holds it."""
    d = i.default
    if isinstance(d, n.Number):
        v = d.value
        return int(v) if i.type.kind == "count" else float(v)
    if isinstance(d, n.Percent):
        return float(d.value)
    if isinstance(d, n.BoolLit):
        return d.value
    if isinstance(d, n.Symbol):
        return d.name
    if isinstance(d, n.DateLit):
        return d.value
    if isinstance(d, n.DateList):
        return tuple(sorted(d.dates))
    return None


def _num_const(d: Decimal):
    """A threshold as the Python number JSON inputs are compared with (exact: see semantics)."""
    return int(d) if d == d.to_integral_value() else float(d)


def _name(id_: str, ctx=None) -> ast.Name:
    return ast.Name(id=id_, ctx=ctx or ast.Load())


def _store(id_: str) -> ast.Name:
    return ast.Name(id=id_, ctx=ast.Store())


def _const(v) -> ast.Constant:
    assert v is None or type(v) in (int, float, str, bool), type(v)
    return ast.Constant(value=v)


def _assign(target: str, value) -> ast.Assign:
    return ast.Assign(targets=[_store(target)], value=value)


def _aug(target: str, value) -> ast.AugAssign:
    return ast.AugAssign(target=_store(target), op=ast.Add(), value=value)


def _is(left, right, negate=False):
    return ast.Compare(left=left, ops=[ast.IsNot() if negate else ast.Is()], comparators=[right])


def _call(fn: str, *args):
    return ast.Call(func=_name(fn), args=list(args), keywords=[])


def _type_check(var: str, t: n.Type, helpers: dict, key: str):
    """An expression that is true when `var` (not None) is a valid value of `t`."""
    v = _name(var)
    k = t.kind
    type_of = ast.Attribute(value=v, attr="__class__", ctx=ast.Load())
    is_int = _is(type_of, _name("int"))
    is_float = _is(type_of, _name("float"))
    if k == "count":
        return ast.BoolOp(op=ast.And(), values=[is_int, ast.Compare(left=v, ops=[ast.GtE()], comparators=[_const(0)])])
    if k in ("number", "ratio"):
        lo = float(t.low) if (k == "number" and t.low is not None) else (0.0 if k == "ratio" else -math.inf)
        hi = float(t.high) if (k == "number" and t.high is not None) else (1.0 if k == "ratio" else math.inf)
        lo_op = ast.LtE() if (k == "ratio" or t.low is not None) else ast.Lt()
        hi_op = ast.LtE() if (k == "ratio" or t.high is not None) else ast.Lt()
        helpers["INF"] = math.inf
        bound = lambda x: _name("INF") if x == math.inf else (  # noqa: E731
            ast.UnaryOp(op=ast.USub(), operand=_name("INF")) if x == -math.inf else _const(x))
        rng = ast.Compare(left=bound(lo), ops=[lo_op, hi_op], comparators=[v, bound(hi)])
        return ast.BoolOp(op=ast.And(), values=[ast.BoolOp(op=ast.Or(), values=[is_int, is_float]), rng])
    if k == "bool":
        return ast.BoolOp(op=ast.Or(), values=[_is(v, _const(True)), _is(v, _const(False))])
    if k in ("enum", "grade"):
        members_name = f"MEMBERS_{len(helpers)}"
        helpers[members_name] = frozenset(t.members) if k == "enum" else frozenset(helpers["GRADES"])
        return ast.BoolOp(op=ast.And(), values=[_is(type_of, _name("str")),
                                                ast.Compare(left=v, ops=[ast.In()], comparators=[_name(members_name)])])
    check_name = f"CHECK_{len(helpers)}"
    helpers[check_name] = (lambda x: parse_date(x) is not None) if k == "date" else \
        (lambda x: parse_events(x) is not None)
    return _call(check_name, v)


def _generate(ev: Evaluator, specs: tuple, inputs: dict):
    """Build `run(rec, env)` and `run_traced(rec, env)` as one Python module AST.

    Both return (total, excluded_weight, collected, trace) or None when the record is invalid
    (the caller then asks engine/validate.py to name every problem). An input read by exactly
    one indicator that bins it directly is *fused*: fetched, type-checked and binned in one
    branch chain. Other inputs are validated first, then their indicators run."""
    helpers: dict = {"GRADES": ev.grades, "KNOWN": ev._known, "KEYS": dict.keys}
    var_of = {name: f"v{k}" for k, name in enumerate(inputs)}
    readers: dict = {}
    for i, spec in enumerate(specs):
        for name in spec.inputs:
            readers.setdefault(name, []).append(i)
    fused = {}
    for i, spec in enumerate(specs):
        s = spec.indicator.scoring
        if isinstance(s, n.Bins) and isinstance(s.operand, n.InputRef) and readers.get(s.operand.name) == [i] \
                and spec.table is not None:
            fused[s.operand.name] = i
    funcs = []
    for traced in (False, True):
        body = [
            _assign("get", ast.Attribute(value=_name("rec"), attr="get", ctx=ast.Load())),
            # any field the policy does not declare: let the validator name it
            ast.If(test=ast.UnaryOp(op=ast.Not(), operand=ast.Compare(
                left=_call("KEYS", _name("rec")), ops=[ast.LtE()], comparators=[_name("KNOWN")])),
                body=[ast.Return(value=_const(None))], orelse=[]),
            _assign("bad", _const(False)),
            _assign("total", _const(0)),
            _assign("excluded", _const(0)),
            _assign("absent", _const(0)),
        ]
        for name, decl in inputs.items():
            if name not in fused:
                body += _validate_code(ev, name, decl, var_of[name], helpers)
        body.append(ast.If(test=_name("bad"), body=[ast.Return(value=_const(None))], orelse=[]))
        for i, spec in enumerate(specs):
            s = spec.indicator.scoring
            if isinstance(s, n.Bins) and isinstance(s.operand, n.InputRef) and fused.get(s.operand.name) == i:
                name = s.operand.name
                body += _fused_code(ev, i, spec, name, inputs[name], var_of[name], helpers, traced)
            else:
                body += _indicator_code(ev, i, spec, inputs, var_of, helpers, traced)
        body.append(ast.If(test=_name("bad"), body=[ast.Return(value=_const(None))], orelse=[]))
        collected = ast.BinOp(left=_const(len(specs)), op=ast.Sub(), right=_name("absent"))
        trace = ast.Tuple(elts=[_name(f"b{i}") for i in range(len(specs))], ctx=ast.Load()) if traced \
            else _const(None)
        body.append(ast.Return(value=ast.Tuple(elts=[_name("total"), _name("excluded"), collected, trace],
                                               ctx=ast.Load())))
        funcs.append(ast.FunctionDef(
            name="run_traced" if traced else "run",
            args=ast.arguments(posonlyargs=[], args=[ast.arg(arg="rec"), ast.arg(arg="env")], vararg=None,
                               kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[]),
            body=body, decorator_list=[], returns=None, type_params=[]))
    module = ast.Module(body=funcs, type_ignores=[])
    ast.fix_missing_locations(module)
    namespace = {"__builtins__": {"int": int, "float": float, "str": str}}
    namespace.update(helpers)
    namespace.update(ev._missing_helpers)
    return module, namespace


def _validate_code(ev, name, decl, var, helpers) -> list:
    """Fetch an input that is not fused and check it; defaults fill in for no data."""
    stmts = [_assign(var, _call("get", _const(name)))]
    if name in ev._defaults:
        dname = f"DEFAULT_{len(helpers)}"
        helpers[dname] = ev._defaults[name]
        stmts.append(_assign(f"d_{var}", _const(False)))
        absent = [_assign(var, _name(dname)), _assign(f"d_{var}", _const(True))]
    elif decl.missing.kind == "required":
        absent = [_assign("bad", _const(True))]
    else:
        absent = [ast.Pass()]
    check = _type_check(var, decl.type, helpers, name)
    invalid = ast.If(test=ast.UnaryOp(op=ast.Not(), operand=check), body=[_assign("bad", _const(True))], orelse=[])
    stmts.append(ast.If(test=_is(_name(var), _const(None)), body=absent, orelse=[invalid]))
    return stmts


def missing_rule(checked, spec, record=None) -> n.Missing:
    """The rule an indicator applies when its value is missing: the strictest among the inputs
    it reads that have no data in `record` (docs/semantics.md §1); with no record, among all of
    them. An indicator whose value is unknown though every input is present is left out."""
    names = [x for x in spec.inputs if x in checked.inputs]
    if record is not None:
        names = [x for x in names if record.get(x) is None and checked.inputs[x].default is None]
    rules = [checked.inputs[x].missing for x in names]
    return max(rules, key=lambda m: _STRICTNESS[m.kind]) if rules else n.Missing("exclude")


def _missing_code(ev, spec, inputs, traced, tvar, direct: bool) -> list:
    """What an indicator adds when its value is missing: its input's missing rule."""
    weight_units = scaled(spec.weight, ev.weight_scale)
    rules = {inputs[x].missing.kind for x in spec.inputs if x in inputs}
    if not direct and len(spec.inputs) > 1 and len(rules) > 1:
        return _missing_at_run_time(ev, spec, traced, tvar)
    rule = missing_rule(ev.checked, spec)
    if rule.kind == "worst":
        out = [_aug("total", _const(scaled(spec.weight * spec.max_points, ev.scale)))]
    elif rule.kind == "points":
        out = [_aug("total", _const(scaled(spec.weight * rule.points, ev.scale)))]
    elif rule.kind == "required" and direct:
        out = [_assign("bad", _const(True))]
    else:
        # exclude; or a used policy / event count / expression whose value is unknown
        out = [_aug("excluded", _const(weight_units))]
    out.append(_aug("absent", _const(1)))
    if traced:
        out.append(_assign(tvar, _const(None)))
    return out


def _missing_at_run_time(ev, spec, traced, tvar) -> list:
    """An indicator reading inputs with different missing rules: which rule applies depends on
    which of them are missing in this record, so a helper decides."""
    weight_units = scaled(spec.weight, ev.weight_scale)
    worst = scaled(spec.weight * spec.max_points, ev.scale)
    checked = ev.checked

    def decide(rec, _spec=spec):
        rule = missing_rule(checked, _spec, rec)
        if rule.kind == "worst":
            return 0, worst
        if rule.kind == "points":
            return 0, scaled(_spec.weight * rule.points, ev.scale)
        return 1, weight_units      # exclude (a required input missing was refused earlier)
    fname = f"MISSRULE_{len(ev._missing_helpers)}"
    ev._missing_helpers[fname] = decide
    kind, units = f"mk_{tvar}", f"mu_{tvar}"
    out = [ast.Assign(targets=[ast.Tuple(elts=[_store(kind), _store(units)], ctx=ast.Store())],
                      value=_call(fname, _name("rec"))),
           ast.If(test=ast.Compare(left=_name(kind), ops=[ast.Eq()], comparators=[_const(0)]),
                  body=[_aug("total", _name(units))], orelse=[_aug("excluded", _name(units))]),
           _aug("absent", _const(1))]
    if traced:
        out.append(_assign(tvar, _const(None)))
    return out


def _fused_code(ev, i, spec, name, decl, var, helpers, traced) -> list:
    tvar = f"b{i}"
    stmts = [_assign(var, _call("get", _const(name)))]
    table = spec.table
    contrib = lambda p: scaled(spec.weight * p, ev.scale)  # noqa: E731
    if name in ev._defaults:
        # a default is a constant: its bin is known now; it scores, but is not collected
        dv = ev._defaults[name]
        k, points = _bin_of(table, dv)
        on_none = [_aug("total", _const(contrib(points))), _aug("absent", _const(1))]
        if traced:
            on_none.append(_assign(tvar, _const(k)))
    else:
        on_none = _missing_code(ev, spec, ev.checked.inputs, traced, tvar, direct=True)
    bad = [_assign("bad", _const(True))]
    if traced:
        bad.append(_assign(tvar, _const(None)))
    if table.kind == "categorical":
        cname, sname = f"MAP_{i}", f"SRC_{i}"
        helpers[cname] = {v: contrib(p) for v, p, _ in table.mapping}
        helpers[sname] = {v: src for v, _, src in table.mapping}
        if decl.type.kind == "bool":
            t_true = [_aug("total", _const(helpers[cname][True]))]
            t_false = [_aug("total", _const(helpers[cname][False]))]
            if traced:
                t_true.append(_assign(tvar, _const(helpers[sname][True])))
                t_false.append(_assign(tvar, _const(helpers[sname][False])))
            stmts.append(ast.If(test=_is(_name(var), _const(True)), body=t_true, orelse=[
                ast.If(test=_is(_name(var), _const(False)), body=t_false, orelse=[
                    ast.If(test=_is(_name(var), _const(None)), body=on_none, orelse=bad)])]))
            return stmts
        got = [_assign(f"c{i}", ast.Call(func=ast.Attribute(value=_name(cname), attr="get", ctx=ast.Load()),
                                         args=[_name(var)], keywords=[]))]
        hit = [_aug("total", _name(f"c{i}"))]
        if traced:
            hit.append(_assign(tvar, ast.Subscript(value=_name(sname), slice=_name(var), ctx=ast.Load())))
        got.append(ast.If(test=_is(_name(f"c{i}"), _const(None)), body=bad, orelse=hit))
        is_str = _is(ast.Attribute(value=_name(var), attr="__class__", ctx=ast.Load()), _name("str"))
        stmts.append(ast.If(test=is_str, body=got, orelse=[
            ast.If(test=_is(_name(var), _const(None)), body=on_none, orelse=bad)]))
        return stmts
    # numeric: the type-and-domain test, then the bins from the top interval down
    check = _type_check(var, decl.type, helpers, name)
    chain = _numeric_chain(ev, i, spec, _name(var), False, contrib, helpers, traced, tvar)
    stmts.append(ast.If(test=check, body=chain, orelse=[
        ast.If(test=_is(_name(var), _const(None)), body=on_none, orelse=bad)]))
    return stmts


def _bin_of(table, value):
    """The (source bin, points) a constant value falls in."""
    if table.kind == "categorical":
        for v, p, src in table.mapping:
            if v == value and type(v) is type(value):
                return src, p
        raise ValueError(value)
    d = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    for iv, p, src in zip(table.intervals, table.points, table.source):
        lo_ok = iv.low is None or (d >= iv.low if iv.low_closed else d > iv.low)
        hi_ok = iv.high is None or (d <= iv.high if iv.high_closed else d < iv.high)
        if lo_ok and hi_ok:
            return src, p
    raise ValueError(value)


def _indicator_code(ev: Evaluator, i: int, spec: IndicatorSpec, inputs, var_of, helpers, traced) -> list:
    """An indicator whose inputs were validated already: add its contribution to `total`
    (or its weight to `excluded`)."""
    tvar = f"b{i}"
    s = spec.indicator.scoring
    direct = isinstance(s, n.Bins) and isinstance(s.operand, n.InputRef)
    contrib = lambda p: scaled(spec.weight * p, ev.scale)  # noqa: E731
    if direct:
        var = var_of[s.operand.name]
        pre = []
        decimal_operand = False
    else:
        fname = f"OPERAND_{i}"
        expr = s.operand if isinstance(s, n.Bins) else s.expr
        used_grades = {a: c.grades for a, c in ev.checked.used.items()}
        helpers[fname] = compile_expr(expr, ev.grades, used_grades, inputs)
        var = f"x{i}"
        pre = [_assign(var, _call(fname, _name("env")))]
        decimal_operand = True
        if isinstance(s, n.Bins) and spec.table.kind == "categorical":
            # grades and enums come back as wrappers; the table is keyed by name
            helpers[f"KEY_{i}"] = _categorical_key
            pre.append(ast.If(test=_is(_name(var), _const(None), negate=True),
                              body=[_assign(var, _call(f"KEY_{i}", _name(var)))], orelse=[]))
    on_missing = _missing_code(ev, spec, inputs, traced, tvar, direct)
    scoring = _scoring_code(ev, i, spec, _name(var), decimal_operand, contrib, helpers, traced, tvar)
    # an input filled in by its default scores, but is not collected data
    defaulted = [_name(f"d_{var_of[x]}") for x in spec.inputs if x in ev._defaults]
    if defaulted:
        test = defaulted[0] if len(defaulted) == 1 else ast.BoolOp(op=ast.Or(), values=defaulted)
        scoring = scoring + [ast.If(test=test, body=[_aug("absent", _const(1))], orelse=[])]
    return pre + [ast.If(test=_is(_name(var), _const(None)), body=on_missing, orelse=scoring)]


def _categorical_key(v):
    return getattr(v, "grades", None) and v.grades[v.index] or getattr(v, "name", v)


def _scoring_code(ev, i, spec, value_expr, decimal_operand, contrib, helpers, traced, tvar):
    s = spec.indicator.scoring
    if isinstance(s, n.Arithmetic):
        fname = f"ARITH_{i}"
        precision = ev.precision

        def arith_contribution(points, _w=spec.weight, _scale=ev.scale):
            p = round_half_up(to_decimal(points), precision)
            return scaled(_w * p, _scale)
        helpers[fname] = arith_contribution
        stmts = [_aug("total", _call(fname, value_expr))]
        if traced:
            stmts.append(_assign(tvar, value_expr))
        return stmts
    table = spec.table
    if table.kind == "categorical":
        cname, sname = f"MAP_{i}", f"SRC_{i}"
        helpers[cname] = {v: contrib(p) for v, p, _ in table.mapping}
        helpers[sname] = {v: src for v, _, src in table.mapping}
        sub = lambda d: ast.Subscript(value=_name(d), slice=value_expr, ctx=ast.Load())  # noqa: E731
        stmts = [_aug("total", sub(cname))]
        if traced:
            stmts.append(_assign(tvar, sub(sname)))
        return stmts
    return _numeric_chain(ev, i, spec, value_expr, decimal_operand, contrib, helpers, traced, tvar)


def _numeric_chain(ev, i, spec, value_expr, decimal_operand, contrib, helpers, traced, tvar) -> list:
    """Test lower bounds from the top interval down; the first that holds is the bin. The
    value is known to lie in the input's domain, so the lowest interval needs no test."""
    table = spec.table
    branches = []
    for k in range(len(table.intervals) - 1, -1, -1):
        iv = table.intervals[k]
        stmts = [_aug("total", _const(contrib(table.points[k])))]
        if traced:
            stmts.append(_assign(tvar, _const(table.source[k])))
        if k == 0 or iv.low is None:
            branches.append((None, stmts))
            break
        bound = _const(_num_const(iv.low)) if not decimal_operand else _decimal_const(iv.low, helpers)
        test = ast.Compare(left=value_expr, ops=[ast.GtE() if iv.low_closed else ast.Gt()], comparators=[bound])
        branches.append((test, stmts))
    node = None
    for test, stmts in reversed(branches):
        if test is None:
            node = stmts
        else:
            node = [ast.If(test=test, body=stmts, orelse=node or [])]
    return node


def _decimal_const(d: Decimal, helpers: dict):
    name = f"DEC_{len(helpers)}"
    helpers[name] = d
    return _name(name)
