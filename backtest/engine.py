"""The backtest engine: live trading's path replayed over history, bar by bar.

At the close of every `every`-th bar the signal source proposes, the risk manager decides (same code as live),
and an approved market order fills at the NEXT bar's open, worsened by slippage, with fees, through the same
paper book as paper trading. Stops and take-profits are checked inside each bar against its high and low (the stop
first when both are touched; a gap fills at the open). A position still open at the end is closed at the last
close. Only events touch Decimal arithmetic; quiet bars are a few float comparisons, which keeps it fast.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ai.actions import Action
from ai.facts import AccountFacts, PositionFacts, allowed_actions
from backtest.results import EquityCurve, TradeRecord
from backtest.sources import BarSignalSource, BarView
from exchanges.base import ExchangeError, OrderRequest, OrderState
from exchanges.book import AccountBook, Fill
from exchanges.markets import MarketCatalog, MarketRules
from exchanges.orders import OrderSide, OrderType
from exchanges.paper import PaperExchange
from exchanges.timeframes import timeframe_duration
from risk import (
    AccountState,
    MarketLimits,
    OpenPosition,
    RiskConfig,
    TradingState,
    decide,
    exit_quantity,
    next_trading_state,
    update_stops,
)

PROGRESS_EVERY_BARS = 2_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class BacktestSettings:
    symbol: str
    timeframe: str
    starting_balance: Decimal = Decimal(100)
    fee_rate: Decimal = Decimal("0.001")
    slippage_bps: Decimal = Decimal(0)
    every: int = 1
    risk: RiskConfig = field(default_factory=RiskConfig)

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"every must be at least 1, got {self.every}")
        if self.starting_balance <= 0:
            raise ValueError(f"balance must be positive, got {self.starting_balance}")
        if not Decimal(0) <= self.fee_rate < Decimal("0.1"):
            raise ValueError(f"fee_rate {self.fee_rate} must be in [0, 0.1)")
        if not Decimal(0) <= self.slippage_bps <= Decimal(1000):
            raise ValueError(f"slippage_bps {self.slippage_bps} must be in [0, 1000]")


@dataclass
class EngineResult:
    trades: list[TradeRecord]
    curve: EquityCurve
    fees_paid: Decimal
    decisions: int  # bars at which the source was asked
    signals: int  # BUY/SELL proposals it made
    refusals: dict[str, int]  # risk reason code -> count, for proposals the risk manager refused
    rejected_orders: int  # approved orders the paper exchange could not fill (e.g. price moved past the balance)
    # Trading-state switches (daily loss limit, drawdown kill switch): bar close time, new state, the reason's text.
    state_changes: list[tuple[datetime, TradingState, str]] = field(default_factory=list)


@dataclass
class _OpenTrade:
    entry_time: datetime
    entry_price: Decimal
    quantity: Decimal
    entry_fee: Decimal
    stop_loss: Decimal | None
    take_profit: Decimal | None
    highest: Decimal


def run_engine(
    candles: pd.DataFrame,
    market: MarketRules,
    settings: BacktestSettings,
    source: BarSignalSource,
    first_decision: int,
    progress: Callable[[float], None] | None = None,
) -> EngineResult:
    """Run over `candles` (float OHLCV, UTC index of bar open times); decisions start at `first_decision`."""
    n = len(candles)
    if not 0 <= first_decision < n - 1:
        raise ValueError(f"no bar to decide on: {n} candles, first decision at bar {first_decision}")
    return _Run(candles, market, settings, source, first_decision, progress).run()


class _Run:
    def __init__(
        self,
        candles: pd.DataFrame,
        market: MarketRules,
        settings: BacktestSettings,
        source: BarSignalSource,
        first_decision: int,
        progress: Callable[[float], None] | None,
    ) -> None:
        self.settings, self.source, self.first, self.progress = settings, source, first_decision, progress
        self.symbol, self.market = market.symbol, market
        self.open = candles["open"].to_numpy(np.float64)
        self.high = candles["high"].to_numpy(np.float64)
        self.low = candles["low"].to_numpy(np.float64)
        self.close = candles["close"].to_numpy(np.float64)
        index = pd.DatetimeIndex(candles.index).as_unit("ns")
        self.times = index.asi8  # ns since the epoch, UTC
        self.curve_times = index.tz_convert(UTC).tz_localize(None).to_numpy()
        self.bar_length = timeframe_duration(settings.timeframe)
        self.limits = MarketLimits.of(market, settings.fee_rate)
        self.book = AccountBook(market.quote, settings.starting_balance)
        # The paper exchange fills at whatever the engine sets here: the next open, a stop, the last close.
        self.fill_price = Decimal(0)
        self._now = datetime.min.replace(tzinfo=UTC)
        self.exchange = PaperExchange(
            self.book,
            MarketCatalog("backtest", {market.symbol: market}),
            lambda symbol: self.fill_price,
            lambda: self._now,
            fee_rate=settings.fee_rate,
            slippage_bps=settings.slippage_bps,
        )
        self.trades: list[TradeRecord] = []
        self.open_trade: _OpenTrade | None = None
        self.pending: OrderRequest | None = None
        self.pending_levels: tuple[Decimal | None, Decimal | None] = (None, None)  # its stop and take-profit
        self.fees = Decimal(0)
        self.decisions = self.signals = self.rejected = 0
        self.refusals: dict[str, int] = {}
        self.realized_by_day: dict[object, Decimal] = {}
        self.last_loss_at: datetime | None = None
        self.peak_equity = settings.starting_balance
        self.state = TradingState.ACTIVE
        self.state_changes: list[tuple[datetime, TradingState, str]] = []
        self.cash_f = float(settings.starting_balance)
        self.quantity_f = 0.0
        self.changes: list[tuple[int, float, float]] = [(0, self.cash_f, 0.0)]  # (bar, cash, quantity) from then on
        self.peak = self.cash_f
        self.peak_checked = 0
        self.stop_f = -np.inf
        self.target_f = np.inf

    def run(self) -> EngineResult:
        n, every, first = len(self.close), self.settings.every, self.first
        trailing = self.settings.risk.trailing_stop_pct is not None
        asks = self.source.active_bars(n).copy()
        asks[:first] = False
        asks[n - 1] = False  # nothing fills after the last bar
        if every > 1:
            asks &= (np.arange(n) - first) % every == 0
        self.decisions = int(((np.arange(n) >= first) & ((np.arange(n) - first) % every == 0)).sum()) - 1
        ask, low, high = asks.tolist(), self.low, self.high
        for chunk in range(first, n, PROGRESS_EVERY_BARS):
            for i in range(chunk, min(chunk + PROGRESS_EVERY_BARS, n)):
                if self.pending is not None:
                    self._fill_pending(i)
                if self.open_trade is not None and (trailing or low[i] <= self.stop_f or high[i] >= self.target_f):
                    self._manage_stops(i)
                if ask[i]:
                    self._decide(i)
            if self.progress is not None:
                self.progress(min(chunk + PROGRESS_EVERY_BARS, n) / n)
        if self.open_trade is not None:
            self._close_at(n - 1, _decimal(self.close[n - 1]), "end_of_data")
        equity, holding = self._marked_curve(n)
        curve = EquityCurve(times=self.curve_times, equity=equity, close=self.close, in_position=holding)
        return EngineResult(
            self.trades,
            curve,
            self.fees,
            self.decisions,
            self.signals,
            self.refusals,
            self.rejected,
            self.state_changes,
        )

    def _marked_curve(self, n: int) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """Equity at every close from the cash and quantity in force after each event (they only change there)."""
        starts = np.array([i for i, _, _ in self.changes], dtype=np.int64)
        spans = np.diff(np.append(starts, n))
        cash = np.repeat([c for _, c, _ in self.changes], spans)
        quantity = np.repeat([q for _, _, q in self.changes], spans)
        return cash + quantity * self.close, quantity > 0

    def _peak_equity(self, i: int) -> Decimal:
        """The highest equity at any close up to bar i, extended lazily since the last look."""
        since, cash, quantity = self.peak_checked, self.cash_f, self.quantity_f
        if i >= since:
            marked = cash + quantity * self.close[since : i + 1]
            self.peak = max(self.peak, float(marked.max()))
            self.peak_checked = i + 1
        return _decimal(self.peak)

    # --- events -------------------------------------------------------------------------------------------------

    def _decide(self, i: int) -> None:
        close = _decimal(self.close[i])
        position = self.book.positions.get(self.symbol)
        facts = PositionFacts(position.quantity, position.entry_price) if position else None
        equity = self.book.equity({self.symbol: close})
        account = AccountFacts(equity, self.book.cash, self.book.quote_currency, self.market.min_notional)
        view = BarView(i, allowed_actions(facts, account, close), facts, account)
        signal = self.source.signal_at(view)
        if signal.action is Action.HOLD:
            return
        self.signals += 1
        now = self._bar_close(i)
        state = self._account_state(equity, self._peak_equity(i), now)
        target, reason = next_trading_state(state, self.settings.risk, now)
        if target is not self.state:
            self.state = target
            self.state_changes.append((now, target, str(reason) if reason is not None else ""))
            state = self._account_state(equity, self._peak_equity(i), now)
        verdict = decide(signal, state, self.limits, self.settings.risk, now, close)
        if not verdict.approved:
            for reason in verdict.reasons:
                self.refusals[str(reason.code)] = self.refusals.get(str(reason.code), 0) + 1
            return
        spec = verdict.order
        assert spec is not None  # Decision guarantees it: an approved decision always carries its order
        self.pending = OrderRequest(self.symbol, OrderSide(spec.side), OrderType.MARKET, spec.quantity, f"bt{i}")
        self.pending_levels = (spec.stop_loss, spec.take_profit)

    def _fill_pending(self, i: int) -> None:
        request, self.pending = self.pending, None
        assert request is not None  # run() calls this only while an order is pending
        self._now = _utc(self.times[i])
        self.fill_price = _decimal(self.open[i])
        try:
            state = self.exchange.create_order(request)
        except ExchangeError:
            self.rejected += 1
            return
        fill = self._record(state)
        self.fees += fill.fee
        if request.side is OrderSide.BUY:
            stop, target = self.pending_levels
            assert state.average_price is not None  # the book recorded a fill, so the order reported its price
            self.open_trade = _OpenTrade(
                self._now, state.average_price, fill.quantity, fill.fee, stop, target, state.average_price
            )
            self.stop_f = float(stop) if stop is not None else -np.inf
            self.target_f = float(target) if target is not None else np.inf
        else:
            self._record_exit(fill, "signal")
        self._sync_floats(i)

    def _manage_stops(self, i: int) -> None:
        trade = self.open_trade
        assert trade is not None  # run() manages stops only while a trade is open
        position = OpenPosition(
            self.symbol, trade.quantity, trade.entry_price, trade.stop_loss, trade.take_profit, trade.highest
        )
        update = update_stops(
            position,
            _decimal(self.high[i]),
            _decimal(self.low[i]),
            _decimal(self.close[i]),
            self.settings.risk,
            self.limits,
            open_=_decimal(self.open[i]),
        )
        trade.highest, trade.stop_loss = update.highest_price, update.stop_loss
        self.stop_f = float(update.stop_loss) if update.stop_loss is not None else -np.inf
        if update.exit_price is not None:
            code = update.exit_reason.code if update.exit_reason else "STOP_HIT"
            self._close_at(i, update.exit_price, "take_profit" if code == "TAKE_PROFIT_HIT" else "stop")

    def _close_at(self, i: int, price: Decimal, reason: str) -> None:
        """Exit inside bar `i` at `price` (a stop, a target, or the last close), without slippage on the level."""
        self._now = _utc(self.times[i])
        self.fill_price = price
        quantity = exit_quantity(self.book.positions[self.symbol].quantity, self.limits)
        state = self.exchange.create_order(
            OrderRequest(self.symbol, OrderSide.SELL, OrderType.MARKET, quantity, f"bt{i}x")
        )
        fill = self._record(state)
        self.fees += fill.fee
        self._record_exit(fill, reason)
        self._sync_floats(i)

    def _record(self, state: OrderState) -> Fill:
        """The exchange reports the fill; the book records it, as for any account."""
        fill = self.book.record_fill(state, self.market)
        if fill is None:
            raise RuntimeError(f"backtest: order {state.client_order_id} reported no fill")
        return fill

    def _record_exit(self, fill: Fill, reason: str) -> None:
        trade, self.open_trade = self.open_trade, None
        assert trade is not None  # only a sell that closes the open trade gets here
        assert fill.realized_pnl is not None  # the book sets it on every sell's fill
        self.stop_f, self.target_f = -np.inf, np.inf
        day = fill.executed_at.date()
        self.realized_by_day[day] = self.realized_by_day.get(day, Decimal(0)) + fill.realized_pnl
        if fill.realized_pnl < 0:
            self.last_loss_at = fill.executed_at
        self.trades.append(
            TradeRecord(
                entry_time=trade.entry_time,
                exit_time=fill.executed_at,
                entry_price=trade.entry_price,
                exit_price=fill.price,
                quantity=fill.quantity,
                pnl=fill.realized_pnl,
                fees=trade.entry_fee + fill.fee,
                exit_reason=reason,
            )
        )

    def _sync_floats(self, i: int) -> None:
        """Mirror the book in floats for the per-bar checks; the change takes effect from bar i's close."""
        self._peak_equity(i - 1)
        self.cash_f = float(self.book.cash)
        position = self.book.positions.get(self.symbol)
        self.quantity_f = float(position.quantity) if position else 0.0
        if self.changes[-1][0] == i:
            self.changes[-1] = (i, self.cash_f, self.quantity_f)
        else:
            self.changes.append((i, self.cash_f, self.quantity_f))

    def _account_state(self, equity: Decimal, peak: Decimal, now: datetime) -> AccountState:
        trade = self.open_trade
        positions: tuple[OpenPosition, ...] = ()
        if trade is not None:
            held = self.book.positions[self.symbol].quantity
            positions = (
                OpenPosition(self.symbol, held, trade.entry_price, trade.stop_loss, trade.take_profit, trade.highest),
            )
        return AccountState(
            equity=equity,
            free_quote=self.book.cash,
            open_positions=positions,
            realized_pnl_today=self.realized_by_day.get(now.date(), Decimal(0)),
            peak_equity=max(peak, equity),
            trading_state=self.state,
            last_loss_at=self.last_loss_at,
            currency=self.book.quote_currency,
        )

    def _bar_close(self, i: int) -> datetime:
        return _utc(self.times[i]) + self.bar_length


def _utc(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(value) // 1000)


def _decimal(value: float) -> Decimal:
    # str() of a float is its shortest round-trip form: 4315.32, not 4315.31999999999970896.
    return Decimal(str(float(value)))
