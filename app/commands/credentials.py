"""`credentials`: your own LLM provider keys, stored encrypted (they win over the service's keys)."""

import click
from flask.cli import with_appcontext

from app.commands.cli import group
from app.commands.common import acting_user, session, settings
from app.services.credentials import store_llm_key


@group("credentials")
def credentials_group() -> None:
    """Your own API keys."""


@credentials_group.command("set-llm-key")
@click.option("--provider", required=True, type=click.Choice(["deepseek", "claude"]), help="Whose key.")
@click.option("--api-key", prompt=True, hide_input=True, help="Prompted for, so it stays out of shell history.")
@click.option("--user", "email", help="Whose key (default: the only user).")
@with_appcontext
def set_llm_key_command(provider: str, api_key: str, email: str | None) -> None:
    """Store your key for an LLM provider, encrypted; your analyses and backtests use it instead of the service's."""
    credential = store_llm_key(session(), settings(), acting_user(email).id, provider, api_key)
    session().commit()
    click.echo(f"{provider} key {credential.api_key_hint} stored (encrypted)")
