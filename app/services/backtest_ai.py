"""The AI half of preparing a backtest: its signal source (journal replay, response cache, provider), the cost
estimate and the allowance check, the fingerprint that lets an identical re-run replay its answers."""

from dataclasses import asdict
from decimal import Decimal

import pandas as pd
from sqlalchemy.orm import Session

from ai.actions import Action
from ai.budget import BudgetCaps, BudgetScope
from ai.context import build_context
from ai.facts import AccountFacts, ContextOptions
from ai.indicators import WARMUP_BARS, IndicatorTable, compute_indicators
from ai.models import default_model, model_info
from ai.pricing import estimate_run_cost
from ai.prompts import PROMPT_VERSION
from ai.signal import SCHEMA_VERSION, Signal
from ai.signals import PROVIDER_KEY_VARIABLES
from ai.sources import SourceSpec
from app.config import Settings
from app.errors import BudgetRefusedError, InvalidInputError
from app.models import BacktestJournal, User
from app.persistence import engine_of
from app.persistence.response_cache import PreloadedCache, SqlResponseCache
from app.services import markets
from app.services.backtest_setup import BacktestRequest, Prepared, RunInputs, parse_number
from app.services.credentials import provider_keys, signal_services
from backtest.fingerprint import run_fingerprint
from backtest.results import AiUsage
from backtest.runner import contamination_warning
from backtest.sources import JournalSource, LlmSource


def prepare_ai(session: Session, settings: Settings, inputs: RunInputs, spec: SourceSpec) -> Prepared:
    """Wire an AI signal source for a validated run: a journal of an identical earlier run replayed for $0, or the
    response cache loaded in one query in front of the provider (paid) or alone (cache only, replay).

    Raises `InvalidInputError` (field `max_cost`) for a paid run without an allowance and `BudgetRefusedError` when
    the estimated cost is above it; nothing is called or written before that.
    """
    request, candles, market = inputs.request, inputs.candles, inputs.market
    first, decisions, described, warnings, preview = (
        inputs.first_decision,
        inputs.decisions,
        inputs.described,
        inputs.warnings,
        inputs.preview,
    )
    provider = spec.provider or spec.kind
    model = spec.model or default_model(provider)
    replay = SourceSpec("replay", provider=provider, model=model)
    paid = not request.cache_only and spec.kind != "replay"
    blind = True if request.blind is None else request.blind
    described["blind"] = blind
    options = ContextOptions(request.symbol, request.timeframe, blind=blind)
    higher = _higher_timeframe(session, request, candles) if not request.data_file else None
    ignored = ("max_cost", "cache_only", "signals", "user_id", "api_key_id")
    fingerprint = run_fingerprint(
        {k: v for k, v in asdict(request).items() if k not in ignored},
        candles,
        provider,
        model,
        len(higher) if higher is not None else 0,
        PROMPT_VERSION,
        SCHEMA_VERSION,
    )
    described.update(model=model, fingerprint=fingerprint)
    warning = contamination_warning(model, model_info(provider, model).knowledge_cutoff, candles.index[-1].date())
    if warning:
        warnings.append(warning)
    journal = session.get(BacktestJournal, fingerprint)
    if journal is not None:
        answers = {int(index): Signal.model_validate(signal) for index, signal in journal.answers.items()}
        preview.update(estimated_cost_usd="0", paid=False, cached_entries=journal.decisions, journal=True)
        replayed = journal.decisions
        return Prepared(
            inputs, JournalSource(answers, replayed), lambda: AiUsage(replayed, replayed, 0, Decimal(0), None), spec
        )

    # Only a run without a journal builds contexts, and needs the indicators for them.
    indicators = IndicatorTable.from_frame(compute_indicators(candles))
    account = AccountFacts(Decimal(100), Decimal(100), market.quote, market.min_notional)
    sample = build_context(indicators, first, None, account, options).text
    estimate = estimate_run_cost(provider, model, sample, decisions)
    cache = PreloadedCache(SqlResponseCache(engine_of(session)), provider, model)
    preview.update(estimated_cost_usd=str(estimate), paid=paid, cached_entries=len(cache))
    if paid:
        _check_allowance(request, provider, decisions, estimate)
        if provider not in provider_keys(session, settings, request.user_id):
            variable = PROVIDER_KEY_VARIABLES[provider]
            raise InvalidInputError(
                f"{provider} has no API key: set {variable} or store your own {provider} key, "
                "or answer from the cache only (cache_only)",
                field="signals",
            )
    user = session.get(User, request.user_id)
    if user is None:
        raise InvalidInputError(f"no user #{request.user_id}", field="user")
    services = signal_services(session, settings, request.user_id)
    services.cache = cache
    caps = BudgetCaps(user_daily=user.daily_budget_usd, user_monthly=user.monthly_budget_usd)
    answered: dict[int, Signal] = {}

    def remember(index: int, signal: Signal) -> None:
        if signal.action is not Action.HOLD:
            answered[index] = signal

    source = LlmSource(
        [spec if paid else replay], indicators, higher, options, services, BudgetScope(user.id), caps, remember
    )

    def usage() -> AiUsage:
        tally = source.tally
        return AiUsage(
            tally.decisions, tally.cache_hits, tally.cache_misses, tally.cost_usd, estimate if paid else None
        )

    def keep_journal(session: Session) -> None:
        """Only a run whose every decision was answered is worth replaying."""
        if source.tally.failures or source.tally.decisions != decisions:
            return
        session.merge(
            BacktestJournal(
                fingerprint=fingerprint,
                provider=provider,
                model=model,
                decisions=decisions,
                answers={str(index): signal.model_dump(mode="json") for index, signal in answered.items()},
                original_cost_usd=source.tally.cost_usd,
            )
        )

    return Prepared(
        inputs,
        source,
        usage,
        spec,
        paid=paid,
        failures=lambda: dict(source.tally.failures),
        after_success=keep_journal,
    )


def _check_allowance(request: BacktestRequest, provider: str, decisions: int, estimate: Decimal) -> None:
    if request.max_cost is None:
        raise InvalidInputError(
            f"this run may call {provider} {decisions:,} times (about ${estimate:.4f}): allow it with a max_cost in "
            "USD that covers the estimate, or answer from the cache only (cache_only)",
            field="max_cost",
            details={"estimate_usd": str(estimate)},
        )
    limit = parse_number(request.max_cost, "max_cost", "a positive amount in USD", lambda v: v > 0)
    if estimate > limit:
        raise BudgetRefusedError(
            f"estimated AI cost ${estimate:.4f} for {decisions:,} decisions is above max_cost ${limit:.4f}",
            cap=limit,
            spent=Decimal(0),
            estimate=estimate,
            field="max_cost",
        )


def _higher_timeframe(session: Session, request: BacktestRequest, candles: pd.DataFrame) -> IndicatorTable | None:
    higher = markets.HIGHER_TIMEFRAME.get(request.timeframe)
    if higher is None:
        return None
    frame = markets.stored_range(session, request.exchange_id, request.symbol, higher)
    frame = frame[frame.index <= candles.index[-1]]
    return IndicatorTable.from_frame(compute_indicators(frame)) if len(frame) > WARMUP_BARS else None
