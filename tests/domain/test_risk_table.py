"""Hand-computed risk decisions for a 100 USDT account on Binance BTC/USDT rules.

Rules: amount step 0.00001 BTC, price step 0.01, min amount 0.00001 BTC, min notional 5 USDT, fee 0.1%.
Defaults: risk 1%, max position 50%, exposure 80%, min raise tolerance 30%. Every sizing case carries its
arithmetic in a comment; the smallest order must be worth 5 USDT *at the stop*, so that the stop exit can sell it,
after Binance took the 0.1% buy fee out of the coins bought: S sellable steps need an order of ceil(S / 0.999).
"""

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ai.actions import Action
from ai.signal import Signal
from risk import (
    AccountState,
    MarketLimits,
    OpenPosition,
    RiskConfig,
    TradingState,
    decide,
    next_trading_state,
    update_stops,
)
from risk.config import MEANINGS
from risk.limits import cooldown_reason

D = Decimal
BTC = MarketLimits("BTC/USDT", "BTC", "USDT", D("0.00001"), D("0.01"), D("0.00001"), D(5), D("0.001"))
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ACCOUNT = AccountState(
    equity=D(100),
    free_quote=D(100),
    open_positions=(),
    realized_pnl_today=D(0),
    peak_equity=D(100),
    trading_state=TradingState.ACTIVE,
    last_loss_at=None,
)


DEFAULTS = RiskConfig()


@dataclass(frozen=True)
class Proposal:
    action: Action = Action.BUY
    confidence: int = 70
    entry_price: Decimal | None = Decimal(60000)
    stop_loss: Decimal | None = Decimal(58800)
    take_profit: Decimal | None = None


def holding(*positions: OpenPosition, **changes) -> AccountState:
    return replace(ACCOUNT, open_positions=positions, **changes)


def eth(quantity: str, price: str) -> OpenPosition:
    return OpenPosition("ETH/USDT", D(quantity), D(price), None, None, D(price))


def btc(quantity: str, entry: str = "60000") -> OpenPosition:
    return OpenPosition("BTC/USDT", D(quantity), D(entry), D(58800), None, D(entry))


@dataclass(frozen=True)
class Case:
    signal: Proposal = Proposal()
    account: AccountState = ACCOUNT
    config: RiskConfig = DEFAULTS
    price: Decimal = Decimal(60000)
    codes: tuple[str, ...] = ()
    quantity: str | None = None
    notional: str | None = None
    risk: str | None = None
    messages: dict[str, str] = field(default_factory=dict)


QUARTER = RiskConfig(risk_per_trade_pct=D("0.25"))

BUY_CASES = {
    # 1% of 100 = 1.00 risk; distance 60000 - 58800 = 1200; 1.00 / 1200 = 0.000833.. -> 0.00083 BTC.
    # notional 0.00083 x 60000 = 49.80; risk 0.00083 x 1200 = 0.996. Caps: max position 50 / 60000 = 0.000833..
    # -> 0.00083 (equal, not below), free 100 / 60060 -> 0.00166, exposure 80 / 60000 -> 0.00133.
    # Minimum: 5 / (58800 x 0.00001 = 0.588) = 8.5 -> 9 steps = 0.00009 BTC.
    "one percent at a 2% stop": Case(
        codes=("APPROVED", "SIZED"),
        quantity="0.00083",
        notional="49.80",
        risk="0.996",
        messages={
            "APPROVED": "buy 0.00083 BTC at about 60,000.00 = 49.80 USDT, stop 58,800.00 risks 0.996 USDT",
            "SIZED": "risk 1.00 USDT (1% of 100.00) / stop distance 1,200.00 = 0.00083333 BTC; "
            "within limits and steps 0.00083 BTC = 49.80 USDT",
        },
    ),
    # No stop: 60000 x (1 - 2%) = 58800.00, then exactly the case above.
    "default stop": Case(
        signal=Proposal(stop_loss=None),
        codes=("APPROVED", "DEFAULT_STOP_USED", "SIZED"),
        quantity="0.00083",
        notional="49.80",
        risk="0.996",
        messages={"DEFAULT_STOP_USED": "no stop in the signal: 2% below 60,000.00 = 58,800.00"},
    ),
    # Stop 58799.999 rounds down to 58799.99: distance 1200.01; 1 / 1200.01 = 0.00083332.. -> 0.00083;
    # risk 0.00083 x 1200.01 = 0.9960083.
    "stop rounded down to the price step before sizing": Case(
        signal=Proposal(stop_loss=D("58799.999")),
        codes=("APPROVED", "SIZED"),
        quantity="0.00083",
        notional="49.80",
        risk="0.9960083",
    ),
    # Distance 300: 1 / 300 = 0.00333 BTC (200 USDT) but max position 50 / 60000 -> 0.00083; risk 0.00083 x 300 = 0.249.
    "capped by max position": Case(
        signal=Proposal(stop_loss=D(59700)),
        codes=("APPROVED", "SIZED", "CAPPED_BY_MAX_POSITION"),
        quantity="0.00083",
        notional="49.80",
        risk="0.249",
        messages={
            "CAPPED_BY_MAX_POSITION": "max position 50% of equity = 50.00 USDT caps the order at 0.00083 BTC "
            "(49.80 USDT)"
        },
    ),
    # 80 USDT locked in open orders: free 20 / (60000 x 1.001 = 60060) = 0.000333 -> 0.00033 BTC;
    # cost 0.00033 x 60060 = 19.8198 <= 20; notional 19.80; risk 0.00033 x 1200 = 0.396.
    "capped by free balance including the fee": Case(
        account=holding(free_quote=D(20)),
        codes=("APPROVED", "SIZED", "CAPPED_BY_FREE_BALANCE"),
        quantity="0.00033",
        notional="19.80",
        risk="0.396",
        messages={
            "CAPPED_BY_FREE_BALANCE": "free balance 20.00 USDT caps the order at 0.00033 BTC (19.82 USDT with 0.1% fee)"
        },
    ),
    # ETH 0.015 x 4000 = 60 at cost; room 80 - 60 = 20 -> 20 / 60000 = 0.000333 -> 0.00033 BTC (19.80 USDT);
    # free 40 / 60060 -> 0.00066 does not bind; risk 0.00033 x 1200 = 0.396.
    "capped by total exposure": Case(
        account=holding(eth("0.015", "4000"), free_quote=D(40)),
        codes=("APPROVED", "SIZED", "CAPPED_BY_EXPOSURE"),
        quantity="0.00033",
        notional="19.80",
        risk="0.396",
        messages={
            "CAPPED_BY_EXPOSURE": "exposure room 20.00 USDT (80% of equity = 80.00 - 60.00 open at cost) caps the "
            "order at 0.00033 BTC (19.80 USDT)"
        },
    ),
    # Risk 0.28% = 0.28; stop 56400 (6%): 0.28 / 3600 = 0.0000777 -> 0.00007 BTC = 4.20 USDT, below 5.
    # Sellable: 5 / (56400 x 0.00001 = 0.564) = 8.87 -> 9 steps; order ceil(9 / 0.999) = 10 steps = 0.00010 BTC
    # = 6.00 USDT (0.0000999 after the fee, 0.00009 sellable = 5.076 at the stop).
    # Its risk 0.0001 x 3600 = 0.36 <= 0.28 x 1.30 = 0.364: raised.
    "raised to the minimum within tolerance": Case(
        signal=Proposal(stop_loss=D(56400)),
        config=RiskConfig(risk_per_trade_pct=D("0.28")),
        codes=("APPROVED", "SIZED", "RAISED_TO_MINIMUM"),
        quantity="0.00010",
        notional="6.00",
        risk="0.36",
        messages={
            "RAISED_TO_MINIMUM": "raised 0.00007 -> 0.00010 BTC (6.00 USDT) to meet the exchange minimum; "
            "risk 0.360 <= 0.364 USDT (target + 30%)"
        },
    ),
    # Risk 0.26% = 0.26 at 56000, stop 53200 (5%): 0.26 / 2800 = 0.0000928 -> 0.00009 BTC = 5.04 USDT: the exchange
    # would take it, but at the stop it is worth 0.00009 x 53200 = 4.788 < 5 and the stop exit could not sell it.
    # Sellable: 5 / 0.532 = 9.4 -> 10 steps; order ceil(10 / 0.999) = 11 steps = 0.00011 BTC (6.16 USDT; 0.00010989
    # after the fee, 0.0001 sellable = 5.32 at the stop); risk 0.00011 x 2800 = 0.308 <= 0.26 x 1.3 = 0.338.
    "raised so the stop exit stays sellable": Case(
        signal=Proposal(entry_price=D(56000), stop_loss=D(53200)),
        config=RiskConfig(risk_per_trade_pct=D("0.26")),
        price=D(56000),
        codes=("APPROVED", "SIZED", "RAISED_TO_MINIMUM"),
        quantity="0.00011",
        notional="6.16",
        risk="0.308",
    ),
    # Risk 0.25 at 76000, stop 71440 (6%): 0.25 / 4560 = 0.0000548 -> 0.00005 BTC = 3.80 USDT (3.572 at the stop).
    # Sellable: 5 / (71440 x 0.00001 = 0.7144) = 6.999 -> 7 steps; order ceil(7 / 0.999) = 8 steps = 0.00008 BTC
    # = 6.08 USDT; its risk 0.00008 x 4560 = 0.3648 > 0.25 x 1.20 = 0.30 with a 20% tolerance: refused.
    "raising would exceed the tolerance": Case(
        signal=Proposal(entry_price=D(76000), stop_loss=D(71440)),
        config=replace(QUARTER, min_raise_tolerance_pct=D(20)),
        price=D(76000),
        codes=("NOTIONAL_BELOW_MIN", "RAISE_EXCEEDS_TOLERANCE"),
        messages={
            "NOTIONAL_BELOW_MIN": "3.57 < 5.00 USDT at the stop 71,440.00 (0.00005 BTC; "
            "the smallest sellable order is 0.00008 BTC)",
            "RAISE_EXCEEDS_TOLERANCE": "raising to 0.00008 BTC (6.08 USDT) would risk 0.365 > 0.300 USDT "
            "(target 0.250 + 20%)",
        },
    ),
    # The same levels at 0.29% risk with the default 30% tolerance: 0.29 / 4560 -> 0.00006 BTC (4.29 at the stop);
    # the minimum's risk 0.3648 <= 0.29 x 1.3 = 0.377, raised to 0.00008 BTC = 6.08 USDT.
    "the same levels within the default tolerance": Case(
        signal=Proposal(entry_price=D(76000), stop_loss=D(71440)),
        config=RiskConfig(risk_per_trade_pct=D("0.29")),
        price=D(76000),
        codes=("APPROVED", "SIZED", "RAISED_TO_MINIMUM"),
        quantity="0.00008",
        notional="6.08",
        risk="0.3648",
    ),
    # Free 3 / 60060 -> 0.00004 BTC (2.352 at the stop); the minimum (9 sellable steps: 5 / 0.588 = 8.5; order
    # ceil(9 / 0.999) = 10 steps) 0.0001 BTC costs 0.0001 x 60060 = 6.006 > 3.
    "free balance cannot pay the minimum": Case(
        account=holding(free_quote=D(3)),
        codes=("NOTIONAL_BELOW_MIN", "INSUFFICIENT_BALANCE"),
        messages={
            "NOTIONAL_BELOW_MIN": "2.35 < 5.00 USDT at the stop 58,800.00 (0.00004 BTC; "
            "the smallest sellable order is 0.00010 BTC)",
            "INSUFFICIENT_BALANCE": "the minimum order costs 6.01 USDT with fees > free balance 3.00 USDT",
        },
    ),
    # ETH 0.0195 x 4000 = 78 at cost: room 80 - 78 = 2 -> 0.00003 BTC; the minimum 0.0001 x 60000 = 6.00 > 2.
    "exposure leaves no room for the minimum": Case(
        account=holding(eth("0.0195", "4000"), free_quote=D(22)),
        codes=("NOTIONAL_BELOW_MIN", "CAPPED_BY_EXPOSURE"),
        messages={
            "CAPPED_BY_EXPOSURE": "the minimum order 6.00 USDT exceeds the exposure room 2.00 USDT "
            "(80% of equity = 80.00 - 78.00 open at cost)"
        },
    ),
    "halted": Case(
        account=holding(trading_state=TradingState.HALTED),
        codes=("TRADING_HALTED",),
    ),
    "reducing": Case(account=holding(trading_state=TradingState.REDUCING), codes=("REDUCING_ONLY",)),
    # Loss at 11:30, cooldown 60 min: until 12:30; at 12:00 30 minutes are left.
    "cooldown after a loss": Case(
        account=holding(last_loss_at=NOW - timedelta(minutes=30)),
        codes=("COOLDOWN_AFTER_LOSS",),
        messages={
            "COOLDOWN_AFTER_LOSS": "last loss at 2025-03-01 11:30 UTC: 30 of 60 cooldown minutes left "
            "(until 2025-03-01 12:30 UTC)"
        },
    ),
    "cooldown over after exactly 60 minutes": Case(
        account=holding(last_loss_at=NOW - timedelta(minutes=60)), codes=("APPROVED", "SIZED"), quantity="0.00083"
    ),
    "confidence below the minimum": Case(
        signal=Proposal(confidence=54),
        codes=("CONFIDENCE_BELOW_MIN",),
        messages={"CONFIDENCE_BELOW_MIN": "confidence 54 < 55"},
    ),
    "confidence at the minimum": Case(signal=Proposal(confidence=55), codes=("APPROVED", "SIZED"), quantity="0.00083"),
    # (61500 - 60000) / (60000 - 58800) = 1500 / 1200 = 1.25 < 1.5.
    "reward to risk too low": Case(
        signal=Proposal(take_profit=D(61500)),
        codes=("REWARD_RISK_TOO_LOW",),
        messages={"REWARD_RISK_TOO_LOW": "reward:risk 1.25 < 1.50 (target 61,500.00, entry 60,000.00, stop 58,800.00)"},
    ),
    # 1800 / 1200 = 1.5: exactly enough.
    "reward to risk at the minimum": Case(
        signal=Proposal(take_profit=D(61800)), codes=("APPROVED", "SIZED"), quantity="0.00083", risk="0.996"
    ),
    "take profit below entry": Case(signal=Proposal(take_profit=D(59000)), codes=("TAKE_PROFIT_NOT_ABOVE_ENTRY",)),
    "stop above entry": Case(
        signal=Proposal(stop_loss=D(60100)),
        codes=("STOP_NOT_BELOW_ENTRY",),
        messages={"STOP_NOT_BELOW_ENTRY": "stop 60,100.00 is not below the entry 60,000.00 USDT"},
    ),
    # 100 / 60000 = 0.1667% < 0.3%.
    "stop too tight": Case(
        signal=Proposal(stop_loss=D(59900)),
        codes=("STOP_TOO_TIGHT",),
        messages={"STOP_TOO_TIGHT": "stop 59,900.00 is 0.17% below 60,000.00, closer than 0.3%"},
    ),
    # 7000 / 60000 = 11.67% > 10%.
    "stop too wide": Case(
        signal=Proposal(stop_loss=D(53000)),
        codes=("STOP_TOO_WIDE",),
        messages={"STOP_TOO_WIDE": "stop 53,000.00 is 11.67% below 60,000.00, further than 10%"},
    ),
    # Equity 97 after -3 realized: the day started at 100; 3% of 100 = 3.00 <= 3.00 lost.
    "daily loss limit": Case(
        account=holding(equity=D(97), free_quote=D(97), realized_pnl_today=D(-3)),
        codes=("DAILY_LOSS_LIMIT",),
        messages={
            "DAILY_LOSS_LIMIT": "realized loss today 3.00 >= 3.00 USDT (3% of 100.00 at the start of the UTC day)"
        },
    ),
    # Peak 120 x (1 - 15%) = 102.00: equity 102 is at the kill switch.
    "drawdown kill switch": Case(
        account=holding(equity=D(102), free_quote=D(102), peak_equity=D(120)),
        codes=("MAX_DRAWDOWN",),
        messages={"MAX_DRAWDOWN": "equity 102.00 <= 102.00 USDT (15% below the peak 120.00)"},
    ),
    "max open positions": Case(
        account=holding(eth("0.001", "4000"), replace(eth("0.01", "150"), symbol="SOL/USDT")),
        codes=("MAX_OPEN_POSITIONS",),
        messages={"MAX_OPEN_POSITIONS": "2 positions open, at most 2"},
    ),
    "already in position": Case(account=holding(btc("0.0005")), codes=("ALREADY_IN_POSITION",)),
    "symbol not allowed": Case(
        config=RiskConfig(symbol_allowlist=("ETH/USDT",)),
        codes=("SYMBOL_NOT_ALLOWED",),
        messages={"SYMBOL_NOT_ALLOWED": "BTC/USDT is not in the allowlist (ETH/USDT)"},
    ),
    "several refusals at once": Case(
        signal=Proposal(confidence=10, stop_loss=D(60100)),
        account=holding(trading_state=TradingState.HALTED),
        codes=("TRADING_HALTED", "CONFIDENCE_BELOW_MIN", "STOP_NOT_BELOW_ENTRY"),
    ),
    "hold": Case(signal=Proposal(action=Action.HOLD), codes=("HOLD_SIGNAL",)),
}


@pytest.mark.parametrize("case", BUY_CASES.values(), ids=BUY_CASES.keys())
def test_buy_decisions(case: Case):
    decision = decide(case.signal, case.account, BTC, case.config, NOW, case.price)

    assert decision.codes == case.codes
    assert decision.approved == (case.quantity is not None)
    if decision.order is not None:
        assert decision.order.side == "buy"
        assert decision.order.quantity == D(case.quantity)
        if case.notional is not None:
            assert decision.order.notional == D(case.notional)
        if case.risk is not None:
            assert decision.order.risk_amount == D(case.risk)
    messages = {reason.code: reason.message for reason in decision.reasons}
    for code, message in case.messages.items():
        assert messages[code] == message


def test_a_refused_minimum_reads_like_the_exchange_error():
    decision = decide(
        Proposal(entry_price=D(76000), stop_loss=D(71440)),
        ACCOUNT,
        BTC,
        replace(QUARTER, min_raise_tolerance_pct=D(20)),
        NOW,
        D(76000),
    )

    assert str(decision.reasons[0]).startswith("NOTIONAL_BELOW_MIN: 3.57 < 5.00 USDT at the stop 71,440.00")
    assert decision.reasons[0].values["minimum_quantity"] == "0.00008"


def test_the_ai_signal_satisfies_the_protocol_and_keeps_its_levels():
    signal = Signal(
        action=Action.BUY,
        confidence=70,
        entry_price=D(60000),
        stop_loss=D(58800),
        take_profit=D(62400),
        horizon_bars=12,
        reasoning="Trend up.",
        key_factors=["ema"],
    )

    decision = decide(signal, ACCOUNT, BTC, RiskConfig(), NOW, D(60000))

    assert decision.approved
    assert decision.order is not None
    assert (decision.order.stop_loss, decision.order.take_profit) == (D("58800.00"), D("62400.00"))
    assert decision.order.order_type == "market"


def test_a_market_quoted_in_another_currency_is_refused():
    eth_btc = replace(BTC, symbol="ETH/BTC", base="ETH", quote="BTC", price_step=D("0.00001"))

    signal = Proposal(entry_price=D("0.05"), stop_loss=D("0.049"))

    decision = decide(signal, ACCOUNT, eth_btc, RiskConfig(), NOW, D("0.05"))

    assert decision.codes == ("QUOTE_MISMATCH",)


SELL = Proposal(action=Action.SELL, stop_loss=None)

SELL_CASES = {
    # 0.00083 x 61000 = 50.63 USDT.
    "closes the whole position": Case(
        signal=SELL,
        account=holding(btc("0.00083")),
        price=D(61000),
        codes=("APPROVED",),
        quantity="0.00083",
        notional="50.63",
        risk="0",
        messages={"APPROVED": "sell 0.00083 BTC at about 61,000.00 = 50.63 USDT, closing the position"},
    ),
    # 0.000834 truncates to 0.00083; 0.000004 BTC cannot be sold on a 0.00001 step.
    "leaves dust below the step": Case(
        signal=SELL,
        account=holding(btc("0.000834")),
        price=D(61000),
        codes=("APPROVED", "DUST_LEFT"),
        quantity="0.00083",
        messages={"DUST_LEFT": "0.000004 BTC stays behind: below the amount step 0.00001"},
    ),
    # 0.00008 x 61000 = 4.88 < 5.
    "dust cannot be sold": Case(
        signal=SELL,
        account=holding(btc("0.00008")),
        price=D(61000),
        codes=("POSITION_BELOW_MIN",),
        messages={
            "POSITION_BELOW_MIN": "dust: 0.00008 BTC held, 0.00008 sellable on the 0.00001 step = 4.88 USDT; "
            "the exchange needs 5.00 USDT and 0.00001 BTC"
        },
    ),
    "nothing to sell": Case(signal=SELL, codes=("NO_POSITION_TO_SELL",)),
    "closing is allowed while halted": Case(
        signal=SELL,
        account=holding(btc("0.00083"), trading_state=TradingState.HALTED, equity=D(80), peak_equity=D(120)),
        price=D(61000),
        codes=("APPROVED",),
        quantity="0.00083",
    ),
    "closing is allowed while reducing": Case(
        signal=SELL,
        account=holding(btc("0.00083"), trading_state=TradingState.REDUCING),
        price=D(61000),
        codes=("APPROVED",),
        quantity="0.00083",
    ),
    # Refusing an exit never reduces risk: the minimum confidence gates openings only.
    "a low-confidence sell still closes": Case(
        signal=replace(SELL, confidence=40), account=holding(btc("0.00083")), codes=("APPROVED",), quantity="0.00083"
    ),
}


@pytest.mark.parametrize("case", SELL_CASES.values(), ids=SELL_CASES.keys())
def test_sell_decisions(case: Case):
    decision = decide(case.signal, case.account, BTC, case.config, NOW, case.price)

    assert decision.codes == case.codes
    assert decision.approved == (case.quantity is not None)
    if decision.order is not None:
        assert decision.order.side == "sell"
        assert decision.order.quantity == D(case.quantity)
        assert decision.order.stop_loss is None
        if case.notional is not None:
            assert decision.order.notional == D(case.notional)
        if case.risk is not None:
            assert decision.order.risk_amount == D(case.risk)
    messages = {reason.code: reason.message for reason in decision.reasons}
    for code, message in case.messages.items():
        assert messages[code] == message


YESTERDAY = NOW - timedelta(days=1)
STATE_CASES = {
    "calm stays active": (ACCOUNT, TradingState.ACTIVE, None),
    # -3 realized of a 100 start: the 3% limit.
    "daily loss reduces": (
        holding(equity=D(97), realized_pnl_today=D(-3), last_loss_at=NOW),
        TradingState.REDUCING,
        "DAILY_LOSS_LIMIT",
    ),
    "still reducing the same day": (
        holding(equity=D(97), realized_pnl_today=D(-3), last_loss_at=NOW, trading_state=TradingState.REDUCING),
        TradingState.REDUCING,
        None,
    ),
    "a new day without losses reopens": (
        holding(equity=D(97), last_loss_at=YESTERDAY, trading_state=TradingState.REDUCING),
        TradingState.ACTIVE,
        "NEW_TRADING_DAY",
    ),
    "a new day that already lost stays reducing": (
        holding(equity=D(96), realized_pnl_today=D(-1), last_loss_at=NOW, trading_state=TradingState.REDUCING),
        TradingState.REDUCING,
        None,
    ),
    # 120 x 0.85 = 102.
    "drawdown halts": (holding(equity=D(102), peak_equity=D(120)), TradingState.HALTED, "MAX_DRAWDOWN"),
    "drawdown halts a reducing account": (
        holding(equity=D(100), peak_equity=D(120), trading_state=TradingState.REDUCING),
        TradingState.HALTED,
        "MAX_DRAWDOWN",
    ),
    "halted is never lifted automatically": (
        holding(trading_state=TradingState.HALTED, last_loss_at=YESTERDAY),
        TradingState.HALTED,
        None,
    ),
}


@pytest.mark.parametrize(("account", "state", "code"), STATE_CASES.values(), ids=STATE_CASES.keys())
def test_next_trading_state(account: AccountState, state: TradingState, code: str | None):
    new_state, reason = next_trading_state(account, RiskConfig(), NOW)

    assert new_state is state
    assert (reason.code if reason else None) == code


TRAILING = RiskConfig(trailing_stop_pct=D(2))


def test_trailing_stop_steps_up_and_exits():
    position = btc("0.00083")  # entry 60000, stop 58800, highest 60000
    # High 61000: 61000 x 0.98 = 59780.00.
    first = update_stops(position, D(61000), D(60200), D(60800), TRAILING, BTC)
    assert (first.highest_price, first.stop_loss, first.exit_price) == (D(61000), D("59780.00"), None)
    assert first.reasons[0].message == "trailing stop 2% below the high 61,000.00: 58,800.00 -> 59,780.00 USDT"
    position = replace(position, stop_loss=first.stop_loss, highest_price=first.highest_price)

    # A lower bar leaves both where they are.
    second = update_stops(position, D(60900), D(60000), D(60100), TRAILING, BTC)
    assert (second.highest_price, second.stop_loss, second.reasons) == (D(61000), D("59780.00"), ())

    # High 62345.67: x 0.98 = 61098.7566 -> rounded down to 61098.75.
    third = update_stops(position, D("62345.67"), D(61200), D(62000), TRAILING, BTC)
    assert third.stop_loss == D("61098.75")
    position = replace(position, stop_loss=third.stop_loss, highest_price=third.highest_price)

    # Low 61000 <= 61098.75: out at the stop.
    fourth = update_stops(position, D(61500), D(61000), D(61050), TRAILING, BTC)
    assert fourth.exit_price == D("61098.75")
    assert fourth.exit_reason is not None
    assert fourth.exit_reason.code == "STOP_HIT"
    assert fourth.stop_loss == D("61098.75")


@pytest.mark.parametrize(
    ("stop", "target", "bar", "code", "exit_price"),
    [
        (D(58800), D(63000), (D(63100), D(62000), D(62500)), "TAKE_PROFIT_HIT", D(63000)),
        # Both levels inside one bar: the stop is assumed first.
        (D(58800), D(61000), (D(61500), D(58000), D(60000)), "STOP_HIT", D(58800)),
        # The whole bar below the stop (a gap): the best it offered was its high.
        (D(58800), None, (D(58000), D(57000), D(57500)), "STOP_HIT", D(58000)),
        # Gap over the target: filled no worse than the bar's low.
        (D(58800), D(63000), (D(64000), D(63500), D(63800)), "TAKE_PROFIT_HIT", D(63500)),
        (D(58800), D(63000), (D(61000), D(59000), D(60000)), None, None),
    ],
)
def test_exits(stop, target, bar, code, exit_price):
    position = replace(btc("0.00083"), stop_loss=stop, take_profit=target)

    update = update_stops(position, *bar, RiskConfig(), BTC)

    assert (update.exit_reason.code if update.exit_reason else None) == code
    assert update.exit_price == exit_price


def test_a_trailing_stop_raised_above_the_close_exits_at_the_close():
    # 64000 x 0.98 = 62720 > close 61900: the new stop is already crossed.
    position = replace(btc("0.00083"), stop_loss=D("59780.00"), highest_price=D(61000))

    update = update_stops(position, D(64000), D(61500), D(61900), TRAILING, BTC)

    assert (update.stop_loss, update.exit_price) == (D("62720.00"), D(61900))
    assert [r.code for r in update.reasons] == ["STOP_RAISED", "STOP_HIT"]


def test_without_trailing_only_the_highest_price_moves():
    update = update_stops(btc("0.00083"), D(65000), D(60000), D(64000), RiskConfig(), BTC)

    assert (update.highest_price, update.stop_loss, update.reasons) == (D(65000), D(58800), ())


def test_config_overrides_from_json_values():
    config = RiskConfig.from_overrides(
        {
            "risk_per_trade_pct": "0.5",
            "max_open_positions": 3,
            "min_reward_risk": 2.0,
            "symbol_allowlist": "btc/usdt, ETH/USDT",
            "trailing_stop_pct": None,
            "cooldown_minutes": "0",
        }
    )

    assert config.risk_per_trade_pct == D("0.5")
    assert config.max_open_positions == 3
    assert config.min_reward_risk == D("2.0")
    assert config.symbol_allowlist == ("BTC/USDT", "ETH/USDT")
    assert config.trailing_stop_pct is None
    assert config.cooldown_minutes == 0
    assert RiskConfig.from_overrides({}) == RiskConfig()


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"risk_pct": 1}, r"unknown risk setting\(s\) risk_pct; allowed: risk_per_trade_pct, max_position_pct"),
        ({"risk_per_trade_pct": "lots"}, r"risk_per_trade_pct: must be a number"),
        ({"risk_per_trade_pct": True}, r"risk_per_trade_pct: must be a number"),
        ({"risk_per_trade_pct": "NaN"}, r"risk_per_trade_pct: must be a finite number"),
        ({"risk_per_trade_pct": 0}, r"risk_per_trade_pct: must be in \(0, 10\]"),
        ({"max_open_positions": 1.5}, r"max_open_positions: must be a whole number"),
        ({"max_open_positions": 0}, r"max_open_positions: must be in \[1, 100\]"),
        ({"min_confidence": 101}, r"min_confidence: must be in \[0, 100\]"),
        ({"default_stop_pct": 12}, r"default_stop_pct: must be in \[0.3, 10\]"),
        ({"max_stop_pct": "0.2"}, r"max_stop_pct: must be in \(0.3, 100\)"),
        ({"max_drawdown_pct": 100}, r"max_drawdown_pct: must be in \(0, 100\)"),
        ({"trailing_stop_pct": -1}, r"trailing_stop_pct: must be in \(0, 100\)"),
        ({"symbol_allowlist": 5}, r"symbol_allowlist: must be a list of symbols"),
    ],
)
def test_bad_overrides_name_the_setting(overrides, match):
    with pytest.raises(ValueError, match=match):
        RiskConfig.from_overrides(overrides)


def test_every_setting_is_explained():
    assert list(MEANINGS) == list(RiskConfig.__dataclass_fields__)


def test_a_gap_below_the_stop_fills_at_the_open_not_at_the_stop():
    position = OpenPosition(
        "BTC/USDT", Decimal("0.001"), Decimal("60000"), Decimal("58800"), Decimal("63000"), Decimal("60000")
    )
    gap_down = update_stops(
        position, Decimal("58500"), Decimal("57000"), Decimal("57500"), RiskConfig(), BTC, open_=Decimal("58000")
    )
    assert gap_down.exit_price == Decimal("58000")  # opened below the stop: the first price there is
    inside = update_stops(
        position, Decimal("60500"), Decimal("58700"), Decimal("59000"), RiskConfig(), BTC, open_=Decimal("60000")
    )
    assert inside.exit_price == Decimal("58800")
    gap_up = update_stops(
        position, Decimal("64000"), Decimal("63100"), Decimal("63500"), RiskConfig(), BTC, open_=Decimal("63200")
    )
    assert gap_up.exit_price == Decimal("63200")


def test_a_loss_stamped_after_the_decision_clock_counts_as_now_not_later():
    """A stop exit filled a moment after the decision's instant once read "61 of 60 cooldown minutes left"."""
    reason = cooldown_reason(holding(last_loss_at=NOW + timedelta(seconds=30)), DEFAULTS, NOW)
    assert reason is not None
    assert "60 of 60 cooldown minutes left" in reason.message


def test_the_minimum_stays_sellable_after_a_fee_taken_in_btc():
    # Issue 9, item 2: 0.12% of 100 USDT over the 1,189.45 stop distance = 0.0001008 -> 0.00010 BTC, below the
    # minimum. 0.00012 BTC would leave 0.00011988 after Binance's 0.1% fee in BTC: 0.00011 sellable = 4.67 USDT at the
    # stop, refused (-1013 NOTIONAL). 0.00013 leaves 0.00012987: 0.00012 sellable = 5.09 USDT >= 5.
    decision = decide(
        Proposal(entry_price=D("43624"), stop_loss=D("42434.55")),
        ACCOUNT,
        BTC,
        RiskConfig(risk_per_trade_pct=D("0.12")),
        NOW,
        D("43624"),
    )
    assert decision.approved
    assert decision.order is not None and decision.order.quantity == D("0.00013")
    sellable = (decision.order.quantity * (1 - BTC.fee_rate)).quantize(D("0.00001"), rounding="ROUND_DOWN")
    assert (sellable, (sellable * D("42434.55")).quantize(D("0.01"))) == (D("0.00012"), D("5.09"))
