"""The backtest form: what a person types to estimate and run a backtest, turned into the service's
`BacktestRequest`. The service validates everything that needs data (symbol, window, source, amounts); the form only
checks that required fields are there and that strategy parameters are written NAME=VALUE."""

from datetime import date

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, HiddenField, IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, ValidationError

from app.services.backtests import BacktestRequest
from app.services.watch_pages import source_choices, timeframe_choices
from app.web.watch_forms import parse_params

REPLAY_GROUP = "Cached answers only (free, no provider call)"

# The service's input names as a person reads them, for its messages ('fee_rate must be ...').
FIELD_WORDS = {
    "fee_rate": "The fee rate",
    "slippage_bps": "The slippage",
    "balance": "The starting balance",
    "max_cost": "The most AI cost allowed",
    "cache_only": "Cached answers only",
    "max_gap_bars": "The longest gap allowed",
    "allow_gaps": "Running across gaps",
    "signals": "The signal source",
    "params": "The strategy parameters",
    "every": "Decide every",
}


def _params_syntax(form: FlaskForm, field: StringField) -> None:
    try:
        parse_params(field.data or "")
    except ValueError as error:
        raise ValidationError(str(error).replace("Rule parameters", "Strategy parameters")) from None


class DayField(DateField):
    """A YYYY-MM-DD date whose parse error names the field and what was typed."""

    def process_formdata(self, valuelist: list[str]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(f'{self.label.text} must be a date, YYYY-MM-DD, got "{valuelist[0]}".') from None


class WholeNumberField(IntegerField):
    """A whole number whose parse error names the field and what was typed."""

    def process_formdata(self, valuelist: list[str]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(f'{self.label.text} must be a whole number, got "{valuelist[0]}".') from None


class BacktestForm(FlaskForm):
    """Estimate and run share it: Estimate previews the cost, Run queues the run (with the estimate shown as the
    most it may spend unless a limit was typed)."""

    FIELD_ALIASES = {"signals": "signal_source", "start": "start", "end": "end", "symbol": "symbol"}
    FIELD_WORDS = FIELD_WORDS

    symbol = StringField(
        "Symbol",
        default="BTC/USDT",
        validators=[
            DataRequired(message="Symbol is required, e.g. BTC/USDT."),
            Length(max=32, message="Symbol: at most 32 characters."),
        ],
        render_kw={"autocapitalize": "characters", "spellcheck": "false"},
    )
    timeframe = SelectField("Timeframe", choices=[SelectChoice(tf) for tf in timeframe_choices()], default="1h")
    start = DayField("Window start", validators=[Optional()], format="%Y-%m-%d")
    end = DayField("Window end", validators=[Optional()], format="%Y-%m-%d")
    signal_source = SelectField("Signal source and model", choices=[], default="rules:sma_cross")
    params = StringField(
        "Strategy parameters",
        validators=[
            Optional(),
            Length(max=400, message="Strategy parameters: at most 400 characters."),
            _params_syntax,
        ],
    )
    balance = StringField(
        "Starting balance",
        default="100",
        validators=[
            DataRequired(message="Starting balance is required, e.g. 100."),
            Length(max=30, message="Starting balance: at most 30 characters."),
        ],
    )
    fee_rate = StringField(
        "Fee rate per fill",
        default="0.001",
        validators=[DataRequired(message="Fee rate is required, e.g. 0.001 for 0.1%."), Length(max=30)],
    )
    every = WholeNumberField(
        "Decide every (bars)",
        default=1,
        validators=[
            InputRequired(message="Decide every: a whole number of bars, at least 1."),
            NumberRange(min=1, max=10_000, message="Decide every: a whole number of bars from 1 to 10,000."),
        ],
    )
    cache_only = BooleanField("Cached AI answers only (no paid calls)")
    max_cost = StringField(
        "Most AI cost allowed (USD)",
        validators=[Optional(), Length(max=30, message="Most AI cost allowed: at most 30 characters.")],
    )
    allow_gaps = BooleanField("Run across long gaps in the data")
    # The estimate the user saw before choosing Run: a paid run without a typed limit may spend at most that.
    estimate = HiddenField()

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        choices = [SelectChoice(spec, text, optgroup=group) for spec, text, group in source_choices()]
        choices += [
            SelectChoice("replay:deepseek", "Cached DeepSeek answers", optgroup=REPLAY_GROUP),
            SelectChoice("replay:claude", "Cached Claude answers", optgroup=REPLAY_GROUP),
        ]
        self.signal_source.choices = choices

    def to_request(self, user_id: int, use_estimate: bool) -> BacktestRequest:
        """The service's request; `use_estimate` caps a paid run at the shown estimate when no limit was typed."""
        limit = (self.max_cost.data or "").strip() or None
        if limit is None and use_estimate:
            limit = (self.estimate.data or "").strip() or None
        return BacktestRequest(
            user_id=user_id,
            symbol=(self.symbol.data or "").strip().upper(),
            timeframe=self.timeframe.data or "",
            signals=self.signal_source.data or "",
            params=parse_params(self.params.data or ""),
            start=_day(self.start.data),
            end=_day(self.end.data),
            every=int(self.every.data or 1),
            fee_rate=(self.fee_rate.data or "").strip(),
            balance=(self.balance.data or "").strip(),
            cache_only=bool(self.cache_only.data),
            max_cost=limit,
            allow_gaps=bool(self.allow_gaps.data),
        )


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None
