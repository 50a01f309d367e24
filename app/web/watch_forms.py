"""The watch forms: what a person types to add or change a watch, turned into the service's `NewWatch` and
`WatchChange`. The service validates everything that needs the database (symbol, account, chain, budgets); these
forms only check that required fields are there and that rule parameters are written NAME=VALUE."""

from collections.abc import Mapping

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from app.models import Account, Watch
from app.services.watch_pages import source_choices, timeframe_choices
from app.services.watches import NewWatch, WatchChange

NO_ACCOUNT = ""
BUDGET_HINT = "In USD, e.g. 0.002. Empty for no cap."


# The service's input names as a person reads them, for its messages ("max_cost_per_call_usd must be ...").
FIELD_WORDS = {
    "max_cost_per_call_usd": "The cap per analysis",
    "daily_budget_usd": "The daily cap",
    "auto_execute": "Auto-execute",
    "account_id": "The account",
    "exchange_id": "The exchange",
    "signals": "The signal source",
    "params": "The rule parameters",
}


def parse_params(text: str) -> dict[str, str]:
    """`"fast=10, slow=30"` -> `{"fast": "10", "slow": "30"}`; raises ValueError naming the piece that is no
    NAME=VALUE pair."""
    params: dict[str, str] = {}
    for piece in (part.strip() for part in text.replace("\n", ",").split(",")):
        if not piece:
            continue
        name, equals, value = piece.partition("=")
        if not equals or not name.strip() or not value.strip():
            raise ValueError(f'Rule parameters must be written NAME=VALUE, got "{piece}".')
        params[name.strip()] = value.strip()
    return params


def params_text(params: Mapping[str, object]) -> str:
    return ", ".join(f"{name}={value}" for name, value in params.items())


def _params_syntax(form: FlaskForm, field: StringField) -> None:
    try:
        parse_params(field.data or "")
    except ValueError as error:
        raise ValidationError(str(error)) from None


class WatchSettingsForm(FlaskForm):
    """What both adding and changing a watch set."""

    # The service names the signal spec `signals` and budgets by their column names.
    FIELD_ALIASES = {"signals": "signal_source", "params": "params", "account_id": "account_id"}
    FIELD_WORDS = FIELD_WORDS

    signal_source = SelectField("Signal source", choices=[], validate_choice=False)
    signal_chain = StringField(
        "Or a fallback chain of sources",
        validators=[Optional(), Length(max=200, message="Fallback chain: at most 200 characters.")],
    )
    params = StringField(
        "Rule parameters",
        validators=[Optional(), Length(max=400, message="Rule parameters: at most 400 characters."), _params_syntax],
    )
    account_id = SelectField("Account", choices=[], validate_choice=False)
    max_cost_per_call_usd = StringField(
        "Cap per analysis (USD)",
        validators=[Optional(), Length(max=30, message="Cap per analysis: at most 30 characters.")],
    )
    daily_budget_usd = StringField(
        "Daily cap of this watch (USD)",
        validators=[Optional(), Length(max=30, message="Daily cap: at most 30 characters.")],
    )
    auto_execute = BooleanField("Place orders on approved signals (auto-execute)")

    def offer(self, accounts: list[Account]) -> None:
        """Fill the choices: the known signal sources and the user's accounts (none means advice only)."""
        self.signal_source.choices = [
            SelectChoice(spec, text, optgroup=group) for spec, text, group in source_choices()
        ]
        self.account_id.choices = [SelectChoice(NO_ACCOUNT, "No account: advice only")] + [
            SelectChoice(
                str(account.id),
                f"{account.name} ({account.kind.value}, {account.exchange_id}, {account.quote_currency})",
            )
            for account in accounts
        ]

    def signals(self) -> str:
        """The chain when one was typed (the service checks it), else the chosen source."""
        chain = (self.signal_chain.data or "").strip()
        if chain:
            # A refusal of the chain belongs beside what was typed.
            self.FIELD_ALIASES = {**self.FIELD_ALIASES, "signals": "signal_chain"}
            return chain
        return self.signal_source.data or ""

    def chosen_account(self) -> int | None:
        value = (self.account_id.data or "").strip()
        return int(value) if value.isdigit() else None


class NewWatchForm(WatchSettingsForm):
    symbol = StringField(
        "Symbol",
        validators=[
            DataRequired(message="Symbol is required, e.g. BTC/USDT."),
            Length(max=32, message="Symbol: at most 32 characters."),
        ],
        render_kw={"autocapitalize": "characters", "spellcheck": "false"},
    )
    timeframe = SelectField("Timeframe", choices=[SelectChoice(tf) for tf in timeframe_choices()], default="1h")
    exchange_id = StringField(
        "Exchange",
        default="binance",
        validators=[
            DataRequired(message="Exchange is required, e.g. binance."),
            Length(max=32, message="Exchange: at most 32 characters."),
        ],
    )

    def to_new_watch(self) -> NewWatch:
        return NewWatch(
            symbol=self.symbol.data or "",
            timeframe=self.timeframe.data or "",
            signals=self.signals(),
            exchange_id=self.exchange_id.data or "",
            params=parse_params(self.params.data or ""),
            account_id=self.chosen_account(),
            max_cost_per_call_usd=self.max_cost_per_call_usd.data or None,
            daily_budget_usd=self.daily_budget_usd.data or None,
            auto_execute=bool(self.auto_execute.data),
        )


class EditWatchForm(WatchSettingsForm):
    """Symbol, timeframe and exchange stay (another market is another watch)."""

    def fill(self, watch: Watch) -> None:
        """What the watch has now, for the first showing of the form."""
        known = {spec for spec, _, _ in source_choices()}
        if watch.signal_source in known:
            self.signal_source.data = watch.signal_source
        else:
            self.signal_chain.data = watch.signal_source
        self.params.data = params_text(watch.signal_params)
        self.account_id.data = str(watch.account_id) if watch.account_id is not None else NO_ACCOUNT
        self.max_cost_per_call_usd.data = _amount(watch.max_cost_per_call_usd)
        self.daily_budget_usd.data = _amount(watch.daily_budget_usd)
        self.auto_execute.data = watch.auto_execute

    def to_change(self) -> WatchChange:
        return WatchChange(
            signals=self.signals(),
            params=parse_params(self.params.data or ""),
            account_id=self.chosen_account(),
            max_cost_per_call_usd=self.max_cost_per_call_usd.data or None,
            daily_budget_usd=self.daily_budget_usd.data or None,
            auto_execute=bool(self.auto_execute.data),
        )


def _amount(value: object) -> str:
    if value is None:
        return ""
    text = f"{value:f}" if hasattr(value, "normalize") else str(value)
    return text.rstrip("0").rstrip(".") if "." in text else text
