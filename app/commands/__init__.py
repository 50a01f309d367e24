"""Command-line tools: `flask --app wsgi COMMAND` (see README). Each is thin: options -> a service -> print."""

from flask import Flask

from app.commands.accounts import account_group
from app.commands.analysis import analyze_command
from app.commands.api_keys import api_key_group, create_api_key_command
from app.commands.backtests import backtest_command, backtest_delete_command
from app.commands.bootstrap import bootstrap_command
from app.commands.cache import cache_group
from app.commands.common import one_line_errors
from app.commands.credentials import credentials_group
from app.commands.data import import_candles_command, seed_demo_command
from app.commands.explain import explain_command
from app.commands.kill_switch import kill_switch_group
from app.commands.markets import markets_group
from app.commands.notifications import notify_group
from app.commands.reconciliation import reconcile_command
from app.commands.replay import replay_group
from app.commands.scheduler import scheduler_command
from app.commands.security import rotate_keys_command
from app.commands.usage import usage_command
from app.commands.watches import watch_group


def register_cli(app: Flask) -> None:
    commands = (
        bootstrap_command,
        import_candles_command,
        seed_demo_command,
        markets_group,
        analyze_command,
        cache_group,
        credentials_group,
        rotate_keys_command,
        reconcile_command,
        account_group,
        backtest_command,
        backtest_delete_command,
        usage_command,
        scheduler_command,
        watch_group,
        notify_group,
        kill_switch_group,
        replay_group,
        explain_command,
        create_api_key_command,
        api_key_group,
    )
    for command in commands:
        one_line_errors(command)
        app.cli.add_command(command)
