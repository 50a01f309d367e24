"""Stop management on each new bar: trailing stop, and whether the stop or the take-profit was hit."""

from dataclasses import dataclass
from decimal import Decimal, localcontext

from risk.config import RiskConfig
from risk.steps import EXACT, floor_to_step
from risk.text import exact, on_grid, percent
from risk.values import Code, MarketLimits, OpenPosition, Reason

HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class StopUpdate:
    highest_price: Decimal
    stop_loss: Decimal | None  # never below the position's previous stop
    exit_price: Decimal | None  # set when the position should be closed now
    exit_quantity: Decimal | None  # what to sell when exit_price is set: the held quantity in whole amount steps
    reasons: tuple[Reason, ...]  # STOP_RAISED, STOP_HIT or TAKE_PROFIT_HIT; empty when nothing happened

    @property
    def exit_reason(self) -> Reason | None:
        return next((r for r in self.reasons if r.code in (Code.STOP_HIT, Code.TAKE_PROFIT_HIT)), None)


def exit_quantity(held: Decimal, market: MarketLimits) -> Decimal:
    """The part of a held quantity an exit order can sell: whole amount steps (the rest cannot be ordered)."""
    with localcontext(EXACT):
        return floor_to_step(held, market.amount_step)


def update_stops(
    position: OpenPosition,
    high: Decimal,
    low: Decimal,
    close: Decimal,
    config: RiskConfig,
    market: MarketLimits,
    open_: Decimal | None = None,
) -> StopUpdate:
    """Apply one finished bar to a long position.

    Exits are judged against the levels in force when the bar began: the bar's own high only moves the
    trailing stop for later bars, because within a bar we cannot know whether the high came before the low.
    When both the stop and the take-profit lie inside one bar, the stop is assumed hit first. A stop exit fills
    at the stop, or at the bar's open when the bar opened below it (a gap: the stop order fills at the first
    price there is), or at the bar's high without an open; a take-profit likewise fills at the target, or at the
    open after a gap up. A trailing stop raised above the close exits at the close.
    """
    if not low <= close <= high:
        raise ValueError(f"not a bar: low {low}, close {close}, high {high}")
    with localcontext(EXACT):
        step, quote = market.price_step, market.quote
        stop, target = position.stop_loss, position.take_profit
        highest = max(position.highest_price, high)
        sellable = exit_quantity(position.quantity, market)
        if stop is not None and low <= stop:
            exit_price = min(stop, open_ if open_ is not None else high)
            low_text, stop_text, exit_text = on_grid(step, low, stop, exit_price)
            hit = Reason(
                Code.STOP_HIT,
                f"low {low_text} <= stop {stop_text} {quote}: exit at {exit_text}",
                exact(low=low, stop_loss=stop, exit_price=exit_price),
            )
            return StopUpdate(highest, stop, exit_price, sellable, (hit,))
        if target is not None and high >= target:
            exit_price = max(target, open_ if open_ is not None else low)
            high_text, target_text, exit_text = on_grid(step, high, target, exit_price)
            hit = Reason(
                Code.TAKE_PROFIT_HIT,
                f"high {high_text} >= take profit {target_text} {quote}: exit at {exit_text}",
                exact(high=high, take_profit=target, exit_price=exit_price),
            )
            return StopUpdate(highest, stop, exit_price, sellable, (hit,))
        if config.trailing_stop_pct is None:
            return StopUpdate(highest, stop, None, None, ())

        trailed = floor_to_step(highest * (1 - config.trailing_stop_pct / HUNDRED), step)
        if trailed <= 0 or (stop is not None and trailed <= stop):
            return StopUpdate(highest, stop, None, None, ())
        new_text, highest_text = on_grid(step, trailed, highest)
        previous_text = "none" if stop is None else on_grid(step, stop)[0]
        raised = Reason(
            Code.STOP_RAISED,
            f"trailing stop {percent(config.trailing_stop_pct)[0]} below the high {highest_text}: "
            f"{previous_text} -> {new_text} {quote}",
            exact(previous_stop="none" if stop is None else stop, stop_loss=trailed, highest_price=highest),
        )
        if close > trailed:
            return StopUpdate(highest, trailed, None, None, (raised,))
        close_text, trailed_text = on_grid(step, close, trailed)
        hit = Reason(
            Code.STOP_HIT,
            f"close {close_text} <= raised stop {trailed_text} {quote}: exit at the close",
            exact(close=close, stop_loss=trailed, exit_price=close),
        )
        return StopUpdate(highest, trailed, close, sellable, (raised, hit))
