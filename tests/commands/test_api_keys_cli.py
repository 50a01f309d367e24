"""`flask --app wsgi create-api-key` and `api-key list | revoke` on SQLite and PostgreSQL: the key printed once as
the last line and never again, refusals as one line naming the option."""

from decimal import Decimal

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import ApiKey
from app.services import api_keys
from tests import factories


@pytest.fixture
def owner(app):
    user = factories.user(db.session, email="owner@example.com")
    db.session.commit()
    return user


def test_a_key_is_printed_once_as_the_last_line_and_lists_by_prefix_only(runner, owner):
    created = runner.invoke(
        args=["create-api-key", "--name", "my script", "--scope", "read", "--scope", "analyze", "--expires", "30"]
    )
    assert created.exit_code == 0, created.output
    *head, token = created.output.splitlines()
    assert api_keys.looks_like_key(token)
    key = db.session.scalars(select(ApiKey)).one()
    assert head[0].startswith(f"created #{key.id}  {token[:9]}...  my script  scopes read analyze  any model  expires ")
    assert head[0].endswith("  never used")

    listed = runner.invoke(args=["api-key", "list"])
    assert listed.exit_code == 0 and token not in listed.output and token[:9] in listed.output

    revoked = runner.invoke(args=["api-key", "revoke", str(key.id)])
    assert revoked.exit_code == 0 and "  REVOKED " in revoked.output
    assert "REVOKED" in runner.invoke(args=["api-key", "list"]).output


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["create-api-key"], "Error: scope is required [--scope]"),
        (
            ["create-api-key", "--scope", "write"],
            'Error: scope must be one of read, analyze, trade, admin, got "write" [--scope]',
        ),
        (
            ["create-api-key", "--scope", "read", "--expires", "0"],
            'Error: expires must be a whole number of days of 1 or more, got "0" [--expires]',
        ),
        (
            ["create-api-key", "--scope", "analyze", "--daily-budget", "lots"],
            'Error: daily_budget must be a positive amount in USD, got "lots" [--daily-budget]',
        ),
        (
            ["create-api-key", "--scope", "analyze", "--monthly-budget", "0"],
            'Error: monthly_budget must be a positive amount in USD, got "0" [--monthly-budget]',
        ),
        (
            ["create-api-key", "--scope", "analyze", "--model", "gpt:5"],
            'Error: model must be provider:model with a provider of deepseek, claude, got "gpt:5" [--model]',
        ),
        (["api-key", "revoke", "abc"], 'Error: ID must be a whole number, got "abc" [ID]'),
        (["api-key", "revoke", "99"], "Error: no api_key #99 [ID]"),
    ],
)
def test_bad_input_is_one_line_naming_the_option(runner, owner, args, line):
    result = runner.invoke(args=args)
    assert (result.exit_code, result.output) == (1, f"{line}\n")
    assert db.session.scalars(select(ApiKey)).all() == []


def test_a_keys_caps_and_models_are_set_at_creation_and_listed(runner, owner):
    created = runner.invoke(
        args=[
            "create-api-key",
            "--scope",
            "analyze",
            "--daily-budget",
            "0.50",
            "--monthly-budget",
            "5",
            "--model",
            "deepseek:deepseek-flash",
            "--model",
            "claude:claude-haiku-5-5",
        ]
    )
    assert created.exit_code == 0, created.output
    key = db.session.scalars(select(ApiKey)).one()
    assert (key.daily_budget_usd, key.monthly_budget_usd) == (Decimal("0.5"), Decimal(5))
    assert key.allowed_models == "deepseek:deepseek-flash claude:claude-haiku-5-5"
    limits = "scopes analyze  daily cap $0.5  monthly cap $5  models deepseek:deepseek-flash claude:claude-haiku-5-5  "
    assert limits in created.output.splitlines()[0]
    assert limits in runner.invoke(args=["api-key", "list"]).output

    runner.invoke(args=["create-api-key", "--scope", "read", "--name", "reader"])
    assert "scopes read  any model  never expires" in runner.invoke(args=["api-key", "list"]).output
