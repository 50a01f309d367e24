"""The risk manager's verdict on one signal: an order to place, or the coded reasons there is none."""

from datetime import datetime
from decimal import Decimal, localcontext

from risk.config import RiskConfig
from risk.limits import cooldown_reason, daily_loss_reason, drawdown_reason
from risk.sizing import size_long
from risk.states import TradingState
from risk.steps import EXACT, floor_to_step
from risk.text import exact, money, on_grid, percent, ratio
from risk.values import AccountState, Code, Decision, MarketLimits, OrderSpec, Reason, SignalLike

HUNDRED = Decimal(100)


def decide(
    signal: SignalLike,
    account: AccountState,
    market: MarketLimits,
    config: RiskConfig,
    now: datetime,
    last_price: Decimal,
) -> Decision:
    """Judge a signal for `market.symbol` on a spot account; deterministic, no I/O.

    BUY opens a long with a market order sized at `last_price`; SELL closes the whole long in that symbol;
    HOLD is never approved. Closing is always allowed, whatever the trading state (HALTED and REDUCING only
    stop openings), the daily loss limit, the drawdown kill switch, the cooldown, the allowlist or the minimum
    confidence: refusing an exit never reduces risk. Every decision carries at least one coded reason with the
    numbers behind it.
    """
    if last_price <= 0:
        raise ValueError(f"last_price must be positive, got {last_price}")
    with localcontext(EXACT):
        action = signal.action.value
        if action == "HOLD":
            return _refuse(Reason(Code.HOLD_SIGNAL, "the signal proposes no trade", {}))
        if action == "SELL":
            return _close_long(signal, account, market, config, last_price)
        if action == "BUY":
            return _open_long(signal, account, market, config, now, last_price)
        return _refuse(Reason(Code.UNKNOWN_ACTION, f"unknown action {action!r}", exact(action=action)))


def _refuse(*reasons: Reason) -> Decision:
    return Decision(approved=False, order=None, reasons=reasons)


def _confidence_reason(signal: SignalLike, config: RiskConfig) -> Reason | None:
    if signal.confidence >= config.min_confidence:
        return None
    return Reason(
        Code.CONFIDENCE_BELOW_MIN,
        f"confidence {signal.confidence} < {config.min_confidence}",
        exact(confidence=signal.confidence, min_confidence=config.min_confidence),
    )


def _close_long(
    signal: SignalLike, account: AccountState, market: MarketLimits, config: RiskConfig, last_price: Decimal
) -> Decision:
    position = account.position(market.symbol)
    if position is None:
        return _refuse(Reason(Code.NO_POSITION_TO_SELL, f"no open {market.symbol} position to close", {}))

    quantity = floor_to_step(position.quantity, market.amount_step)
    notional = quantity * last_price
    if quantity == 0 or quantity < market.min_amount or notional < market.min_notional:
        value, minimum = money(notional, market.min_notional)
        held, sellable, minimum_amount = on_grid(market.amount_step, position.quantity, quantity, market.min_amount)
        return _refuse(
            Reason(
                Code.POSITION_BELOW_MIN,
                f"dust: {held} {market.base} held, {sellable} sellable on the {market.amount_step} step "
                f"= {value} {market.quote}; the exchange needs {minimum} {market.quote} "
                f"and {minimum_amount} {market.base}",
                exact(
                    position_quantity=position.quantity,
                    quantity=quantity,
                    notional=notional,
                    min_notional=market.min_notional,
                    min_amount=market.min_amount,
                ),
            )
        )

    order = OrderSpec(
        symbol=market.symbol,
        side="sell",
        quantity=quantity,
        order_type="market",
        stop_loss=None,
        take_profit=None,
        reference_price=last_price,
        notional=notional,
        risk_amount=Decimal(0),
    )
    reasons = [
        Reason(
            Code.APPROVED,
            f"sell {on_grid(market.amount_step, quantity)[0]} {market.base} at about "
            f"{on_grid(market.price_step, last_price)[0]} = {money(notional)[0]} {market.quote}, closing the position",
            exact(quantity=quantity, reference_price=last_price, notional=notional),
        )
    ]
    if quantity < position.quantity:
        dust = position.quantity - quantity
        reasons.append(
            Reason(
                Code.DUST_LEFT,
                f"{on_grid(market.amount_step, dust)[0]} {market.base} stays behind: "
                f"below the amount step {market.amount_step}",
                exact(dust=dust, amount_step=market.amount_step),
            )
        )
    return Decision(approved=True, order=order, reasons=tuple(reasons))


def _opening_refusals(
    signal: SignalLike, account: AccountState, market: MarketLimits, config: RiskConfig, now: datetime
) -> list[Reason]:
    refusals: list[Reason] = []
    if account.trading_state is TradingState.HALTED:
        refusals.append(Reason(Code.TRADING_HALTED, "trading is halted: no new positions, closes only", {}))
    elif account.trading_state is TradingState.REDUCING:
        refusals.append(Reason(Code.REDUCING_ONLY, "the account is reducing: closes only", {}))
    for limit in (
        drawdown_reason(account, config),
        daily_loss_reason(account, config),
        cooldown_reason(account, config, now),
        _confidence_reason(signal, config),
    ):
        if limit is not None:
            refusals.append(limit)
    if market.quote != account.currency:
        refusals.append(
            Reason(
                Code.QUOTE_MISMATCH,
                f"{market.symbol} is quoted in {market.quote}, the account is valued in {account.currency}",
                exact(quote=market.quote, currency=account.currency),
            )
        )
    if config.symbol_allowlist and market.symbol not in config.symbol_allowlist:
        refusals.append(
            Reason(
                Code.SYMBOL_NOT_ALLOWED,
                f"{market.symbol} is not in the allowlist ({', '.join(config.symbol_allowlist)})",
                exact(symbol=market.symbol),
            )
        )
    if account.position(market.symbol) is not None:
        # One long per symbol on spot keeps stops and sizing per position simple; adding would need re-sizing.
        refusals.append(Reason(Code.ALREADY_IN_POSITION, f"a {market.symbol} position is already open", {}))
    elif len(account.open_positions) >= config.max_open_positions:
        refusals.append(
            Reason(
                Code.MAX_OPEN_POSITIONS,
                f"{len(account.open_positions)} positions open, at most {config.max_open_positions}",
                exact(open_positions=len(account.open_positions), max_open_positions=config.max_open_positions),
            )
        )
    return refusals


def _long_levels(
    signal: SignalLike, market: MarketLimits, config: RiskConfig, reference: Decimal
) -> tuple[Decimal, Decimal | None, list[Reason], list[Reason]]:
    """Stop and take-profit on the price grid, with (refusals, notes).

    The stop is rounded down, the take-profit down too: both err towards a smaller gain per unit of risk, and
    the quantity is sized after rounding, so the rounded distance is the one the risk budget pays for.
    """
    refusals: list[Reason] = []
    notes: list[Reason] = []
    step = market.price_step
    if signal.stop_loss is None:
        stop = floor_to_step(reference * (1 - config.default_stop_pct / HUNDRED), step)
        reference_text, stop_text = on_grid(step, reference, stop)
        notes.append(
            Reason(
                Code.DEFAULT_STOP_USED,
                f"no stop in the signal: {percent(config.default_stop_pct)[0]} below {reference_text} = {stop_text}",
                exact(default_stop_pct=config.default_stop_pct, stop_loss=stop),
            )
        )
    else:
        stop = floor_to_step(signal.stop_loss, step)
    reference_text, stop_text = on_grid(step, reference, stop)
    if stop >= reference:
        refusals.append(
            Reason(
                Code.STOP_NOT_BELOW_ENTRY,
                f"stop {stop_text} is not below the entry {reference_text} {market.quote}",
                exact(stop_loss=stop, reference_price=reference),
            )
        )
        return stop, None, refusals, notes

    distance_pct = (reference - stop) / reference * HUNDRED
    if distance_pct < config.min_stop_pct:
        distance_text, bound_text = percent(distance_pct, config.min_stop_pct)
        refusals.append(
            Reason(
                Code.STOP_TOO_TIGHT,
                f"stop {stop_text} is {distance_text} below {reference_text}, closer than {bound_text}",
                exact(stop_loss=stop, reference_price=reference, distance_pct=distance_pct),
            )
        )
    elif distance_pct > config.max_stop_pct:
        distance_text, bound_text = percent(distance_pct, config.max_stop_pct)
        refusals.append(
            Reason(
                Code.STOP_TOO_WIDE,
                f"stop {stop_text} is {distance_text} below {reference_text}, further than {bound_text}",
                exact(stop_loss=stop, reference_price=reference, distance_pct=distance_pct),
            )
        )

    if signal.take_profit is None:
        return stop, None, refusals, notes
    target = floor_to_step(signal.take_profit, step)
    target_text = on_grid(step, target)[0]
    if target <= reference:
        refusals.append(
            Reason(
                Code.TAKE_PROFIT_NOT_ABOVE_ENTRY,
                f"take profit {target_text} is not above the entry {reference_text} {market.quote}",
                exact(take_profit=target, reference_price=reference),
            )
        )
        return stop, target, refusals, notes
    reward_risk = (target - reference) / (reference - stop)
    if reward_risk < config.min_reward_risk:
        ratio_text, minimum = ratio(reward_risk, config.min_reward_risk)
        refusals.append(
            Reason(
                Code.REWARD_RISK_TOO_LOW,
                f"reward:risk {ratio_text} < {minimum} "
                f"(target {target_text}, entry {reference_text}, stop {stop_text})",
                exact(reward_risk=reward_risk, take_profit=target, reference_price=reference, stop_loss=stop),
            )
        )
    return stop, target, refusals, notes


def _open_long(
    signal: SignalLike,
    account: AccountState,
    market: MarketLimits,
    config: RiskConfig,
    now: datetime,
    reference: Decimal,
) -> Decision:
    refusals = _opening_refusals(signal, account, market, config, now)
    stop, target, level_refusals, notes = _long_levels(signal, market, config, reference)
    refusals += level_refusals
    if refusals:
        return _refuse(*refusals, *notes)

    sizing = size_long(account, market, config, reference, stop)
    if sizing.quantity is None:
        return _refuse(*sizing.reasons, *notes)
    quantity = sizing.quantity
    order = OrderSpec(
        symbol=market.symbol,
        side="buy",
        quantity=quantity,
        order_type="market",
        stop_loss=stop,
        take_profit=target,
        reference_price=reference,
        notional=quantity * reference,
        risk_amount=quantity * (reference - stop),
    )

    def approval() -> str:
        quantity_text = on_grid(market.amount_step, quantity)[0]
        notional_text, risk_text = money(order.notional, order.risk_amount)
        return (
            f"buy {quantity_text} {market.base} at about {on_grid(market.price_step, reference)[0]} = {notional_text} "
            f"{market.quote}, stop {on_grid(market.price_step, stop)[0]} risks {risk_text} {market.quote}"
        )

    approved = Reason(
        Code.APPROVED,
        approval,
        lambda: exact(quantity=quantity, notional=order.notional, risk_amount=order.risk_amount, stop_loss=stop),
    )
    return Decision(approved=True, order=order, reasons=(approved, *notes, *sizing.reasons))
