"""`explain ANALYSIS_ID`: what the signal source saw, its answer, the cost, the risk decision and the order."""

import json
from decimal import Decimal
from typing import Any

import click
from flask.cli import with_appcontext

from app.commands.cli import command
from app.commands.common import acting_user, session
from app.schemas.explain import DecisionTrailOut, ExplanationOut, Money, OrderTrailOut
from app.services.explain import explain_analysis


@command("explain")
@click.argument("analysis_id", type=int)
@click.option("--user", "email", help="Whose analysis (default: the only user).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def explain_command(analysis_id: int, email: str | None, as_json: bool) -> None:
    """Explain analysis ANALYSIS_ID: its input, answer, cost, risk decision (reasons and numbers) and order."""
    explanation = ExplanationOut.of(explain_analysis(session(), analysis_id, acting_user(email).id))
    click.echo(json.dumps(explanation.to_json()) if as_json else as_text(explanation))


def _money(value: Money | None) -> str:
    return "-" if value is None else f"{value.amount} {value.currency}".rstrip()


def _usd(value: Money) -> str:
    """AI costs are fractions of a cent: six decimals."""
    return f"{Decimal(value.amount):.6f} USD"


def _values(values: dict[str, Any]) -> str:
    return ", ".join(f"{name}={value}" for name, value in values.items())


def as_text(out: ExplanationOut) -> str:
    model = f" {out.model}" if out.model else ""
    lines = [
        f"analysis #{out.analysis_id}: {out.symbol} {out.timeframe} on {out.exchange}, bar opening "
        f"{out.bar_time[:16].replace('T', ' ')} UTC, via {out.signal_source} ({out.provider}{model}) [{out.status}]",
        f"  recorded {out.created_at[:19].replace('T', ' ')} UTC; account {_ref(out.account_id)}; "
        f"watch {_ref(out.watch_id)}",
    ]
    if out.error_code:
        lines.append(f"  {out.error_code}: {out.error_message}")
    lines += _input_lines(out)
    lines += _answer_lines(out)
    cost = out.cost
    usage = cost.usage
    cached = f"cached, the original call cost {_usd(cost.original_cost)}" if cost.original_cost else "not cached"
    lines += [
        "cost",
        f"  {_usd(cost.cost)} ({cached}); tokens {usage.input_tokens:,} in, {usage.cache_read_tokens:,} cache read, "
        f"{usage.cache_write_tokens:,} cache write, {usage.output_tokens:,} out ({usage.reasoning_tokens:,} "
        f"reasoning); latency {'-' if cost.latency_ms is None else f'{cost.latency_ms} ms'}",
    ]
    if not out.decisions:
        lines.append("risk decision: none (no account judged this signal)")
    for decision in out.decisions:
        lines += _decision_lines(decision)
    for run in out.runs:
        steps = ", ".join(f"{step.get('step')} {step.get('ms')} ms {step.get('outcome')}" for step in run.steps)
        failed = f"; failed at {run.failed_step}: {run.error_code} {run.error_message}" if run.failed_step else ""
        lines.append(f"watch run #{run.id} of watch #{run.watch_id} ({run.trigger}) [{run.status}]: {steps}{failed}")
    return "\n".join(lines)


def _ref(record_id: int | None) -> str:
    return "-" if record_id is None else f"#{record_id}"


def _input_lines(out: ExplanationOut) -> list[str]:
    seen = out.input
    lines = ["what it saw", f"  {seen.note}"]
    entry = seen.cache_entry
    if entry is not None:
        lines.append(
            f"  cache entry {entry.key}: {entry.provider} {entry.model}, prompt {entry.prompt_version}, schema "
            f"{entry.schema_version}, paid {_usd(entry.cost)} on {entry.created_at[:16].replace('T', ' ')} UTC"
            + (f", problem {entry.problem}" if entry.problem else "")
        )
    reproduce = seen.reproduce
    lines.append(f"  reproduce: {reproduce.command}")
    if reproduce.rule_params is None:
        lines.append("  (rule parameters given with --param are not recorded; the command uses the defaults)")
    if reproduce.expected_cache_key:
        lines.append(
            f"  (the rebuilt request is the one the model saw if its cache key is {reproduce.expected_cache_key})"
        )
    return lines


def _answer_lines(out: ExplanationOut) -> list[str]:
    lines = ["its answer"]
    signal = out.signal or {}
    if signal:
        lines.append(
            f"  {signal.get('action')}  confidence {signal.get('confidence')}  entry {signal.get('entry_price')}  "
            f"stop {signal.get('stop_loss')}  target {signal.get('take_profit')}  "
            f"horizon {signal.get('horizon_bars')} bar(s)"
        )
        lines.append(f"  reasoning: {signal.get('reasoning')}")
        if signal.get("key_factors"):
            lines.append(f"  key factors: {', '.join(signal['key_factors'])}")
    else:
        lines.append("  no signal recorded")
    lines += [f"  raw response {n}: {raw}" for n, raw in enumerate(out.raw_responses, 1)]
    return lines


def _decision_lines(decision: DecisionTrailOut) -> list[str]:
    lines = [
        f"risk decision #{decision.id} for account #{decision.account_id} ({decision.account_name}, "
        f"{decision.quote_currency}): {'APPROVED' if decision.approved else 'REFUSED'}"
    ]
    for reason in decision.reasons:
        lines.append(f"  {reason.code}: {reason.message}")
        if reason.values:
            lines.append(f"    {_values(reason.values)}")
    if decision.order_spec:
        lines.append(f"  order spec: {_values(decision.order_spec)}")
    if not decision.orders:
        lines.append("  no order" + (" (not executed)" if decision.approved else ""))
    for order in decision.orders:
        lines += _order_lines(order)
    return lines


def _order_lines(order: OrderTrailOut) -> list[str]:
    exchange_id = f", exchange id {order.exchange_order_id}" if order.exchange_order_id else ""
    lines = [
        f"order #{order.id} {order.client_order_id}{exchange_id}: {order.type} {order.side} "
        f"{order.filled_quantity}/{order.quantity} {order.symbol} [{order.status}]",
        f"  average price {_money(order.average_price)}, stop {_money(order.stop_loss)}, "
        f"target {_money(order.take_profit)}, fee {_money(order.fee)}",
    ]
    if order.error_code:
        lines.append(f"  {order.error_code}: {order.error_message}")
    for fill in order.fills:
        valued = f" (= {_money(fill.fee_value)})" if fill.fee_value and fill.fee_value != fill.fee else ""
        pnl = f", realized PnL {_money(fill.realized_pnl)}" if fill.realized_pnl else ""
        lines.append(
            f"  fill #{fill.id} {fill.executed_at[:16].replace('T', ' ')} UTC: {fill.side} {fill.quantity} at "
            f"{_money(fill.price)} = {_money(fill.value)}, fee {_money(fill.fee)}{valued}{pnl}"
        )
    return lines
