"""Notification channels on the settings page: add (an Apprise URL or a signed JSON webhook), send a test, enable,
disable, remove. URLs are stored encrypted and only ever shown masked; a webhook's signing secret is shown once,
on the page that answers the add, never flashed or kept in the session."""

from flask import flash, redirect, url_for
from flask.typing import ResponseReturnValue
from flask_login import login_required

from app.errors import ServiceError
from app.models import DeliveryStatus
from app.services import notification_channels, notifications
from app.web.common import current_settings, db_session, now, owned, show_error, user_id
from app.web.settings import blueprint, render_index
from app.web.settings_forms import ChannelForm

CHANNELS = "#notifications"


@blueprint.post("/settings/channels")
@login_required
def add_channel() -> ResponseReturnValue:
    form = ChannelForm()
    if not form.validate_on_submit():
        return render_index(400, channel_form=form)
    session = db_session()
    add = (
        notification_channels.add_webhook_channel
        if form.kind.data == "webhook"
        else notification_channels.add_apprise_channel
    )
    try:
        # No events ticked: every event (the service's `()`), never "none".
        added = add(
            session,
            current_settings(),
            user_id(),
            form.url.data or "",
            tuple(form.events.data or ()),
            form.label.data or "",
        )
    except ServiceError as error:
        session.rollback()
        show_error(form, error)
        return render_index(400, channel_form=form)
    session.commit()
    flash(f"Channel #{added.channel.id} {added.channel.label} added ({added.channel.hint}).", "info")
    if added.secret:
        # Shown once, on this answer only: the page is not cached and the secret is nowhere else readable.
        page, status = render_index(200, new_secret=added.secret, new_channel=added.channel)
        return page, status, {"Cache-Control": "no-store"}
    return redirect(url_for("settings.index") + CHANNELS)


@blueprint.post("/settings/channels/<id:channel_id>/test")
@login_required
def test_channel(channel_id: int) -> ResponseReturnValue:
    """Send a test now through the same delivery path as real notifications (committed by the service)."""
    outcome = owned(notifications.send_test, db_session(), current_settings(), user_id(), channel_id, now())
    if outcome.status == DeliveryStatus.SENT:
        flash(f"Test sent to channel #{channel_id}: check that it arrived.", "info")
    else:
        flash(f"Test to channel #{channel_id} not sent: {outcome.error}", "error")
    return redirect(url_for("settings.index") + CHANNELS)


@blueprint.post("/settings/channels/<id:channel_id>/disable")
@login_required
def disable_channel(channel_id: int) -> ResponseReturnValue:
    switched = owned(notification_channels.disable_channel, db_session(), user_id(), channel_id)
    db_session().commit()
    said = f"Channel #{channel_id} disabled: nothing is sent to it until you enable it again."
    if switched.dropped:
        said += f" {switched.dropped} queued notification(s) dropped."
    flash(said, "info")
    return redirect(url_for("settings.index") + CHANNELS)


@blueprint.post("/settings/channels/<id:channel_id>/enable")
@login_required
def enable_channel(channel_id: int) -> ResponseReturnValue:
    owned(notification_channels.enable_channel, db_session(), user_id(), channel_id)
    db_session().commit()
    flash(f"Channel #{channel_id} enabled: it gets the next events.", "info")
    return redirect(url_for("settings.index") + CHANNELS)


@blueprint.post("/settings/channels/<id:channel_id>/remove")
@login_required
def remove_channel(channel_id: int) -> ResponseReturnValue:
    removed = owned(notification_channels.remove_channel, db_session(), user_id(), channel_id)
    db_session().commit()
    flash(f"Channel #{removed.id} {removed.label} removed.", "info")
    return redirect(url_for("settings.index") + CHANNELS)
