"""`watch`: add, list, edit, pause, resume and delete watches (a symbol analysed on every close of its timeframe)."""

import json

import click
from flask.cli import with_appcontext

from app.commands.cli import group
from app.commands.common import acting_user, parse_key_values, session, settings
from app.errors import shown
from app.models import RunStatus
from app.schemas.watches import WatchOut
from app.services import run_history, watch_runs, watches
from app.services.watches import KEEP, NewWatch, WatchChange, WatchView

SIGNALS_HELP = "deepseek[:MODEL], claude[:MODEL], rules:STRATEGY, replay[:PROVIDER[:MODEL]]; chain with '->'."
USER_HELP = "Whose watches (default: the only user)."


@group("watch")
def watch_group() -> None:
    """Watches: a symbol analysed on every close of its timeframe, advice only unless auto-execute is on."""


@watch_group.command("add")
@click.argument("symbol")
@click.option("--timeframe", default="1h", show_default=True, help="Runs on every close of this timeframe.")
@click.option("--signals", required=True, help=SIGNALS_HELP)
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="A rules strategy parameter.")
@click.option("--exchange", "exchange_id", default="binance", show_default=True)
@click.option("--account", "account_id", type=int, help="The account the risk manager judges signals for.")
@click.option("--max-cost", "max_cost_per_call_usd", metavar="USD", help="Cap on one paid call, in USD.")
@click.option("--daily-budget", "daily_budget_usd", metavar="USD", help="Cap on this watch's spend per day, in USD.")
@click.option("--auto-execute", is_flag=True, help="Place approved orders on the account (default: advice only).")
@click.option("--user", "email", help=USER_HELP)
@with_appcontext
def add_command(
    symbol: str,
    timeframe: str,
    signals: str,
    params: tuple[str, ...],
    exchange_id: str,
    account_id: int | None,
    max_cost_per_call_usd: str | None,
    daily_budget_usd: str | None,
    auto_execute: bool,
    email: str | None,
) -> None:
    """Watch SYMBOL: analyse it on every close of --timeframe with --signals."""
    request = NewWatch(
        symbol=symbol,
        timeframe=timeframe,
        signals=signals,
        exchange_id=exchange_id,
        params=parse_key_values(params, "--param"),
        account_id=account_id,
        max_cost_per_call_usd=max_cost_per_call_usd,
        daily_budget_usd=daily_budget_usd,
        auto_execute=auto_execute,
    )
    view = watches.create_watch(session(), settings(), acting_user(email).id, request)
    session().commit()
    click.echo(f"added {watch_line(view)}")
    for warning in view.warnings:
        click.echo(f"warning: {warning}")


@watch_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--user", "email", help=USER_HELP)
@with_appcontext
def list_command(as_json: bool, email: str | None) -> None:
    """The watches, one line each."""
    views = watches.watch_views(session(), acting_user(email).id)
    if as_json:
        click.echo(json.dumps([WatchOut.of(view).model_dump(mode="json") for view in views]))
        return
    if not views:
        click.echo("no watches yet")
    for view in views:
        click.echo(watch_line(view))


@watch_group.command("edit")
@click.argument("watch_id", metavar="ID", type=int)
@click.option("--signals", help=SIGNALS_HELP)
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Replaces the rules parameters.")
@click.option("--clear-params", is_flag=True, help="Back to the strategy's default parameters.")
@click.option("--account", "account_id", type=int, help="The account the risk manager judges signals for.")
@click.option("--no-account", is_flag=True, help="Judge no account's risk (advice only).")
@click.option("--max-cost", "max_cost_per_call_usd", metavar="USD", help="Cap on one paid call; 'none': no cap.")
@click.option("--daily-budget", "daily_budget_usd", metavar="USD", help="Cap per day; 'none': no cap.")
@click.option("--auto-execute/--advice-only", "auto_execute", default=None, help="Place approved orders, or not.")
@click.option("--user", "email", help=USER_HELP)
@with_appcontext
def edit_command(
    watch_id: int,
    signals: str | None,
    params: tuple[str, ...],
    clear_params: bool,
    account_id: int | None,
    no_account: bool,
    max_cost_per_call_usd: str | None,
    daily_budget_usd: str | None,
    auto_execute: bool | None,
    email: str | None,
) -> None:
    """Change a watch's signals, parameters, account, budgets or auto-execution."""
    if params and clear_params:
        raise click.UsageError("give --param or --clear-params, not both")
    if account_id is not None and no_account:
        raise click.UsageError("give --account or --no-account, not both")
    change = WatchChange(
        signals=KEEP if signals is None else signals,
        params=parse_key_values(params, "--param") if params else {} if clear_params else KEEP,
        account_id=None if no_account else KEEP if account_id is None else account_id,
        max_cost_per_call_usd=KEEP if max_cost_per_call_usd is None else max_cost_per_call_usd,
        daily_budget_usd=KEEP if daily_budget_usd is None else daily_budget_usd,
        auto_execute=KEEP if auto_execute is None else auto_execute,
    )
    view = watches.change_watch(session(), acting_user(email).id, watch_id, change)
    session().commit()
    click.echo(f"changed {watch_line(view)}")


@watch_group.command("pause")
@click.argument("watch_id", metavar="ID", type=int)
@click.option("--user", "email", help=USER_HELP)
@with_appcontext
def pause_command(watch_id: int, email: str | None) -> None:
    """Stop running a watch until it is resumed."""
    view = watches.pause_watch(session(), acting_user(email).id, watch_id)
    session().commit()
    click.echo(f"paused {watch_line(view)}")


@watch_group.command("resume")
@click.argument("watch_id", metavar="ID", type=int)
@click.option("--user", "email", help=USER_HELP)
@with_appcontext
def resume_command(watch_id: int, email: str | None) -> None:
    """Run a paused watch again from the next close."""
    view = watches.resume_watch(session(), acting_user(email).id, watch_id)
    session().commit()
    click.echo(f"resumed {watch_line(view)}")


@watch_group.command("delete")
@click.argument("watch_id", metavar="ID", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--user", "email", help=USER_HELP)
@with_appcontext
def delete_command(watch_id: int, yes: bool, email: str | None) -> None:
    """Delete a watch and its run history (the analyses it made are kept)."""
    user_id = acting_user(email).id
    view = watches.get_watch(session(), user_id, watch_id)
    if not yes:
        click.confirm(f"Delete {watch_line(view)}?", abort=True)
    watch = watches.delete_watch(session(), user_id, watch_id)
    label = f"#{watch.id} {watch.symbol} {watch.timeframe} via {watch.signal_source}"
    session().commit()
    click.echo(f"deleted watch {label}")


@watch_group.command("run")
@click.argument("watch_id", metavar="ID", type=int)
@click.option("--user", "email", help="Whose watch (default: the only user).")
@with_appcontext
def run_command(watch_id: int, email: str | None) -> None:
    """Run a watch now for its latest closed bar, once: a bar that already ran shows that run instead.

    Exits 1 when the run failed (its line says where and why)."""
    run = watch_runs.run_watch_now(session(), settings(), acting_user(email).id, watch_id)
    click.echo(run_history.run_summary(session(), run.id))
    if run.status is RunStatus.FAILED:
        raise SystemExit(1)


def watch_line(view: WatchView) -> str:
    """One watch on one line: what, when, how, with which account and budgets, and how its last run went."""
    watch, run = view.watch, view.last_run
    source = watch.signal_source
    if watch.signal_params:
        source += " (" + ", ".join(f"{key}={value}" for key, value in watch.signal_params.items()) + ")"
    account = f"account #{watch.account_id}" if watch.account_id is not None else "no account"
    max_cost = watch.max_cost_per_call_usd
    daily = watch.daily_budget_usd
    budgets = (
        f"{'no per-call cap' if max_cost is None else f'max {shown(max_cost)} USD per call'}, "
        f"{'no daily budget' if daily is None else f'{shown(daily)} USD per day'}"
    )
    if run is None:
        last = "never run"
    else:
        last = f"last run {run.bar_time:%Y-%m-%d %H:%M} UTC {run.status.value}"
        if run.error_code or run.error_message:
            last += f" ({': '.join(part for part in (run.error_code, run.error_message) if part)})"
    return (
        f"#{watch.id}  {watch.symbol} {watch.timeframe} on {watch.exchange_id}  {view.schedule}  {source}  {account}  "
        f"{budgets}  {'auto-execute' if watch.auto_execute else 'advice only'}  "
        f"{'enabled' if watch.enabled else 'paused'}  {last}"
    )
