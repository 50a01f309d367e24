"""What the watch pages show beside the watches themselves: the signal sources and timeframes a form offers, when
each watch runs next (on its market's clock), and what one run led to (its analysis, risk decision and order).

Reads only; the watches and their runs are created and changed through `app.services.watches` and
`app.services.watch_runs`, as the REST API and the CLI do.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ai.models import load_models
from ai.sources import LLM_PROVIDERS
from ai.strategies import STRATEGIES
from app.config import Settings
from app.models import Account, Analysis, Decision, Order, Trade, Watch, WatchRun
from app.services import Clock, system_clock
from app.services.pages import Page
from app.services.replay import replay_market
from app.services.run_history import RunView, list_runs
from app.services.watch_runs import market_for
from app.services.watches import WatchView
from exchanges.timeframes import TIMEFRAME_SECONDS, last_closed_bar_open, timeframe_duration


@dataclass(frozen=True)
class NextRun:
    """When the scheduler next runs a watch: `at` on its market's clock (the replay's time on the replay market,
    UTC), or `due` when the latest closed bar has no run yet (the next scheduler tick takes it)."""

    at: datetime | None
    due: bool
    market: str  # "replay", "store" or "ccxt:EXCHANGE"


@dataclass(frozen=True)
class RunOutcome:
    """A run with everything it led to, for one line a person reads."""

    run: WatchRun
    watch: Watch
    analysis: Analysis | None
    decision: Decision | None
    order: Order | None
    fills: list[Trade]


def source_choices() -> list[tuple[str, str, str]]:
    """(signal-source spec, label, group) of every source a watch may use alone: the rules strategies (free,
    offline), then each LLM provider's default model and every model of the project's model table (paid)."""
    table = load_models()
    rules = "Rules strategies (free, offline)"
    choices = [(f"rules:{name}", f"Rules: {name.replace('_', ' ')}", rules) for name in sorted(STRATEGIES)]
    for provider in LLM_PROVIDERS:
        name = "DeepSeek" if provider == "deepseek" else provider.capitalize()
        group = f"{name} models (paid per call)"
        choices.append((provider, f"{name}, default model ({table.default(provider)})", group))
        choices += [(f"{provider}:{model}", f"{name} {model}", group) for model in table.known(provider)]
    return choices


def timeframe_choices() -> list[str]:
    """Every timeframe a watch may run on, shortest first ("1m" ... "1M")."""
    return list(TIMEFRAME_SECONDS)


def next_runs(
    session: Session, settings: Settings, views: Iterable[WatchView], wall: Clock = system_clock
) -> dict[int, NextRun | None]:
    """Each watch's next run by id; None for a paused watch. The scheduler's rule (see `watch_runs.due_runs`): the
    latest bar closed `settle` seconds ago by the market's clock runs once, so the next run follows the close of the
    bar now forming. The replay's clock is read once for all the watches on it."""
    settle = timedelta(seconds=settings.scheduler.settle_seconds)
    clocks: dict[str, datetime] = {}
    result: dict[int, NextRun | None] = {}
    for view in views:
        watch = view.watch
        if not watch.enabled:
            result[watch.id] = None
            continue
        account = session.get(Account, watch.account_id) if watch.account_id is not None else None
        market = market_for(watch, account, settings.scheduler.market)
        if market not in clocks:
            clocks[market] = replay_market(session, settings, wall).clock.now() if market == "replay" else wall()
        bar = last_closed_bar_open(watch.timeframe, clocks[market] - settle)
        if watch.last_bar_at is None or bar > watch.last_bar_at:
            result[watch.id] = NextRun(None, True, market)
        else:
            result[watch.id] = NextRun(bar + 2 * timeframe_duration(watch.timeframe) + settle, False, market)
    return result


def run_outcome(session: Session, run: WatchRun) -> RunOutcome:
    """`run` with its watch, analysis, risk decision (for the watch's account), order and that order's fills."""
    watch = session.get(Watch, run.watch_id)
    assert watch is not None  # a run goes with its watch
    analysis = session.get(Analysis, run.analysis_id) if run.analysis_id is not None else None
    decision = None
    if analysis is not None:
        decision = session.scalars(
            select(Decision).where(Decision.analysis_id == analysis.id).order_by(Decision.id).limit(1)
        ).first()
    order = session.get(Order, run.order_id) if run.order_id is not None else None
    fills = (
        list(session.scalars(select(Trade).where(Trade.order_id == order.id).order_by(Trade.id)))
        if order is not None
        else []
    )
    return RunOutcome(run, watch, analysis, decision, order, fills)


def run_page(
    session: Session, user_id: int, watch_id: int, limit: int, before_id: int | None
) -> tuple[Page[RunView], dict[int, Order]]:
    """A page of one of the user's watches' runs (see `run_history.list_runs`) and the orders they placed, by id.
    `NotFoundError` (field `watch_id`) for a watch that is missing or not the user's."""
    page = list_runs(session, user_id, watch_id, limit, before_id)
    return page, run_orders(session, [view.run for view in page.items])


def run_orders(session: Session, runs: Iterable[WatchRun]) -> dict[int, Order]:
    """The orders `runs` placed, by order id, in one query."""
    order_ids = [run.order_id for run in runs if run.order_id is not None]
    if not order_ids:
        return {}
    return {order.id: order for order in session.scalars(select(Order).where(Order.id.in_(order_ids)))}
