"""The JSON forms of AI usage (spend by day, model, watch and API key) and of the budgets it counts against."""

from pydantic import BaseModel, Field

from app.errors import shown
from app.schemas.common import RequestModel
from app.services.usage import USAGE_DAYS_MAX, Budgets, Cap, Spend, UsageReport


class UsageQuery(RequestModel):
    days: int = Field(30, ge=1, le=USAGE_DAYS_MAX, description="UTC days back, today included")


class BudgetsQuery(RequestModel):
    """No parameters: an unknown one is refused rather than ignored."""


class SpendOut(BaseModel):
    key: str = Field(description="the day (YYYY-MM-DD), provider:model, or the watch's / key's id ('' for none)")
    label: str
    id: int | None = Field(description="the watch's or API key's id; None for days, models and 'none'")
    spent_usd: str = Field(description="settled cost plus reservations still open, USD")
    calls: int = Field(description="paid calls reserved (released ones count 0 USD)")

    @classmethod
    def of(cls, spend: Spend) -> "SpendOut":
        return cls(
            key=spend.key, label=spend.label, id=spend.record_id, spent_usd=shown(spend.spent_usd), calls=spend.calls
        )


class UsageOut(BaseModel):
    since: str = Field(description="start of the first UTC day counted, ISO-8601")
    until: str
    days: int
    total_usd: str
    by_day: list[SpendOut] = Field(description="every UTC day of the window, oldest first, zero days included")
    by_model: list[SpendOut]
    by_watch: list[SpendOut] = Field(description="id None: calls made outside any watch")
    by_api_key: list[SpendOut] = Field(description="id None: calls not made through an API key")
    analyses: int = Field(description="AI analyses in the window (rules analyses never call a model)")
    cached_analyses: int = Field(description="of those, answered from the response cache at no cost")
    cache_hit_rate: float | None = Field(description="cached_analyses / analyses, 0 to 1; None without analyses")

    @classmethod
    def of(cls, report: UsageReport) -> "UsageOut":
        return cls(
            since=report.since.isoformat(),
            until=report.until.isoformat(),
            days=report.days,
            total_usd=shown(report.total_usd),
            by_day=[SpendOut.of(s) for s in report.by_day],
            by_model=[SpendOut.of(s) for s in report.by_model],
            by_watch=[SpendOut.of(s) for s in report.by_watch],
            by_api_key=[SpendOut.of(s) for s in report.by_api_key],
            analyses=report.analyses,
            cached_analyses=report.cached_analyses,
            cache_hit_rate=report.cache_hit_rate,
        )


class CapOut(BaseModel):
    period: str = Field(description="'today' or 'this month' (UTC)")
    budget_usd: str | None = Field(description="the cap; None: no cap of its own (only the user's budget applies)")
    spent_usd: str = Field(description="settled plus still reserved since the period began")
    remaining_usd: str | None = Field(description="None when there is no cap")

    @classmethod
    def of(cls, cap: Cap) -> "CapOut":
        remaining = cap.remaining_usd
        return cls(
            period=cap.name,
            budget_usd=None if cap.budget_usd is None else shown(cap.budget_usd),
            spent_usd=shown(cap.spent_usd),
            remaining_usd=None if remaining is None else shown(remaining),
        )


class ApiKeyBudgetOut(BaseModel):
    id: int
    daily: CapOut
    monthly: CapOut


class BudgetsOut(BaseModel):
    daily: CapOut
    monthly: CapOut
    api_key: ApiKeyBudgetOut = Field(description="the calling key's own caps, counting only calls made through it")

    @classmethod
    def of(cls, budgets: Budgets) -> "BudgetsOut":
        user_day, user_month = budgets.user
        key_day, key_month = budgets.api_key
        return cls(
            daily=CapOut.of(user_day),
            monthly=CapOut.of(user_month),
            api_key=ApiKeyBudgetOut(id=budgets.api_key_id, daily=CapOut.of(key_day), monthly=CapOut.of(key_month)),
        )
