"""Explain one analysis after the fact: what the signal source saw, its answer, what it cost, the risk decision
with its coded reasons and numbers, and the order with its fills; enough to reproduce the decision.

What is stored about the input: a rules strategy reads only closed candles, which stay in the candle store. A model
request is stored by its cache key only (sha256 of provider, model, prompt and schema versions, the system and user
prompts, the answer schema, the tool name and the output-token cap; see `ai/cache.py`); the response cache entry
under that key holds the answer (raw text and parsed arguments), never the prompt. The prompt is rebuilt from the
candles in the store and the account's balance and position: the rebuilt request is the one the model saw exactly
when its cache key equals the stored one, and a `replay` source answers it from the cache without paying anyone.
"""

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from app.models import Account, Analysis, Decision, Order, ResponseCacheEntry, Trade, User, Watch, WatchRun
from app.services import Session
from app.services.lookup import owned


@dataclass(frozen=True)
class OrderTrail:
    order: Order
    fills: list[Trade]


@dataclass(frozen=True)
class DecisionTrail:
    decision: Decision
    account_name: str
    quote_currency: str  # the currency of every order value below
    orders: list[OrderTrail]


@dataclass(frozen=True)
class Reproduction:
    """The `analyze` request that rebuilds the analysis's input from the candle store (it records a new analysis;
    with an account, a new decision; an order only if asked to execute)."""

    user_email: str
    symbol: str
    timeframe: str
    exchange_id: str
    signals: str  # rules:STRATEGY, or replay:PROVIDER:MODEL so a model's answer comes from the cache only
    until: datetime  # the bar's open time
    account_id: int | None
    # The rules parameters: the watch's (as they are now) for a watch's run; None when they were not recorded (the
    # `--param` values of a one-off analysis are not stored; the strategy's defaults reproduce a run without them).
    rule_params: dict[str, str] | None
    expected_cache_key: str | None  # a model's rebuilt request must have this key to be the one it saw


@dataclass(frozen=True)
class Explanation:
    analysis: Analysis
    request_stored: bool  # whether the exact input (prompt) is on record; not today, see the module docstring
    input_note: str  # what is stored about the input and how to rebuild it, in one paragraph
    cache_entry: ResponseCacheEntry | None
    raw_responses: list[str]
    decisions: list[DecisionTrail]
    runs: list[WatchRun]
    reproduction: Reproduction


def explain_analysis(session: Session, analysis_id: int, user_id: int) -> Explanation:
    """Everything on record about analysis `analysis_id` of `user_id`; `NotFoundError` (field `analysis_id`) when
    it is missing or someone else's. Reads only."""
    analysis = owned(session, Analysis, analysis_id, user_id)
    cache_entry = session.get(ResponseCacheEntry, analysis.cache_key) if analysis.cache_key else None
    decisions = [
        _trail(session, decision)
        for decision in session.scalars(
            select(Decision).where(Decision.analysis_id == analysis.id).order_by(Decision.id)
        )
    ]
    runs = list(session.scalars(select(WatchRun).where(WatchRun.analysis_id == analysis.id).order_by(WatchRun.id)))
    return Explanation(
        analysis=analysis,
        request_stored=False,
        input_note=_input_note(analysis, cache_entry),
        cache_entry=cache_entry,
        raw_responses=_raw_responses(analysis.raw_response),
        decisions=decisions,
        runs=runs,
        reproduction=_reproduction(session, analysis),
    )


def _trail(session: Session, decision: Decision) -> DecisionTrail:
    account = session.get(Account, decision.account_id)
    orders = session.scalars(select(Order).where(Order.decision_id == decision.id).order_by(Order.id))
    return DecisionTrail(
        decision=decision,
        account_name=account.name if account else "",
        quote_currency=account.quote_currency if account else "",
        orders=[
            OrderTrail(order, list(session.scalars(select(Trade).where(Trade.order_id == order.id).order_by(Trade.id))))
            for order in orders
        ],
    )


def _raw_responses(stored: str | None) -> list[str]:
    """The raw provider answers (a JSON list of strings); text that is not such a list is shown as it is."""
    if not stored:
        return []
    try:
        parsed = json.loads(stored)
    except ValueError:
        return [stored]
    if isinstance(parsed, list) and all(isinstance(item, str) for item in parsed):
        return parsed
    return [stored]


def _bar(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _input_note(analysis: Analysis, entry: ResponseCacheEntry | None) -> str:
    candles = (
        f"{analysis.symbol} {analysis.timeframe} candles on {analysis.exchange_id} up to the bar opening "
        f"{_bar(analysis.bar_time)}"
    )
    if analysis.provider == "rules":
        return (
            f"A rules strategy ({analysis.model}) reads only the {candles}; there is no prompt. The candles are kept "
            "in the candle store, so the reproduction recomputes the signal from them."
        )
    if analysis.cache_key is None:
        return (
            f"No request was sent to a model (status {analysis.status.value}"
            f"{f', {analysis.error_code}' if analysis.error_code else ''}), so nothing was seen or stored."
        )
    held = (
        f"the response cache holds its answer (stored {_bar(entry.created_at)}), not the prompt"
        if entry is not None
        else "its response cache entry is gone (cleared since)"
    )
    return (
        f"The prompt is not stored. Stored: the request's cache key {analysis.cache_key} (sha256 of provider, model, "
        f"prompt version {analysis.prompt_version}, schema version {analysis.schema_version}, system and user "
        f"prompts, answer schema, tool and output-token cap) and the raw answer(s); {held}. The prompt is rebuilt "
        f"from the {candles} (and the higher timeframe's) in the store, plus the account's balance and position, "
        "which are not stored as they were: the rebuilt request is the one the model saw exactly when its cache key "
        f"equals {analysis.cache_key}; replayed, it is answered from the cache only, at no cost."
    )


def _reproduction(session: Session, analysis: Analysis) -> Reproduction:
    user = session.get(User, analysis.user_id)
    if analysis.provider == "rules":
        signals = f"rules:{analysis.model}" if analysis.model else analysis.signal_source
    elif analysis.model:
        signals = f"replay:{analysis.provider}:{analysis.model}"
    else:
        signals = analysis.signal_source
    watch = session.get(Watch, analysis.watch_id) if analysis.watch_id is not None else None
    params = {name: str(value) for name, value in watch.signal_params.items()} if watch is not None else None
    return Reproduction(
        user_email=user.email if user else "",
        symbol=analysis.symbol,
        timeframe=analysis.timeframe,
        exchange_id=analysis.exchange_id,
        signals=signals,
        until=analysis.bar_time,
        account_id=analysis.account_id,
        rule_params=params if analysis.provider == "rules" else {},
        expected_cache_key=analysis.cache_key if analysis.provider != "rules" else None,
    )
