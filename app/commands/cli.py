"""The command and group classes every Steadyhand command uses: usage errors as one line and exit 1.

Click answers bad input it rejects itself (a bad type, a missing option or argument, a bad choice, an unknown
option, extra arguments) with its usage block and exit code 2. Steadyhand's rule is one line naming what was wrong,
the value as typed and the parameter, and exit code 1, as for a service's refusal (`commands.common.one_line_errors`):
`Error: ID must be a whole number, got "abc" [ID]`. `--help` and a bare group still show the help.

Use `@command(...)` and `@group(...)` from here instead of `@click.command` and `@click.group`; a group's
subcommands (`@some_group.command(...)`) get these classes by themselves.
"""

import re
from collections.abc import Callable, Sequence
from difflib import get_close_matches
from typing import Any

import click
from click.exceptions import NoArgsIsHelpError
from click.utils import format_filename


class RefusedValue(click.BadParameter):
    """A value refused with a message that is already the whole sentence (the parameter's name, the value)."""


def quoted(value: object) -> str:
    """A value as the user typed it, in double quotes, as the service errors write it."""
    return f'"{value}"'


def param_label(param: click.Parameter) -> str:
    """What a message calls a parameter: `ID` for an argument, `account` for `--account`."""
    if isinstance(param, click.Argument):
        return param.human_readable_name
    return max(param.opts, key=len).lstrip("-/")


def param_hint(param: click.Parameter) -> str:
    """What the user types for a parameter, as the `[...]` at the end of an error line names it."""
    if isinstance(param, click.Argument):
        return param.human_readable_name
    return param.opts[0]


def _plain(message: str) -> str:
    """Click's wording on one line: its 'value' quoting as "value", no trailing full stop."""
    message = " ".join(message.split())
    return re.sub(r"'([^']*)'", r'"\1"', message).rstrip(".")


class WholeNumber(click.types.IntParamType):
    """`type=int`, refusing with `ID must be a whole number, got "abc"`."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            raise _refused(param, ctx, f"must be a whole number, got {quoted(value)}") from None


class WholeNumberRange(click.IntRange):
    """`click.IntRange`, refusing with `every must be at least 1, got "0"`."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        WholeNumber().convert(value, param, ctx)
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            raise _refused(param, ctx, f"must be {self._in_words()}, got {quoted(value)}") from None

    def _in_words(self) -> str:
        if self.min_open or self.max_open:
            return f"in the range {self._describe_range()}"
        if self.min is not None and self.max is not None:
            return f"between {self.min} and {self.max}"
        if self.min is not None:
            return f"at least {self.min}"
        return f"at most {self.max}"


class OneOf(click.Choice):  # type: ignore[type-arg]
    """`click.Choice`, refusing with `provider must be one of deepseek, claude, got "x"`."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            choices = ", ".join(str(choice) for choice in self.choices)
            raise _refused(param, ctx, f"must be one of {choices}, got {quoted(value)}") from None


class FilePath(click.Path):
    """`click.Path`, refusing with `file "x.csv" does not exist`."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as error:
            name = format_filename(value)
            message = error.message.replace(repr(name), quoted(name))
            raise RefusedValue(_plain(message[:1].lower() + message[1:]), ctx=ctx, param=param) from None


def _refused(param: click.Parameter | None, ctx: click.Context | None, what: str) -> RefusedValue:
    subject = param_label(param) + " " if param is not None else ""
    return RefusedValue(subject + what, ctx=ctx, param=param)


def friendly_type(param_type: click.ParamType) -> click.ParamType:
    """The same type, refusing in Steadyhand's words (for the click types the commands use)."""
    if type(param_type) is click.types.IntParamType:
        return WholeNumber()
    if type(param_type) is click.IntRange:
        return WholeNumberRange(
            param_type.min, param_type.max, param_type.min_open, param_type.max_open, param_type.clamp
        )
    if type(param_type) is click.Choice:
        return OneOf(param_type.choices, param_type.case_sensitive)
    if type(param_type) is click.Path:
        friendly = FilePath()
        friendly.__dict__.update(param_type.__dict__)
        return friendly
    return param_type


def command_words(ctx: click.Context | None) -> str:
    """`watch pause`: the command as typed after the program's name."""
    words = []
    while ctx is not None and ctx.parent is not None:
        words.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(words))


def one_line(error: click.UsageError, ctx: click.Context | None = None) -> str:
    """A usage error as `<what> [<param>]`."""
    ctx = error.ctx or ctx
    if isinstance(error, click.MissingParameter) and error.param is not None:
        return f"{param_label(error.param)} is required [{param_hint(error.param)}]"
    if isinstance(error, RefusedValue):
        hint = param_hint(error.param) if error.param is not None else error.param_hint
        return f"{error.message} [{hint}]" if hint else error.message
    if isinstance(error, click.BadParameter):
        if error.param_hint is not None:
            hints = error.param_hint if isinstance(error.param_hint, str) else " / ".join(error.param_hint)
            return f"{_plain(error.message)} [{hints}]"
        if error.param is not None:
            return f"{param_label(error.param)}: {_plain(error.message)} [{param_hint(error.param)}]"
    if isinstance(error, click.NoSuchOption):
        line = f"no such option {quoted(error.option_name)}"
        if error.possibilities:
            line += ", did you mean " + " or ".join(quoted(name) for name in error.possibilities) + "?"
        return f"{line} [{error.option_name}]"
    if isinstance(error, click.BadOptionUsage):
        # click: "Option '--signals' requires an argument." -> "signals requires a value"
        what = re.sub(r"^Option '[^']*' ", "", error.message).replace("an argument", "a value")
        return f"{error.option_name.lstrip('-')} {_plain(what)} [{error.option_name}]"
    if isinstance(error, click.NoSuchCommand):
        line = f"no such command {quoted(error.command_name)}"
        group = ctx.command if ctx is not None else None
        if isinstance(group, click.Group):
            names = sorted(group.list_commands(ctx)) if ctx is not None else []
            close = get_close_matches(error.command_name, names)
            line += f", did you mean {quoted(close[0])}?" if close else f": one of {', '.join(names)}"
        return f"{line} [{command_words(ctx) or 'COMMAND'}]"
    where = command_words(ctx)
    return f"{_plain(error.format_message())} [{where}]" if where else _plain(error.format_message())


class OneLineUsageErrors(click.Command):
    """Usage errors, found while parsing the command line or raised by the command, as one line and exit 1."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            param.type = friendly_type(param.type)

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except NoArgsIsHelpError:
            raise  # a bare group: its help, as click shows it
        except click.UsageError as error:
            raise click.ClickException(one_line(error)) from None

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.allow_extra_args or ctx.resilient_parsing:
            return super().parse_args(ctx, args)
        ctx.allow_extra_args = True  # click's own refusal has no quotes and no hint: refuse extras here
        try:
            extra = super().parse_args(ctx, args)
        finally:
            ctx.allow_extra_args = False
        if extra:
            words = " ".join(quoted(arg) for arg in extra)
            raise click.UsageError(f"unexpected extra argument{'s' if len(extra) > 1 else ''} {words}", ctx)
        return extra

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise
        except click.UsageError as error:
            raise click.ClickException(one_line(error, ctx)) from None


class Command(OneLineUsageErrors):
    """A Steadyhand command."""


class Group(OneLineUsageErrors, click.Group):
    """A Steadyhand group: its subcommands are `Command`s and its subgroups `Group`s."""

    command_class = Command
    group_class = type


def command(name: str | None = None, **attrs: Any) -> Callable[[Callable[..., Any]], Command]:
    """`@click.command` making a `Command`."""
    return click.command(name, cls=Command, **attrs)


def group(name: str | None = None, **attrs: Any) -> Callable[[Callable[..., Any]], Group]:
    """`@click.group` making a `Group`."""
    return click.group(name, cls=Group, **attrs)


def all_commands(root: click.Command, path: Sequence[str] = ()) -> list[tuple[str, click.Command]]:
    """Every command under `root` (itself included) with the words that name it."""
    found = [(" ".join(path), root)]
    if isinstance(root, click.Group):
        for name, sub in root.commands.items():
            found.extend(all_commands(sub, (*path, name)))
    return found
