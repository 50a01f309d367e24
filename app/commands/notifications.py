"""`notify`: where your notifications go (Apprise URLs or a signed JSON webhook), listed masked, tested on demand,
paused (`disable`) and resumed (`enable`)."""

import click
from flask.cli import with_appcontext

from app.commands.cli import group
from app.commands.common import acting_user, session, settings
from app.models import DeliveryStatus
from app.services import system_clock
from app.services.notification_channels import (
    ChannelSwitch,
    ChannelView,
    add_apprise_channel,
    add_webhook_channel,
    disable_channel,
    enable_channel,
    list_channels,
    remove_channel,
)
from app.services.notification_wire import EVENTS
from app.services.notifications import send_test


@group("notify")
def notify_group() -> None:
    """Notification channels: Telegram, Slack, Discord, e-mail, ... (Apprise URLs) or a signed JSON webhook."""


@notify_group.command("add")
@click.option("--apprise", "apprise_url", metavar="URL", help="An Apprise URL: tgram://, slack://, mailto://, ...")
@click.option("--webhook", "webhook_url", metavar="URL", help="An https URL that receives signed JSON POSTs.")
@click.option("--events", help=f"Comma-separated, default all: {', '.join(EVENTS)}.")
@click.option("--label", default="", help="A name for the channel.")
@click.option("--user", "email", help="Whose channel (default: the only user).")
@with_appcontext
def add_command(
    apprise_url: str | None, webhook_url: str | None, events: str | None, label: str, email: str | None
) -> None:
    """Add a channel; a webhook's signing secret is printed once, as the last line."""
    if (apprise_url is None) == (webhook_url is None):
        raise click.UsageError("give exactly one of --apprise URL or --webhook URL")
    chosen = () if events is None else events  # given but naming no event ("") is refused, not taken for all
    user_id = acting_user(email).id
    if apprise_url is not None:
        added = add_apprise_channel(session(), settings(), user_id, apprise_url, chosen, label)
    else:
        added = add_webhook_channel(session(), settings(), user_id, webhook_url or "", chosen, label)
    session().commit()
    click.echo(f"added {_line(added.channel)}")
    if added.secret:
        click.echo("Signing secret (shown only now; verify X-Steadyhand-Signature with it):")
        click.echo(added.secret)


@notify_group.command("list")
@click.option("--user", "email", help="Whose channels (default: the only user).")
@with_appcontext
def list_command(email: str | None) -> None:
    """Your channels, URLs masked."""
    channels = list_channels(session(), acting_user(email).id)
    if not channels:
        click.echo("no notification channels")
    for channel in channels:
        click.echo(_line(channel))


@notify_group.command("remove")
@click.argument("channel_id", metavar="ID")
@click.option("--user", "email", help="Whose channel (default: the only user).")
@with_appcontext
def remove_command(channel_id: str, email: str | None) -> None:
    """Remove a channel and its queued deliveries."""
    removed = remove_channel(session(), acting_user(email).id, channel_id)
    session().commit()
    click.echo(f"removed channel #{removed.id} ({removed.label})")


@notify_group.command("test")
@click.argument("channel_id", metavar="ID")
@click.option("--user", "email", help="Whose channel (default: the only user).")
@with_appcontext
def test_command(channel_id: str, email: str | None) -> None:
    """Send a test notification through a channel now and say whether it went through."""
    outcome = send_test(session(), settings(), acting_user(email).id, channel_id, system_clock())
    if outcome.status != DeliveryStatus.SENT:
        raise click.ClickException(f"test to channel #{outcome.channel_id} not sent: {outcome.error}")
    click.echo(f"test to channel #{outcome.channel_id} sent")


@notify_group.command("disable")
@click.argument("channel_id", metavar="ID")
@click.option("--user", "email", help="Whose channel (default: the only user).")
@with_appcontext
def disable_command(channel_id: str, email: str | None) -> None:
    """Stop sending to a channel; events until it is enabled again are never sent to it, not even later."""
    switched = disable_channel(session(), acting_user(email).id, channel_id)
    session().commit()
    click.echo(_switched(switched, "disabled"))


@notify_group.command("enable")
@click.argument("channel_id", metavar="ID")
@click.option("--user", "email", help="Whose channel (default: the only user).")
@with_appcontext
def enable_command(channel_id: str, email: str | None) -> None:
    """Send to a disabled channel again, from the next event on."""
    switched = enable_channel(session(), acting_user(email).id, channel_id)
    session().commit()
    click.echo(_switched(switched, "enabled"))


def _line(channel: ChannelView) -> str:
    events = ",".join(channel.events) if channel.events else "all events"
    state = "enabled" if channel.enabled else "disabled"
    return f"#{channel.id} {channel.kind} {channel.label!r} {channel.hint} [{events}] {state}"


def _switched(switched: ChannelSwitch, state: str) -> str:
    name = f"channel #{switched.channel.id} ({switched.channel.label})"
    said = f"{state} {name}" if switched.changed else f"{name} was already {state}"
    if switched.dropped:
        said += f"; {switched.dropped} queued notification(s) dropped, never to be sent"
    return said
