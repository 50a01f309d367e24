"""`notify add | list | remove | test | disable | enable`: thin over the service; secrets printed once (a webhook's,
as the last line) and never again; one-line errors naming the option; the scheduler's sender job."""

from datetime import UTC, datetime

from app.extensions import db
from app.jobs.notifications import NotificationSender
from app.models import DeliveryStatus
from app.services.notifications import notify
from tests import factories
from tests.fakes.http_receiver import receiver_fixture  # noqa: F401

TOKEN = "123456789:AAE-secret-bot-token-zyxw"


def run(runner, *args):
    return runner.invoke(args=["notify", *args])


def channel_id(added):
    """The id in `added #<id> ...`."""
    return added.output.split()[1].lstrip("#")


def test_add_list_and_remove_never_show_a_token_or_secret(app, runner, receiver):
    factories.user(db.session, email="n@example.com", password=None)
    db.session.commit()

    apprise = run(runner, "add", "--apprise", f"tgram://{TOKEN}/987654321", "--label", "phone")
    assert apprise.exit_code == 0, apprise.output
    assert TOKEN not in apprise.output and "tgram://12******4321" in apprise.output
    hook = run(runner, "add", "--webhook", f"{receiver.url}/in/tok-9f8e7d6c", "--events", "order.filled,run.failed")
    assert hook.exit_code == 0, hook.output
    secret = hook.output.strip().splitlines()[-1]
    assert secret.startswith("whsec_") and "tok-9f8e7d6c" not in hook.output

    listed = run(runner, "list")
    assert listed.exit_code == 0
    assert TOKEN not in listed.output and secret not in listed.output and "tok-9f8e7d6c" not in listed.output
    lines = listed.output.splitlines()
    assert "'phone' tgram://12******4321 [all events] enabled" in lines[0]
    assert "webhook 'webhook' http://12******7d6c [order.filled,run.failed] enabled" in lines[1]

    phone = channel_id(apprise)
    removed = run(runner, "remove", phone)
    assert removed.exit_code == 0 and f"removed channel #{phone} (phone)" in removed.output
    assert len(run(runner, "list").output.splitlines()) == 1


def test_errors_are_one_line_naming_the_option_and_a_masked_value(app, runner):
    factories.user(db.session, password=None)
    db.session.commit()

    bad = run(runner, "add", "--apprise", f"nope{TOKEN}")
    assert bad.exit_code == 1
    assert bad.output.strip() == (
        "Error: apprise_url must be an Apprise URL such as tgram://{bot_token}/{targets} or "
        'mailto://{user}:{password}@{host}, got "no******zyxw" [--apprise]'
    )
    incomplete = run(runner, "add", "--apprise", "tgram://abc")
    assert incomplete.exit_code == 1
    assert incomplete.output.strip() == (
        "Error: apprise_url is a Telegram URL (Apprise knows tgram://) but incomplete or invalid: the form is "
        'tgram://{bot_token}/{targets} (see https://appriseit.com/services/telegram/), got "tgram://***" [--apprise]'
    )
    unknown = run(runner, "add", "--apprise", f"nope://{TOKEN}/1")
    assert unknown.exit_code == 1 and TOKEN not in unknown.output
    assert unknown.output.startswith('Error: apprise_url has a scheme Apprise does not know: "nope"')
    plain = run(runner, "add", "--webhook", "http://example.com/h?k=secret-123")
    assert plain.output.strip() == (
        "Error: webhook_url must use https (plain http only to 127.0.0.1 or localhost), "
        'got "http://ex******-123" [--webhook]'
    )
    events = run(runner, "add", "--webhook", "https://example.com/h", "--events", "order.filled,orders")
    assert events.exit_code == 1 and events.output.strip().endswith('got "orders" [--events]')
    empty = run(runner, "add", "--webhook", "https://example.com/h", "--events", "")
    assert empty.exit_code == 1 and len(empty.output.strip().splitlines()) == 1
    assert empty.output.strip() == (
        "Error: events must name at least one of order.filled, position.stop_hit, position.take_profit_hit, "
        "account.trading_state, budget.threshold, budget.exhausted, run.failed (leave it out for every event), "
        'got "" [--events]'
    )
    both = run(runner, "add", "--apprise", "json://a", "--webhook", "https://example.com/h")
    assert both.exit_code == 1 and "give exactly one of --apprise URL or --webhook URL" in both.output
    missing = run(runner, "remove", "99")
    assert missing.exit_code == 1 and missing.output.strip() == "Error: no notification channel #99 [ID]"
    assert "no notification channels" in run(runner, "list").output


def test_test_delivers_right_away_and_prints_the_outcome(app, runner, receiver):
    factories.user(db.session, password=None)
    db.session.commit()
    apprise = channel_id(run(runner, "add", "--apprise", f"json://127.0.0.1:{receiver.port}/apprise"))
    webhook = channel_id(run(runner, "add", "--webhook", f"{receiver.url}/hook"))

    sent = run(runner, "test", apprise)
    assert sent.exit_code == 0 and sent.output.strip() == f"test to channel #{apprise} sent"
    assert "notification.test" in receiver.requests[0].body.decode()

    receiver.answer(503)
    failed = run(runner, "test", webhook)
    assert failed.exit_code == 1
    assert failed.output.strip() == f"Error: test to channel #{webhook} not sent: the webhook answered HTTP 503"


def test_the_sender_job_delivers_what_is_due_on_its_clock(app, receiver):
    user = factories.user(db.session, password=None)
    db.session.commit()
    runner = app.test_cli_runner()
    run(runner, "add", "--webhook", f"{receiver.url}/hook")
    now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    notify(db.session, user.id, "order.filled", {"order_id": 7}, now=now)
    db.session.commit()

    report = NotificationSender(app, clock=lambda: now)()

    assert report.count(DeliveryStatus.SENT) == 1 and len(receiver.requests) == 1


def test_disable_and_enable_a_channel_shown_in_the_list(app, runner, receiver):
    user = factories.user(db.session, password=None)
    db.session.commit()
    hook = channel_id(run(runner, "add", "--webhook", f"{receiver.url}/hook", "--label", "ops"))
    notify(db.session, user.id, "order.filled", {"order_id": 7})
    db.session.commit()

    disabled = run(runner, "disable", hook)
    assert disabled.exit_code == 0, disabled.output
    assert disabled.output.strip() == (
        f"disabled channel #{hook} (ops); 1 queued notification(s) dropped, never to be sent"
    )
    assert run(runner, "list").output.strip().endswith("[all events] disabled")
    assert run(runner, "disable", hook).output.strip() == f"channel #{hook} (ops) was already disabled"
    notify(db.session, user.id, "order.filled", {"order_id": 8})
    db.session.commit()
    assert NotificationSender(app)().outcomes == () and receiver.requests == []

    enabled = run(runner, "enable", hook)
    assert enabled.exit_code == 0 and enabled.output.strip() == f"enabled channel #{hook} (ops)"
    assert run(runner, "list").output.strip().endswith("[all events] enabled")
    assert run(runner, "enable", hook).output.strip() == f"channel #{hook} (ops) was already enabled"
    assert NotificationSender(app)().outcomes == () and receiver.requests == []  # nothing from while it was off


def test_disable_and_enable_errors_are_one_line_naming_the_field_and_value(app, runner):
    owner = factories.user(db.session, email="owner@example.com", password=None)
    factories.user(db.session, email="other@example.com", password=None)
    db.session.commit()
    theirs = channel_id(run(runner, "add", "--apprise", "json://hooks.example.com/x", "--user", owner.email))

    for command in ("disable", "enable"):
        bad = run(runner, command, "abc", "--user", owner.email)
        assert bad.exit_code == 1
        assert bad.output.strip() == 'Error: channel_id must be a positive whole number, got "abc" [ID]'
        missing = run(runner, command, "99", "--user", owner.email)
        assert missing.exit_code == 1 and missing.output.strip() == "Error: no notification channel #99 [ID]"
        stolen = run(runner, command, theirs, "--user", "other@example.com")
        assert stolen.exit_code == 1 and stolen.output.strip() == f"Error: no notification channel #{theirs} [ID]"
    assert run(runner, "list", "--user", owner.email).output.strip().endswith("enabled")
