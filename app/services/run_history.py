"""What a watch's runs did, for people and front ends: one line per run (`run_summary`) and runs with their analysis
and risk decision (`RunView`), page by page."""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Account, Analysis, Decision, Order, RunStatus, Watch, WatchRun
from app.services.lookup import owned
from app.services.pages import Page, page_of
from exchanges.timeframes import timeframe_duration


@dataclass(frozen=True)
class RunView:
    """A run with what it produced: its analysis (if it got that far) and the risk decision on it (if the watch has
    an account)."""

    run: WatchRun
    analysis: Analysis | None
    decision: Decision | None


def run_summary(session: Session, run_id: int) -> str:
    """One line for a person: which watch (id, market, signal source), the run's bar (its open time), the signal,
    the risk decision and the order (or why an approved one was advice only), or where it failed, e.g.
    "run #12 watch #2 ETH/USDT 1h rules:ema_rsi_volume bar 2024-01-16 09:00 UTC: BUY (confidence 65); approved
    (APPROVED, SIZED); order sh1d10 buy 0.0196 at 2542.86 [closed]"."""
    run = session.get(WatchRun, run_id)
    if run is None:
        return f"run #{run_id}: no such run (a watch's runs go when the watch is deleted)"
    watch = session.get(Watch, run.watch_id)
    what = f" {watch.symbol} {watch.timeframe} {watch.signal_source}" if watch else ""
    head = f"run #{run.id} watch #{run.watch_id}{what} bar {run.bar_time:%Y-%m-%d %H:%M} UTC"
    if run.status is RunStatus.FAILED:
        return f"{head}: failed at {run.failed_step}: {run.error_code}: {run.error_message}"
    if run.status is not RunStatus.SUCCEEDED or run.analysis_id is None:
        return f"{head}: {run.status.value}"
    analysis = session.get(Analysis, run.analysis_id)
    assert analysis is not None  # analyses are deleted only with their user, and the run's watch with them
    signal = analysis.signal or {}
    text = f"{head}: {signal.get('action', '?')} (confidence {signal.get('confidence', '?')})"
    decision = session.scalar(select(Decision).where(Decision.analysis_id == analysis.id))
    if decision is not None and signal.get("action") != "HOLD":
        codes = ", ".join(str(reason.get("code")) for reason in decision.reasons[:2])
        text += f"; {'approved' if decision.approved else 'refused'} ({codes})"
        if decision.approved and run.order_id is None:
            text += f", advice only{_why_not_executed(session, watch, run)}"
    order = session.get(Order, run.order_id) if run.order_id is not None else None
    if order is not None:
        price = f" at {order.average_fill_price.normalize():f}" if order.average_fill_price is not None else ""
        filled = f"{order.filled_quantity.normalize():f}"
        text += f"; order {order.client_order_id} {order.side.value} {filled}{price} [{order.status.value}]"
    return text


def _why_not_executed(session: Session, watch: Watch | None, run: WatchRun) -> str:
    if watch is None or not watch.auto_execute or watch.account_id is None:
        return ""  # the watch gives advice: nothing to explain
    account = session.get(Account, watch.account_id)
    bar_close = run.bar_time + timeframe_duration(watch.timeframe)
    if account is not None and account.last_bar_at is not None and bar_close < account.last_bar_at:
        return f": the account has traded up to {account.last_bar_at:%Y-%m-%d %H:%M} UTC"
    return ""


def list_runs(session: Session, user_id: int, watch_id: int, limit: int, before_id: int | None) -> Page[RunView]:
    """A page of one of the user's watches' runs, newest first (see `app.services.pages.page_of`), each with its
    analysis and decision. Raises `NotFoundError` (field `watch_id`) for a watch that is missing or not the user's."""
    watch = owned(session, Watch, watch_id, user_id)
    page = page_of(session, select(WatchRun).where(WatchRun.watch_id == watch.id), WatchRun.id, limit, before_id)
    return Page(run_views(session, page.items), page.next_before_id)


def run_views(session: Session, runs: list[WatchRun]) -> list[RunView]:
    """`runs` with their analyses and decisions, read in two queries whatever the number of runs."""
    analysis_ids = [run.analysis_id for run in runs if run.analysis_id is not None]
    analyses: dict[int, Analysis] = {}
    decisions: dict[int, Decision] = {}
    if analysis_ids:
        analyses = {a.id: a for a in session.scalars(select(Analysis).where(Analysis.id.in_(analysis_ids)))}
        # One decision per (analysis, account), and a run's analysis is judged for its watch's one account.
        query = select(Decision).where(Decision.analysis_id.in_(analysis_ids)).order_by(Decision.id)
        for decision in session.scalars(query):
            decisions.setdefault(decision.analysis_id, decision)
    return [
        RunView(
            run,
            analyses.get(run.analysis_id) if run.analysis_id is not None else None,
            decisions.get(run.analysis_id) if run.analysis_id is not None else None,
        )
        for run in runs
    ]
