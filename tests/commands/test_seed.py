"""`flask --app wsgi seed-demo`: everything a newcomer needs, created once."""

from decimal import Decimal

from sqlalchemy import func, select

from app.extensions import db
from app.models import Account, AccountKind, Candle, User, Watch
from app.services.demo import DEMO_EMAIL


def counts():
    return {
        model.__name__: db.session.scalar(select(func.count()).select_from(model))
        for model in (User, Account, Watch, Candle)
    }


def password_from(output: str) -> str:
    line = next(line for line in output.splitlines() if line.strip().startswith("password"))
    return line.split()[-1]


def test_seed_is_idempotent_and_prints_a_working_login(runner, app):
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "demo: created user, paper account (100 USDT), 2 watch(es)" in first.output
    assert f"Sign in as  {DEMO_EMAIL}" in first.output
    after_first = counts()
    assert after_first["User"] == 1 and after_first["Account"] == 1 and after_first["Watch"] == 2
    assert after_first["Candle"] == 2 * (33_411 + 5_980) + 1_394 + 1_392 + 2 * 249

    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0, second.output
    assert "demo: created nothing new (already seeded)" in second.output
    assert counts() == after_first
    assert password_from(second.output) == password_from(first.output)

    user = db.session.scalar(select(User).where(User.email == DEMO_EMAIL))
    assert user.check_password(password_from(first.output))
    account = db.session.scalars(select(Account)).one()
    assert (account.kind, account.current_balance, account.quote_currency) == (AccountKind.PAPER, Decimal(100), "USDT")
    watches = db.session.scalars(select(Watch).order_by(Watch.symbol)).all()
    assert [(w.symbol, w.timeframe, w.signal_source, w.account_id) for w in watches] == [
        ("BTC/USDT", "1h", "rules:ema_rsi_volume", account.id),
        ("ETH/USDT", "1h", "rules:ema_rsi_volume", account.id),
    ]


def test_a_changed_password_is_not_printed_and_can_be_reset(runner, app, monkeypatch):
    monkeypatch.setattr("app.services.demo.DEMO_CANDLE_FILES", ())
    first = runner.invoke(args=["seed-demo"])
    user = db.session.scalar(select(User).where(User.email == DEMO_EMAIL))
    user.set_password("my own password")
    db.session.commit()

    again = runner.invoke(args=["seed-demo"])
    assert "changed since seeding" in again.output
    assert password_from(first.output) not in again.output

    reset = runner.invoke(args=["seed-demo", "--reset-password"])
    new_password = password_from(reset.output)
    assert new_password != password_from(first.output)
    db.session.expire_all()
    assert db.session.scalar(select(User).where(User.email == DEMO_EMAIL)).check_password(new_password)


def test_seed_refuses_to_run_in_production(app, runner, monkeypatch):
    from dataclasses import replace

    from app import SETTINGS_EXTENSION

    monkeypatch.setitem(
        app.extensions, SETTINGS_EXTENSION, replace(app.extensions[SETTINGS_EXTENSION], env="production")
    )
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 1
    assert "the demo is for local instances" in result.output
    assert counts()["User"] == 0
