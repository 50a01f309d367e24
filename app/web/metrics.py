"""`/metrics`: the service's figures in the Prometheus text format, for a Prometheus server to scrape.

A custom collector reads the current figures from the database through `services.metrics` on every scrape, so each
gunicorn worker (and any process) answers the same, and the separate scheduler's work is counted too. No process
metrics are exported: they would describe whichever worker happened to answer.

Exported (all aggregates of the whole installation):
- `steadyhand_watch_runs_finished_total{status}`: runs that ended, `succeeded` or `failed` (a counter; it falls
  back only when a deleted watch takes its runs along, which Prometheus treats as a reset)
- `steadyhand_watch_runs_active{status}`: runs `queued` or `running` now
- `steadyhand_watch_run_duration_seconds`: histogram of finished_at - started_at over the runs that finished in
  the last 24 hours (`RUN_LATENCY_WINDOW`): a window, not a cumulative count, so read its buckets as they are
  (e.g. `histogram_quantile(0.95, steadyhand_watch_run_duration_seconds_bucket)`), not through `rate()`
- `steadyhand_llm_spend_usd_total{provider,model}` and `steadyhand_analyses_total{provider,model}`: the AI spend in
  USD (sum of each analysis's cost; a cache hit costs 0) and the number of analyses
- `steadyhand_orders{status,side}`: orders by their current status and side
- `steadyhand_scheduler_leader{holder}`: 1 while the "scheduler" lease is unexpired (holder = host:pid of the
  leader), else 0 with an empty holder
- `steadyhand_notification_outbox{status}`: deliveries `pending` or `failed`

No authentication for now: nothing here is secret or per user (no ids, e-mails, symbols or amounts of one user),
only counts and sums over everyone. Put it behind the reverse proxy's access rules if the totals themselves matter.
"""

from collections.abc import Callable, Iterator

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from app.extensions import db_session, limiter
from app.models.enums import RunStatus
from app.services import system_clock
from app.services.metrics import RUN_LATENCY_BUCKETS, MetricsSnapshot, metrics_snapshot

blueprint = Blueprint("metrics", __name__)

_FINISHED = (RunStatus.SUCCEEDED.value, RunStatus.FAILED.value)


class DatabaseCollector(Collector):
    """Turns one `MetricsSnapshot`, read when Prometheus scrapes, into metric families."""

    def __init__(self, snapshot: Callable[[], MetricsSnapshot]) -> None:
        self._snapshot = snapshot

    def describe(self) -> list[Metric]:
        return []  # registering must not query the database

    def collect(self) -> Iterator[Metric]:
        figures = self._snapshot()

        finished = CounterMetricFamily(
            "steadyhand_watch_runs_finished", "Watch runs that ended, by outcome.", labels=["status"]
        )
        active = GaugeMetricFamily("steadyhand_watch_runs_active", "Watch runs queued or running.", labels=["status"])
        for status, count in figures.runs_by_status.items():
            (finished if status in _FINISHED else active).add_metric([status], count)
        yield finished
        yield active

        seconds = figures.run_seconds
        buckets = [(floatToGoString(bound), sum(value <= bound for value in seconds)) for bound in RUN_LATENCY_BUCKETS]
        yield HistogramMetricFamily(
            "steadyhand_watch_run_duration_seconds",
            "Duration of the watch runs that finished in the last 24 hours (a window, not cumulative).",
            buckets=[*buckets, ("+Inf", len(seconds))],
            sum_value=sum(seconds),
        )

        spend = CounterMetricFamily(
            "steadyhand_llm_spend_usd", "AI spend in USD (sum of analysis costs).", labels=["provider", "model"]
        )
        analyses = CounterMetricFamily("steadyhand_analyses", "Analyses recorded.", labels=["provider", "model"])
        for row in figures.spend:
            spend.add_metric([row.provider, row.model], float(row.cost_usd))
            analyses.add_metric([row.provider, row.model], row.analyses)
        yield spend
        yield analyses

        orders = GaugeMetricFamily("steadyhand_orders", "Orders by current status and side.", labels=["status", "side"])
        for (status, side), count in figures.orders.items():
            orders.add_metric([status, side], count)
        yield orders

        leader = GaugeMetricFamily(
            "steadyhand_scheduler_leader", "1 while the scheduler lease is held and unexpired.", labels=["holder"]
        )
        leader.add_metric([figures.leader.holder], 1 if figures.leader.leading else 0)
        yield leader

        outbox = GaugeMetricFamily(
            "steadyhand_notification_outbox", "Notification deliveries pending or failed.", labels=["status"]
        )
        for status, count in figures.outbox.items():
            outbox.add_metric([status], count)
        yield outbox


@blueprint.get("/metrics")
@limiter.exempt
def metrics() -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(lambda: metrics_snapshot(db_session(), system_clock())))
    return Response(generate_latest(registry), status=200, headers={"Content-Type": CONTENT_TYPE_LATEST})
