"""In-memory stand-ins for the AI layer's protocols, for unit tests of the orchestration."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from ai.budget import BudgetCaps, BudgetScope, check_period_cap
from ai.cache import CachedResponse
from ai.providers.base import ProviderError, ProviderResponse, SignalRequest, Usage


class ScriptedProvider:
    """Answers each call with the next scripted response or error, and remembers the requests."""

    def __init__(self, name: str, script: list[ProviderResponse | ProviderError]) -> None:
        self.name = name
        self.script = list(script)
        self.requests: list[SignalRequest] = []

    def complete(self, request: SignalRequest) -> ProviderResponse:
        self.requests.append(request)
        step = self.script.pop(0)
        if isinstance(step, ProviderError):
            raise step
        return step


def answer(arguments: dict | None, problem: str | None = None, usage: Usage | None = None) -> ProviderResponse:
    return ProviderResponse(
        provider="deepseek",
        model="deepseek-flash",
        arguments=arguments,
        raw=f'{{"scripted": {arguments!r}}}',
        usage=usage or Usage(input_tokens=200, cache_read_tokens=1000, output_tokens=100),
        latency_ms=120,
        problem=problem,
    )


class MemoryCache:
    def __init__(self) -> None:
        self.entries: dict[str, CachedResponse] = {}

    def get(self, key: str) -> CachedResponse | None:
        return self.entries.get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
        return {key: self.entries[key] for key in keys if key in self.entries}

    def put(self, entry: CachedResponse) -> None:
        self.entries.setdefault(entry.key, entry)


@dataclass
class MemoryLedger:
    daily_spent: Decimal = Decimal(0)
    entries: dict[int, tuple[str, Decimal]] = field(default_factory=dict)

    def committed(self) -> Decimal:
        return sum((amount for _, amount in self.entries.values()), Decimal(0))

    def reserve(
        self, scope: BudgetScope, caps: BudgetCaps, amount: Decimal, provider: str, model: str, now: datetime
    ) -> int:
        check_period_cap("daily", caps.user_daily, self.committed(), amount)
        entry_id = len(self.entries) + 1
        self.entries[entry_id] = ("reserved", amount)
        return entry_id

    def settle(self, reservation_id: int, actual: Decimal, now: datetime) -> None:
        self.entries[reservation_id] = ("settled", actual)

    def release(self, reservation_id: int, now: datetime) -> None:
        self.entries[reservation_id] = ("released", Decimal(0))
