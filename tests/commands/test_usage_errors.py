"""What click itself refuses (a bad type, a missing option or argument, a bad choice, an unknown option or command,
extra arguments) is one line naming the value and the parameter, exit code 1, like a service's refusal; `--help`
and a bare group still show the help. `watch run` exits 1 when the run it prints failed."""

import re

import click
import pytest
from sqlalchemy import select

from app.commands.cli import Command, Group, all_commands
from app.extensions import db
from app.models import RunStatus, WatchRun
from tests import factories


def one_line(result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: "), result.output
    return lines[0]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        # a bad whole number, as an argument and as an option
        (["watch", "pause", "abc"], 'Error: ID must be a whole number, got "abc" [ID]'),
        (["watch", "run", "abc"], 'Error: ID must be a whole number, got "abc" [ID]'),
        (["explain", "abc"], 'Error: ANALYSIS_ID must be a whole number, got "abc" [ANALYSIS_ID]'),
        (
            ["watch", "add", "BTC/USDT", "--signals", "rules:sma_cross", "--account", "abc"],
            'Error: account must be a whole number, got "abc" [--account]',
        ),
        (["backtest", "--every", "0"], 'Error: every must be at least 1, got "0" [--every]'),
        (["backtest", "--every", "x"], 'Error: every must be a whole number, got "x" [--every]'),
        # a missing option, argument or option value
        (["kill-switch", "on"], "Error: reason is required [--reason]"),
        (["watch", "pause"], "Error: ID is required [ID]"),
        (["account", "positions"], "Error: ACCOUNT_ID is required [ACCOUNT_ID]"),
        (["watch", "add", "BTC/USDT", "--signals"], "Error: signals requires a value [--signals]"),
        # a bad choice, an unknown option or command, extra arguments
        (
            ["credentials", "set-llm-key", "--provider", "gpt"],
            'Error: provider must be one of deepseek, claude, got "gpt" [--provider]',
        ),
        (["watch", "list", "--jsn"], 'Error: no such option "--jsn", did you mean "--json"? [--jsn]'),
        (["watch", "paus"], 'Error: no such command "paus", did you mean "pause"? [watch]'),
        (["watch", "pause", "1", "2"], 'Error: unexpected extra argument "2" [watch pause]'),
        (["explain", "1", "2", "3"], 'Error: unexpected extra arguments "2" "3" [explain]'),
        # a file that is not there
        (["cache", "import", "/no/such/file.jsonl"], 'Error: file "/no/such/file.jsonl" does not exist [FILE]'),
        # refused by the command itself
        (["notify", "add"], "Error: give exactly one of --apprise URL or --webhook URL [notify add]"),
        (
            ["watch", "edit", "1", "--param", "a=1", "--clear-params"],
            "Error: give --param or --clear-params, not both [watch edit]",
        ),
        (["watch", "add", "BTC/USDT", "--signals", "x", "--param", "a"], 'Error: "a" is not KEY=VALUE [--param]'),
    ],
)
def test_a_usage_error_is_one_line_naming_the_value_and_the_parameter(runner, args, line):
    assert one_line(runner.invoke(args=args)) == line


def ours(app) -> list[tuple[str, click.Command]]:
    found = []
    for name, command in app.cli.commands.items():
        if command.callback is not None and command.callback.__module__.startswith("app.commands"):
            found.extend(all_commands(command, (name,)))
    return found


def test_every_command_uses_the_one_line_classes(app):
    commands = ours(app)
    assert len(commands) > 40
    for path, command in commands:
        assert isinstance(command, Group if isinstance(command, click.Group) else Command), path


def test_every_command_refuses_an_unknown_option_in_one_line(app, runner):
    for path, _ in ours(app):
        result = runner.invoke(args=[*path.split(), "--no-such-option"])
        assert one_line(result).startswith('Error: no such option "--no-such-option"'), (path, result.output)


@pytest.mark.parametrize(
    "args", [["watch", "--help"], ["watch", "pause", "--help"], ["kill-switch", "on", "--help"], ["explain", "--help"]]
)
def test_help_still_shows_the_help(runner, args):
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    assert re.match(rf"Usage: \S+ {' '.join(args[:-1])} \[OPTIONS\]", result.output), result.output
    assert "--help" in result.output and "Error" not in result.output


@pytest.mark.parametrize("group", ["watch", "notify", "kill-switch", "account"])
def test_a_bare_group_shows_its_help(runner, group):
    result = runner.invoke(args=[group])
    assert re.match(rf"Usage: \S+ {group} \[OPTIONS\] COMMAND \[ARGS\]\.\.\.", result.output), result.output
    assert "Commands:" in result.output and "Error" not in result.output


def test_watch_run_exits_1_when_the_run_it_prints_failed(runner, app):
    factories.user(db.session, email="owner@example.com")  # no account: the run fails at its first step
    db.session.commit()
    added = runner.invoke(args=["watch", "add", "ETH/USDT", "--signals", "rules:sma_cross"])
    assert added.exit_code == 0, added.output
    watch_id = re.match(r"added #(\d+) ", added.output).group(1)
    for _ in range(2):  # a new run, then the same bar's run on record
        failed = runner.invoke(args=["watch", "run", watch_id])
        assert failed.exit_code == 1
        run = db.session.scalars(select(WatchRun)).one()
        assert run.status is RunStatus.FAILED
        assert failed.output == (
            f"run #{run.id} watch #{watch_id} ETH/USDT 1h rules:sma_cross bar {run.bar_time:%Y-%m-%d %H:%M} UTC: "
            "failed at prepare: INVALID_INPUT: this user has no account yet: create a paper account first\n"
        )
