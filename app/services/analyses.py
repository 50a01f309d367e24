"""The one analysis use-case, shared by the scheduler, the web UI, the REST API and the CLI:
candles -> indicator context -> signal (budget, cache, provider, validation) -> recorded Analysis
-> (with an account) risk decision -> (with `execute`) order."""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

import pandas as pd
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ai.budget import BudgetCaps, BudgetScope
from ai.context import build_context
from ai.facts import AccountFacts, ContextOptions, MarketContext, PositionFacts
from ai.outcome import SignalOutcome
from ai.signals import SignalQuery, SignalServices, propose_signal
from ai.sources import SourceSpec
from app.config import Settings
from app.errors import InvalidInputError
from app.models import Account, Analysis, AnalysisStatus, BudgetLedgerEntry, User, Watch
from app.persistence.account_book import open_position
from app.services import Clock, api_keys, markets, system_clock, usage
from app.services import analysis_inputs as inputs
from app.services.analysis_inputs import AnalysisRequest as AnalysisRequest  # re-exported: the use-case's input
from app.services.analysis_inputs import parse_until as parse_until
from app.services.analysis_inputs import signal_chain as signal_chain
from app.services.credentials import signal_services
from app.services.exchanges import account_market
from app.services.lookup import owned
from app.services.pages import Page, page_of
from app.services.replay import replay_market
from app.services.steps import StepLog
from app.services.trading import TradeResult, check_account_clock, decide_and_execute
from exchanges.candles import Candle
from exchanges.timeframes import timeframe_duration


@dataclass
class AnalysisResult:
    analysis: Analysis
    outcome: SignalOutcome
    trade: TradeResult | None = None
    # What the reader should know about the candles the context came from (gaps inside the lookback), one sentence each.
    warnings: list[str] = field(default_factory=list)


def run_analysis(
    session: Session,
    settings: Settings,
    request: AnalysisRequest,
    services: SignalServices,
    now: Clock = system_clock,
    steps: StepLog | None = None,
) -> AnalysisResult:
    """Analyse one symbol for `request.user_id` and record the analysis (and, with an account, the decision).

    Everything in `request` is validated before any candle is read or any provider is called; bad input raises
    `InvalidInputError` naming the field and value, a missing or foreign watch or account `NotFoundError`, an API key
    (`request.api_key_id`) that is not the user's `InvalidInputError` (field `api_key`), a model the key may not ask
    `ForbiddenError` (code `MODEL_NOT_ALLOWED`); the key's own daily and monthly USD caps then apply with the user's
    (a call over either is a budget refusal, recorded like one). A signal
    that could not be obtained (budget refusal, every source failed) is not an error: it is recorded with its
    status and reasons. Commits the analysis before the risk decision, and each trading step after it (see
    `decide_and_execute`). `steps`, when given, times the candles, context, signal and trade steps and names the
    one an exception left.
    """
    steps = steps or StepLog()
    if request.execute and request.account_id is None:
        raise InvalidInputError("execute needs an account: orders go to one named account", field="execute")
    chain = inputs.signal_chain(request.signals)
    rule_params = inputs.rule_params_for(chain, request.rule_params)
    markets.check_timeframe(request.timeframe)
    rules = markets.market_rules(session, settings, request.exchange_id, request.symbol)
    user = session.get(User, request.user_id)
    if user is None:
        raise InvalidInputError(f"no user #{request.user_id}", field="user")
    watch = owned(session, Watch, request.watch_id, user.id) if request.watch_id is not None else None
    account = _account(session, user.id, request.account_id or (watch.account_id if watch else None))
    api_key = api_keys.usable_key(session, user.id, request.api_key_id, chain)

    with steps.step("candles"):
        candles = inputs.candles_for(session, settings, request, now())
    last_open = candles.index[-1].to_pydatetime()
    bar_duration = timeframe_duration(request.timeframe)
    if request.account_id is not None and not request.advise_if_behind:
        # Before any provider is paid: trading at a bar the account has already passed is refused up front.
        check_account_clock(account, last_open + bar_duration, request.execute)
    with steps.step("context"):
        context, warnings = _context(session, request, candles, chain, account, rules.min_notional)
    caps = BudgetCaps(
        per_request=request.max_cost_usd or (watch.max_cost_per_call_usd if watch else None),
        user_daily=user.daily_budget_usd,
        user_monthly=user.monthly_budget_usd,
        watch_daily=watch.daily_budget_usd if watch else None,
        key_daily=api_key.daily_budget_usd if api_key else None,
        key_monthly=api_key.monthly_budget_usd if api_key else None,
    )
    scope = BudgetScope(user.id, watch.id if watch else None, api_key.id if api_key else None)
    query = SignalQuery(context, candles, scope, caps, rule_params)
    # Nothing is written yet: ending the read transaction returns the connection to the pool instead of holding it
    # for the seconds a provider may take (a pool of scheduled runs would otherwise run out of connections).
    session.commit()
    with steps.step("signal"):
        outcome = propose_signal(chain, query, services)
    steps.note("signal_status", f"{outcome.status.value} {outcome.signal.action.value}")
    if outcome.cost_usd > 0:
        usage.notify_budget_crossings(session, user, outcome.cost_usd, now())
    analysis = _record(request, user.id, account.id, watch, context.bar_time, outcome)
    session.add(analysis)
    session.flush()
    if outcome.ledger_entry_ids:
        session.execute(
            update(BudgetLedgerEntry)
            .where(BudgetLedgerEntry.id.in_(outcome.ledger_entry_ids))
            .values(analysis_id=analysis.id)
        )
    session.commit()
    trade = None
    if request.account_id is not None:
        bar = Candle(
            last_open,
            *(inputs.exact_decimal(candles[name].iloc[-1]) for name in ("open", "high", "low", "close", "volume")),
        )
        with steps.step("trade"):
            trade = decide_and_execute(
                session,
                settings,
                account,
                analysis,
                outcome.signal,
                bar,
                bar_duration,
                inputs.bar_source(session, settings, request, now()),
                request.execute,
                now,
                advise_if_behind=request.advise_if_behind,
            )
    return AnalysisResult(analysis, outcome, trade, warnings)


def _context(
    session: Session,
    request: AnalysisRequest,
    candles: pd.DataFrame,
    chain: list[SourceSpec],
    account: Account,
    min_notional: Decimal,
) -> tuple[MarketContext, list[str]]:
    """The context the signal source reads, and warnings about the candles it came from."""
    # Only a model reads the higher timeframe's lines; a rules strategy decides on the candles alone.
    asks_a_model = any(spec.kind != "rules" for spec in chain)
    higher = inputs.higher_timeframe(session, request, candles.index[-1]) if asks_a_model else None
    warnings = inputs.gap_warnings(candles, request.timeframe)
    if higher is not None:
        warnings += inputs.gap_warnings(higher, markets.HIGHER_TIMEFRAME[request.timeframe])
    position = open_position(session, account.id, request.symbol)
    context = build_context(
        inputs.indicators(candles),
        len(candles) - 1,
        PositionFacts(position.quantity, position.entry_price) if position else None,
        AccountFacts(
            equity=account.current_balance
            + (position.quantity * Decimal(str(candles["close"].iloc[-1])) if position else 0),
            free_quote=account.current_balance,
            quote_currency=account.quote_currency,
            min_order_notional=min_notional,
        ),
        ContextOptions(symbol=request.symbol, timeframe=request.timeframe, blind=request.blind),
        higher_timeframe=inputs.indicators(higher) if higher is not None else None,
    )
    return context, warnings


def _account(session: Session, user_id: int, account_id: int | None) -> Account:
    """The given account, or the user's first one: the context always describes a real account."""
    if account_id is not None:
        return owned(session, Account, account_id, user_id)
    account = session.scalar(select(Account).where(Account.user_id == user_id).order_by(Account.id).limit(1))
    if account is None:
        raise InvalidInputError("this user has no account yet: create a paper account first", field="account_id")
    return account


def _record(
    request: AnalysisRequest,
    user_id: int,
    account_id: int,
    watch: Watch | None,
    bar_time: datetime,
    outcome: SignalOutcome,
) -> Analysis:
    usage = outcome.usage
    return Analysis(
        user_id=user_id,
        watch_id=watch.id if watch else None,
        account_id=account_id,
        exchange_id=request.exchange_id,
        symbol=request.symbol,
        timeframe=request.timeframe,
        bar_time=bar_time,
        signal_source=request.signals,
        provider=outcome.provider,
        model=outcome.model,
        prompt_version=outcome.prompt_version,
        schema_version=outcome.schema_version,
        cache_key=outcome.cache_key,
        status=outcome.status,
        error_code=outcome.reasons[0].code if outcome.reasons else None,
        error_message="; ".join(reason.message for reason in outcome.reasons) or None,
        input_tokens=usage.input_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        output_tokens=usage.output_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        cost_usd=outcome.cost_usd,
        original_cost_usd=outcome.original_cost_usd,
        latency_ms=outcome.latency_ms,
        cached=outcome.cached,
        raw_response=json.dumps(outcome.raw_responses) if outcome.raw_responses else None,
        signal=outcome.signal.model_dump(mode="json"),
    )


@dataclass(frozen=True)
class AnalyzeNow:
    """An analysis asked for now, by a person or a script: the latest closed bar (or the one opened at `until`) of the
    market the account trades on (a live account's exchange, else the configured market)."""

    user_id: int
    symbol: str
    timeframe: str
    signal_source: str  # a source spec or fallback chain
    model: str | None = None  # the model of the chain's one LLM source, when the spec does not name it
    params: Mapping[str, str] = field(default_factory=dict)
    max_cost_usd: Decimal | None = None  # required when a paid model is asked
    account_id: int | None = None
    execute: bool = False
    exchange_id: str = "binance"
    until: datetime | None = None
    api_key_id: int | None = None  # the API key it came through: its caps and allowed models apply


def analyze_latest(
    session: Session,
    settings: Settings,
    ask: AnalyzeNow,
    services: SignalServices | None = None,
    wall: Clock = system_clock,
) -> AnalysisResult:
    """`run_analysis` for `ask` on the market its account trades on, with the user's signal services.

    Raises `InvalidInputError` for a `model` that does not fit the source (field `model`), a paid model asked without
    `max_cost_usd` (field `max_cost_usd`), or what `run_analysis` refuses; `NotFoundError` for an account that is not
    the user's; `ForbiddenError` `MODEL_NOT_ALLOWED` for a model the API key may not use. A budget refusal is not an
    error: the analysis is recorded `REFUSED` with a `BUDGET_EXCEEDED` reason carrying the cap, spent and estimate.
    """
    signals = _with_model(ask.signal_source, ask.model)
    if any(spec.is_paid for spec in inputs.signal_chain(signals)) and ask.max_cost_usd is None:
        raise InvalidInputError(
            f'max_cost_usd is required when the signal source asks a paid model ("{signals}"): '
            "the most this one analysis may cost, in USD",
            field="max_cost_usd",
        )
    market = settings.scheduler.market
    if ask.account_id is not None:
        market = account_market(owned(session, Account, ask.account_id, ask.user_id), market)
    request = AnalysisRequest(
        user_id=ask.user_id,
        symbol=ask.symbol.strip().upper(),
        timeframe=ask.timeframe.strip(),
        signals=signals,
        exchange_id=ask.exchange_id.strip().lower(),
        rule_params=dict(ask.params),
        account_id=ask.account_id,
        market=market,
        max_cost_usd=ask.max_cost_usd,
        until=ask.until,
        execute=ask.execute,
        api_key_id=ask.api_key_id,
    )
    # The replay's bars are those of its own clock: "now" there is the replay's time, as for a watch's run now.
    clock = replay_market(session, settings, wall).clock.now if market == "replay" else wall
    return run_analysis(session, settings, request, services or signal_services(session, settings, ask.user_id), clock)


def _with_model(signals: str, model: str | None) -> str:
    """`signals` with `model` given to its one LLM source ("deepseek" and "deepseek-chat": "deepseek:deepseek-chat")."""
    chain = inputs.signal_chain(signals)
    if model is None:
        return signals
    model = model.strip()
    llm = [spec for spec in chain if spec.kind != "rules"]
    if len(llm) != 1 or llm[0].model is not None or not model:
        raise InvalidInputError(
            f'model applies to a signal source with one LLM and no model named, got model "{model}" for "{signals}"',
            field="model",
        )
    return " -> ".join(str(replace(spec, model=model)) if spec is llm[0] else str(spec) for spec in chain)


@dataclass(frozen=True)
class AnalysisFilter:
    """Which of a user's analyses to list; None matches any."""

    symbol: str | None = None
    timeframe: str | None = None
    status: str | None = None  # an AnalysisStatus value: ok, invalid, refused or failed (any case)
    watch_id: int | None = None
    account_id: int | None = None


def list_analyses(
    session: Session, user_id: int, filters: AnalysisFilter, limit: int, before_id: int | None = None
) -> Page[Analysis]:
    """The user's analyses matching `filters`, newest first, `limit` per page from `before_id` (see `pages.page_of`).
    Raises `InvalidInputError` (field `status`) for a status that is not one of `AnalysisStatus`."""
    query = select(Analysis).where(Analysis.user_id == user_id)
    if filters.symbol is not None:
        query = query.where(Analysis.symbol == filters.symbol.strip().upper())
    if filters.timeframe is not None:
        query = query.where(Analysis.timeframe == filters.timeframe.strip())
    if filters.status is not None:
        try:
            status = AnalysisStatus(filters.status.strip().lower())
        except ValueError:
            allowed = ", ".join(member.value for member in AnalysisStatus)
            raise InvalidInputError(
                f'status must be one of {allowed}, got "{filters.status}"', field="status"
            ) from None
        query = query.where(Analysis.status == status)
    if filters.watch_id is not None:
        query = query.where(Analysis.watch_id == filters.watch_id)
    if filters.account_id is not None:
        query = query.where(Analysis.account_id == filters.account_id)
    return page_of(session, query, Analysis.id, limit, before_id)


def recent_analyses(session: Session, user_id: int, limit: int = 10) -> list[Analysis]:
    """The user's latest analyses, newest first."""
    query = select(Analysis).where(Analysis.user_id == user_id).order_by(Analysis.id.desc()).limit(limit)
    return list(session.scalars(query))
