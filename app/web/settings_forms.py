"""The forms of the settings pages (accounts, LLM keys, risk, notifications) and the AI budgets, and how a service
refusal is worded on them.

Secret inputs (exchange keys, LLM keys, notification URLs) are never written back into the page: after a refused
submit the user types them again, so a secret never travels back in HTML.
"""

from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from app.services.notification_wire import EVENT_TITLES, EVENTS
from risk.config import MEANINGS

# Secrets: no autofill from a password manager's saved site password, no saving them as one.
SECRET_INPUT = {"autocomplete": "off", "autocapitalize": "off", "spellcheck": "false"}
PROVIDER_NAMES = {"deepseek": "DeepSeek", "claude": "Anthropic (Claude)"}


class SecretTextField(StringField):
    """A text input whose value is never rendered back (a notification URL carries tokens)."""

    def _value(self) -> str:
        return ""


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class BudgetForm(FlaskForm):
    daily_budget_usd = StringField(
        "Daily budget (USD)", validators=[DataRequired("Enter the daily budget in USD (0 for no paid AI calls).")]
    )
    monthly_budget_usd = StringField(
        "Monthly budget (USD)", validators=[DataRequired("Enter the monthly budget in USD (0 for no paid AI calls).")]
    )


class PaperAccountForm(FlaskForm):
    name = StringField("Account name", validators=[DataRequired("Enter a name for the account."), Length(max=80)])
    starting_balance = StringField(
        "Starting balance (USDT)", default="100", validators=[DataRequired("Enter the balance it starts with.")]
    )


class LiveAccountForm(FlaskForm):
    FIELD_ALIASES = {"exchange_base_url": "base_url", "exchange": "exchange_id"}

    name = StringField("Account name", validators=[DataRequired("Enter a name for the account."), Length(max=80)])
    exchange_id = StringField(
        "Exchange (ccxt id)", default="binance", validators=[DataRequired("Enter the exchange, e.g. binance.")]
    )
    api_key = PasswordField("API key", validators=[DataRequired("Enter the exchange API key.")], render_kw=SECRET_INPUT)
    api_secret = PasswordField(
        "API secret", validators=[DataRequired("Enter the exchange API secret.")], render_kw=SECRET_INPUT
    )
    passphrase = PasswordField("Passphrase (only if the exchange gave one)", render_kw=SECRET_INPUT)
    sandbox = BooleanField("Use the exchange's testnet (sandbox)")
    base_url = StringField("Exchange API address (optional)", validators=[Optional(), Length(max=200)])


class LlmKeyForm(FlaskForm):
    provider = SelectField("Provider", choices=[SelectChoice(key, name) for key, name in PROVIDER_NAMES.items()])
    api_key = PasswordField(
        "API key", validators=[DataRequired("Enter the provider's API key.")], render_kw=SECRET_INPUT
    )


class ChannelForm(FlaskForm):
    FIELD_ALIASES = {"apprise_url": "url", "webhook_url": "url"}

    kind = SelectField(
        "Kind",
        choices=[
            SelectChoice("apprise", "Apprise URL (Telegram, Slack, e-mail, ...)"),
            SelectChoice("webhook", "Signed JSON webhook"),
        ],
    )
    url = SecretTextField(
        "Address", validators=[DataRequired("Enter the channel's URL.")], render_kw={**SECRET_INPUT, "inputmode": "url"}
    )
    label = StringField("Label (optional)", validators=[Optional(), Length(max=80)])
    events = MultiCheckboxField(
        "Events (none ticked: every event)", choices=[SelectChoice(e, EVENT_TITLES[e]) for e in EVENTS]
    )


class HaltForm(FlaskForm):
    reason = StringField("Why stop", validators=[Optional(), Length(max=500)])


# Risk settings: labels in words with the unit, hints from risk.config.MEANINGS.
RISK_LABELS = {
    "risk_per_trade_pct": "Risk per trade (%)",
    "max_position_pct": "Largest position (% of equity)",
    "max_open_positions": "Open positions at once",
    "max_total_exposure_pct": "Total exposure (% of equity)",
    "daily_loss_limit_pct": "Daily loss limit (%)",
    "max_drawdown_pct": "Maximum drawdown (%)",
    "min_confidence": "Minimum confidence (0-100)",
    "min_reward_risk": "Minimum reward to risk",
    "default_stop_pct": "Default stop distance (%)",
    "min_stop_pct": "Closest stop (%)",
    "max_stop_pct": "Furthest stop (%)",
    "min_raise_tolerance_pct": "Extra risk to reach the exchange minimum (%)",
    "cooldown_minutes": "Cooldown after a loss (minutes)",
    "symbol_allowlist": "Symbols allowed (comma separated)",
    "trailing_stop_pct": "Trailing stop (%)",
}


def risk_label(name: str) -> str:
    return RISK_LABELS.get(name, name.replace("_", " ").capitalize())


def risk_form_class() -> type[FlaskForm]:
    """A form with one text input per risk setting (named as the setting), built from `MEANINGS` so a new setting
    appears without a change here."""
    attributes: dict[str, Any] = {
        name: StringField(risk_label(name), validators=[Optional(), Length(max=400)]) for name in MEANINGS
    }
    return type("RiskForm", (FlaskForm,), attributes)


RiskForm = risk_form_class()
