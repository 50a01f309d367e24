"""Exact arithmetic on an exchange's price and amount grids."""

from decimal import ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, InvalidOperation, Overflow

# Products of prices and quantities can need more than the default 28 digits, and a caller's thread context
# (precision, rounding) must never change a decision: every public entry point computes inside this one.
EXACT = Context(prec=60, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    whole, rest = divmod(value, step)
    # Decimal's divmod truncates towards zero; a negative remainder means we are one step too high.
    return (whole - 1 if rest < 0 else whole) * step


def ceil_div(numerator: Decimal, denominator: Decimal) -> Decimal:
    """The smallest whole number n with n x denominator >= numerator (both positive)."""
    whole, rest = divmod(numerator, denominator)
    return whole + 1 if rest else whole


def steps_within(budget: Decimal, cost_per_unit: Decimal, step: Decimal) -> Decimal:
    """The largest multiple of `step` whose cost (quantity x cost_per_unit) stays within `budget`, decided exactly."""
    if budget <= 0:
        return Decimal(0) * step
    return (budget // (cost_per_unit * step)) * step
