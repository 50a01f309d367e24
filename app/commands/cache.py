"""`cache export` / `cache import`: share a response cache as JSON Lines, so a backtest can be replayed elsewhere."""

from pathlib import Path

import click
from flask.cli import with_appcontext

from app.commands.cli import group
from app.commands.common import session
from app.errors import ConflictError
from app.services import cache


@group("cache")
def cache_group() -> None:
    """The LLM response cache."""


@cache_group.command("export")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@with_appcontext
def export_command(file: Path, force: bool) -> None:
    """Write every cached response to FILE, one JSON object a line (refuses to overwrite without --force)."""
    try:
        count = cache.export_cache(session(), file, overwrite=force)
    except ConflictError:
        raise click.ClickException(f"{file} already exists: pass --force to overwrite it") from None
    click.echo(f"exported {count:,} cached response(s) to {file}")


@cache_group.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@with_appcontext
def import_command(file: Path) -> None:
    """Add the responses in FILE that are not cached yet. A bad line imports nothing."""
    result = cache.import_cache(session(), file)
    click.echo(
        f"imported {result.added:,} new cached response(s) from {file} ({result.already_cached:,} already cached)"
    )
