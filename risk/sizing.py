"""Position sizing for a spot long: risk-based quantity, caps, and the exchange minimum."""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from risk.config import RiskConfig
from risk.steps import ceil_div, steps_within
from risk.text import exact, money, on_grid, percent
from risk.values import AccountState, Code, MarketLimits, Reason

HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Sizing:
    """A quantity to buy with the notes behind it, or (quantity None) the reasons there is none."""

    quantity: Decimal | None
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class _Cap:
    """A limit on the quantity. Its explanations are written only when it matters: a backtest sizes thousands
    of orders, and most caps never bind."""

    quantity: Decimal
    capped: Callable[[], Reason]  # when this cap is what cut the risk-based quantity
    blocks_minimum: Callable[[], Reason]  # when this cap leaves no room for the exchange minimum


def minimum_quantity(market: MarketLimits, stop: Decimal) -> Decimal:
    """The smallest step-aligned quantity that, after a buy fee taken in the base asset, still leaves an exit order
    meeting min_amount, and min_notional even at the stop price.

    Measuring the notional at the stop, not at entry, keeps the position sellable when the stop is hit: a
    position sized to exactly 5 USDT at entry is worth 4.90 at a 2% stop, and the exchange refuses to sell it.
    Binance takes a spot buy's fee out of the coins bought (unless paid in BNB): buying q leaves q x (1 - fee),
    of which only whole steps can be sold. So the sellable steps S are found first and the order is
    ceil(S / (1 - fee)) steps, whose floor after the fee is at least S (S is whole). With BTC/USDT's 0.00001
    step, 5 USDT minimum and 0.1% fee at a 42,434.55 stop: S = 12 (0.00012 = 5.09 USDT), order 0.00013.
    """
    sellable_steps = max(
        Decimal(1),
        ceil_div(market.min_amount, market.amount_step),
        ceil_div(market.min_notional, market.amount_step * stop),
    )
    return ceil_div(sellable_steps, 1 - market.fee_rate) * market.amount_step


def size_long(
    account: AccountState, market: MarketLimits, config: RiskConfig, reference: Decimal, stop: Decimal
) -> Sizing:
    """Quantity = equity x risk% / (reference - stop), cut by the caps, truncated to the amount step.

    Below the exchange minimum it is raised to the minimum only if the risk stays within
    (1 + min_raise_tolerance_pct/100) x the target risk and every cap still holds; otherwise the trade is refused.
    """
    step = market.amount_step
    distance = reference - stop
    target_risk = account.equity * config.risk_per_trade_pct / HUNDRED
    by_risk = steps_within(target_risk, distance, step)
    minimum = minimum_quantity(market, stop)
    caps = _caps(account, market, config, reference, minimum)
    quantity = min([by_risk] + [cap.quantity for cap in caps])
    sized = _sized_reason(market, config, account, target_risk, distance, quantity, reference)

    if quantity >= minimum:
        binding = next((cap for cap in caps if cap.quantity == quantity < by_risk), None)
        return Sizing(quantity, (sized,) if binding is None else (sized, binding.capped()))

    allowed_risk = target_risk * (1 + config.min_raise_tolerance_pct / HUNDRED)
    minimum_risk = minimum * distance
    blockers = [cap.blocks_minimum() for cap in caps if cap.quantity < minimum]
    if minimum_risk > allowed_risk:
        blockers.append(_over_tolerance(market, config, minimum, reference, minimum_risk, target_risk, allowed_risk))
    if blockers:
        return Sizing(None, (_below_minimum(market, quantity, minimum, stop), *blockers))

    quantities = on_grid(step, quantity, minimum)
    risk_text, allowed_text = money(minimum_risk, allowed_risk)
    raised = Reason(
        Code.RAISED_TO_MINIMUM,
        f"raised {quantities[0]} -> {quantities[1]} {market.base} ({money(minimum * reference)[0]} {market.quote}) "
        f"to meet the exchange minimum; risk {risk_text} <= {allowed_text} {market.quote} "
        f"(target + {percent(config.min_raise_tolerance_pct)[0]})",
        exact(
            sized_quantity=quantity,
            quantity=minimum,
            risk=minimum_risk,
            target_risk=target_risk,
            allowed_risk=allowed_risk,
        ),
    )
    return Sizing(minimum, (sized, raised))


def _sized_reason(
    market: MarketLimits,
    config: RiskConfig,
    account: AccountState,
    target_risk: Decimal,
    distance: Decimal,
    quantity: Decimal,
    reference: Decimal,
) -> Reason:
    raw = target_risk / distance

    def text() -> str:
        risk_text, equity_text = money(target_risk, account.equity)
        raw_text, quantity_text = on_grid(market.amount_step, raw, quantity)
        return (
            f"risk {risk_text} {market.quote} ({percent(config.risk_per_trade_pct)[0]} of {equity_text}) / "
            f"stop distance {on_grid(market.price_step, distance)[0]} = {raw_text} {market.base}; "
            f"within limits and steps {quantity_text} {market.base} = {money(quantity * reference)[0]} {market.quote}"
        )

    return Reason(
        Code.SIZED,
        text,
        lambda: exact(
            equity=account.equity,
            target_risk=target_risk,
            stop_distance=distance,
            risk_quantity=raw,
            quantity=quantity,
            notional=quantity * reference,
        ),
    )


def _caps(
    account: AccountState, market: MarketLimits, config: RiskConfig, reference: Decimal, minimum: Decimal
) -> list[_Cap]:
    base, quote, step = market.base, market.quote, market.amount_step
    minimum_value = minimum * reference
    minimum_cost = minimum_value * (1 + market.fee_rate)

    position_limit = account.equity * config.max_position_pct / HUNDRED
    by_position = steps_within(position_limit, reference, step)

    def position_capped() -> Reason:
        value, limit = money(by_position * reference, position_limit)
        return Reason(
            Code.CAPPED_BY_MAX_POSITION,
            f"max position {percent(config.max_position_pct)[0]} of equity = {limit} {quote} caps the order at "
            f"{on_grid(step, by_position)[0]} {base} ({value} {quote})",
            exact(limit=position_limit, quantity=by_position),
        )

    def position_blocks() -> Reason:
        min_text, limit_text = money(minimum_value, position_limit)
        return Reason(
            Code.CAPPED_BY_MAX_POSITION,
            f"the minimum order {min_text} {quote} exceeds the max position {limit_text} {quote} "
            f"({percent(config.max_position_pct)[0]} of equity)",
            exact(limit=position_limit, minimum_notional=minimum_value),
        )

    by_balance = steps_within(account.free_quote, reference * (1 + market.fee_rate), step)

    def balance_capped() -> Reason:
        cost, free = money(by_balance * reference * (1 + market.fee_rate), account.free_quote)
        return Reason(
            Code.CAPPED_BY_FREE_BALANCE,
            f"free balance {free} {quote} caps the order at {on_grid(step, by_balance)[0]} {base} "
            f"({cost} {quote} with {percent(market.fee_rate * HUNDRED)[0]} fee)",
            exact(free_quote=account.free_quote, quantity=by_balance, fee_rate=market.fee_rate),
        )

    def balance_blocks() -> Reason:
        min_cost_text, free_text = money(minimum_cost, account.free_quote)
        return Reason(
            Code.INSUFFICIENT_BALANCE,
            f"the minimum order costs {min_cost_text} {quote} with fees > free balance {free_text} {quote}",
            exact(free_quote=account.free_quote, minimum_cost=minimum_cost, fee_rate=market.fee_rate),
        )

    exposure_limit = account.equity * config.max_total_exposure_pct / HUNDRED
    open_value = sum((p.quantity * p.entry_price for p in account.open_positions), Decimal(0))
    room = exposure_limit - open_value
    by_exposure = steps_within(room, reference, step)

    def exposure_of() -> str:
        _, open_text, limit_text = money(room, open_value, exposure_limit)
        return f"{percent(config.max_total_exposure_pct)[0]} of equity = {limit_text} - {open_text} open at cost"

    def exposure_capped() -> Reason:
        room_text = money(room, open_value, exposure_limit)[0]
        return Reason(
            Code.CAPPED_BY_EXPOSURE,
            f"exposure room {room_text} {quote} ({exposure_of()}) caps the order at "
            f"{on_grid(step, by_exposure)[0]} {base} ({money(by_exposure * reference)[0]} {quote})",
            exact(limit=exposure_limit, open_value=open_value, room=room, quantity=by_exposure),
        )

    def exposure_blocks() -> Reason:
        min_text, room_min_text = money(minimum_value, room)
        return Reason(
            Code.CAPPED_BY_EXPOSURE,
            f"the minimum order {min_text} {quote} exceeds the exposure room {room_min_text} {quote} ({exposure_of()})",
            exact(limit=exposure_limit, open_value=open_value, room=room, minimum_notional=minimum_value),
        )

    return [
        _Cap(by_position, position_capped, position_blocks),
        _Cap(by_balance, balance_capped, balance_blocks),
        _Cap(by_exposure, exposure_capped, exposure_blocks),
    ]


def _below_minimum(market: MarketLimits, quantity: Decimal, minimum: Decimal, stop: Decimal) -> Reason:
    numbers = exact(
        quantity=quantity,
        minimum_quantity=minimum,
        min_amount=market.min_amount,
        min_notional=market.min_notional,
        stop_loss=stop,
    )
    if quantity * stop < market.min_notional:
        value, minimum_notional = money(quantity * stop, market.min_notional)
        return Reason(
            Code.NOTIONAL_BELOW_MIN,
            f"{value} < {minimum_notional} {market.quote} at the stop {on_grid(market.price_step, stop)[0]} "
            f"({on_grid(market.amount_step, quantity)[0]} {market.base}; "
            f"the smallest sellable order is {on_grid(market.amount_step, minimum)[0]} {market.base})",
            numbers,
        )
    amount, minimum_amount = on_grid(market.amount_step, quantity, max(market.min_amount, market.amount_step))
    return Reason(
        Code.NOTIONAL_BELOW_MIN,
        f"{amount} < {minimum_amount} {market.base}, the exchange's minimum amount",
        numbers,
    )


def _over_tolerance(
    market: MarketLimits,
    config: RiskConfig,
    minimum: Decimal,
    reference: Decimal,
    minimum_risk: Decimal,
    target_risk: Decimal,
    allowed_risk: Decimal,
) -> Reason:
    risk_text, allowed_text, target_text = money(minimum_risk, allowed_risk, target_risk)
    return Reason(
        Code.RAISE_EXCEEDS_TOLERANCE,
        f"raising to {on_grid(market.amount_step, minimum)[0]} {market.base} "
        f"({money(minimum * reference)[0]} {market.quote}) would risk {risk_text} > {allowed_text} {market.quote} "
        f"(target {target_text} + {percent(config.min_raise_tolerance_pct)[0]})",
        exact(quantity=minimum, risk=minimum_risk, target_risk=target_risk, allowed_risk=allowed_risk),
    )
