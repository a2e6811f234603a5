"""Pass `weights`: weights in each group, and of the groups, add up to exactly 100%."""
from __future__ import annotations

from decimal import Decimal

from .. import nodes as n
from .context import Context

ONE = Decimal(1)


def check(ctx: Context) -> None:
    block = ctx.policy.indicators
    if block is None or not block.items:
        return
    top = sum((item.weight for item in block.items), Decimal(0))
    if top != ONE:
        ctx.diags.error("weights_sum", f"the weights of the indicators block add up to {_pct(top)}, not 100%",
                        block.span, _fix(top, [i.name for i in block.items]))
    for item in block.items:
        if isinstance(item, n.Group):
            total = sum((i.weight for i in item.indicators), Decimal(0))
            if not item.indicators:
                ctx.diags.error("weights_sum", f"group `{item.name}` has no indicators", item.span,
                                "add its indicators or remove the group")
            elif total != ONE:
                ctx.diags.error("weights_sum", f"the weights in group `{item.name}` add up to {_pct(total)}, "
                                "not 100%", item.span, _fix(total, [i.name for i in item.indicators]))
    for item in block.items:
        for ind in (item.indicators if isinstance(item, n.Group) else (item,)):
            if ind.weight <= 0:
                ctx.diags.error("weights_sum", f"`{ind.name}` has weight {_pct(ind.weight)}", ind.span,
                                "a weight must be above 0%; remove the indicator instead")


def _pct(d: Decimal) -> str:
    return f"{(d * 100).normalize():f}%"


def _fix(total: Decimal, names: list) -> str:
    diff = ONE - total
    verb = "add" if diff > 0 else "remove"
    return f"{verb} {_pct(abs(diff))} across " + ", ".join(f"`{x}`" for x in names[:5]) + \
        ("…" if len(names) > 5 else "")
