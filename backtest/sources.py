"""Signal sources for backtests: the same rules and LLM paths as live trading, asked at each decision bar."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ai import rules
from ai.actions import Action
from ai.budget import BudgetCaps, BudgetScope
from ai.context import build_context
from ai.facts import AccountFacts, ContextOptions, PositionFacts
from ai.indicators import IndicatorTable
from ai.outcome import AnalysisStatus, hold
from ai.signal import Signal
from ai.signals import SignalQuery, SignalServices, propose_signal
from ai.sources import SourceSpec


@dataclass(frozen=True)
class BarView:
    """What a source may know at the close of bar `index`: the account as it stands, nothing later."""

    index: int
    allowed_actions: tuple[Action, ...]
    position: PositionFacts | None
    account: AccountFacts


class BarSignalSource(Protocol):
    def active_bars(self, length: int) -> NDArray[np.bool_]:
        """A boolean mask of the bars where the source may propose something, whatever the account holds.

        The engine asks only there: quiet bars cost the loop almost nothing.
        """
        ...

    def signal_at(self, view: BarView) -> Signal: ...


class RulesSource:
    """A rules strategy, computed once over the whole history (causal) and read bar by bar."""

    def __init__(self, strategy: str, params: Mapping[str, object], candles: pd.DataFrame) -> None:
        self.prepared = rules.prepare(strategy, candles, params)

    def active_bars(self, length: int) -> NDArray[np.bool_]:
        active: NDArray[np.bool_] = self.prepared.action[:length] != 0  # numpy's stubs type `!=` as Any
        return active

    def signal_at(self, view: BarView) -> Signal:
        return rules.signal_at(self.prepared, view.index, view.allowed_actions)


@dataclass
class AiTally:
    decisions: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    cost_usd: Decimal = Decimal(0)
    failures: dict[str, int] = field(default_factory=dict)


class LlmSource:
    """An LLM (or replay) source: the live context builder and `propose_signal`, with budget and cache."""

    def __init__(
        self,
        chain: list[SourceSpec],
        indicators: IndicatorTable,
        higher_timeframe: IndicatorTable | None,
        options: ContextOptions,
        services: SignalServices,
        scope: BudgetScope,
        caps: BudgetCaps,
        on_answer: Callable[[int, Signal], None] | None = None,
    ) -> None:
        self.chain, self.indicators, self.higher = chain, indicators, higher_timeframe
        self.options, self.services, self.scope, self.caps = options, services, scope, caps
        self.tally = AiTally()
        self._on_answer = on_answer

    def active_bars(self, length: int) -> NDArray[np.bool_]:
        return np.ones(length, dtype=bool)

    def signal_at(self, view: BarView) -> Signal:
        context = build_context(self.indicators, view.index, view.position, view.account, self.options, self.higher)
        outcome = propose_signal(self.chain, SignalQuery(context, pd.DataFrame(), self.scope, self.caps), self.services)
        tally = self.tally
        tally.decisions += 1
        tally.cost_usd += outcome.cost_usd
        # A miss is any decision the cache could not answer: paid for, or (replay) not answered at all.
        if outcome.cached:
            tally.cache_hits += 1
        else:
            tally.cache_misses += 1
        if outcome.status is not AnalysisStatus.OK:
            code = outcome.reasons[0].code if outcome.reasons else outcome.status.value
            tally.failures[code] = tally.failures.get(code, 0) + 1
        if self._on_answer is not None:
            self._on_answer(view.index, outcome.signal)
        return outcome.signal


class JournalSource:
    """The answers an identical earlier AI run got, by bar: a re-run replays them without rebuilding contexts.

    Valid only for the same inputs (data, settings, provider, model, prompt and schema versions), which the
    caller guarantees by keying the journal on a fingerprint of all of them; the run is deterministic, so the
    account states, and with them the allowed actions, come out the same.
    """

    def __init__(self, answers: dict[int, Signal], decisions: int) -> None:
        self.answers = answers
        self.tally = AiTally(decisions=decisions, cache_hits=decisions)
        self._not_allowed = hold("The recorded action is not allowed now.")

    def active_bars(self, length: int) -> NDArray[np.bool_]:
        mask = np.zeros(length, dtype=bool)
        mask[[index for index in self.answers if index < length]] = True
        return mask

    def signal_at(self, view: BarView) -> Signal:
        signal = self.answers[view.index]
        return signal if signal.action in view.allowed_actions else self._not_allowed
