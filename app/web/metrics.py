"""`/metrics`: the service's figures in the Prometheus text format, for a Prometheus server to scrape.

A custom collector reads the current figures from the database through `services.metrics` on every scrape, so each
gunicorn worker (and any process) answers the same, and the separate scheduler's work is counted too. No process
metrics are exported: they would describe whichever worker happened to answer.

Exported (all aggregates of the whole installation). Every figure read from rows that can be deleted is a gauge,
never a counter or a histogram: a deleted watch takes its runs along, a deleted user their analyses and accounts
(with the accounts' orders), so a count of rows on record can fall, and Prometheus requires a counter (and a
histogram's buckets and count) never to decrease. Read these with `delta()`/`deriv()` or as they are, not `rate()`.
- `steadyhand_watch_runs_finished{status}` (gauge): finished runs on record by outcome, `succeeded` or `failed`
- `steadyhand_watch_runs_active{status}` (gauge): runs `queued` or `running` now
- `steadyhand_watch_run_duration_last_24h_runs{le}` (gauge): runs on record that finished in the last 24 hours
  (`RUN_LATENCY_WINDOW`) and took at most `le` seconds (finished_at - started_at), cumulative like a histogram's
  buckets, `le="+Inf"` counting them all; `histogram_quantile(0.95, steadyhand_watch_run_duration_last_24h_runs)`
  reads a quantile from it
- `steadyhand_watch_run_duration_last_24h_seconds` (gauge): the sum of those runs' durations
- `steadyhand_llm_spend_usd{provider,model}` (gauge): AI spend in USD of the analyses on record (a cache hit costs 0)
- `steadyhand_analyses{provider,model}` (gauge): analyses on record
- `steadyhand_orders{status,side}` (gauge): orders by their current status and side
- `steadyhand_scheduler_leader{holder}` (gauge): 1 while the "scheduler" lease is unexpired (holder = host:pid of
  the leader), else 0 with an empty holder
- `steadyhand_notification_outbox{status}` (gauge): deliveries `pending` or `failed`

No authentication for now: nothing here is secret or per user (no ids, e-mails, symbols or amounts of one user),
only counts and sums over everyone. Put it behind the reverse proxy's access rules if the totals themselves matter.
"""

from collections.abc import Callable, Iterator

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
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

        finished = GaugeMetricFamily(
            "steadyhand_watch_runs_finished",
            "Finished watch runs on record, by outcome (a gauge: deleting a watch deletes its runs).",
            labels=["status"],
        )
        active = GaugeMetricFamily("steadyhand_watch_runs_active", "Watch runs queued or running.", labels=["status"])
        for status, count in figures.runs_by_status.items():
            (finished if status in _FINISHED else active).add_metric([status], count)
        yield finished
        yield active

        seconds = figures.run_seconds
        by_duration = GaugeMetricFamily(
            "steadyhand_watch_run_duration_last_24h_runs",
            "Watch runs on record that finished in the last 24 hours and took at most le seconds (cumulative).",
            labels=["le"],
        )
        for bound in RUN_LATENCY_BUCKETS:
            by_duration.add_metric([floatToGoString(bound)], sum(value <= bound for value in seconds))
        by_duration.add_metric(["+Inf"], len(seconds))
        yield by_duration
        yield GaugeMetricFamily(
            "steadyhand_watch_run_duration_last_24h_seconds",
            "Sum of the durations of the watch runs on record that finished in the last 24 hours.",
            value=sum(seconds),
        )

        spend = GaugeMetricFamily(
            "steadyhand_llm_spend_usd",
            "AI spend in USD of the analyses on record (a gauge: deleting a user deletes their analyses).",
            labels=["provider", "model"],
        )
        analyses = GaugeMetricFamily(
            "steadyhand_analyses",
            "Analyses on record (a gauge: deleting a user deletes their analyses).",
            labels=["provider", "model"],
        )
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
