"""What each LLM model accepts (structured-output mode, thinking, temperature, knowledge cutoff, cache minimum).

The table is data in ai/data/models.yaml so a model change is a dated data edit, not a hunt through if-chains.
"""

import calendar
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

MODELS_FILE = Path(__file__).resolve().parent / "data" / "models.yaml"

STRUCTURED_OUTPUT_MODES = {
    "deepseek": frozenset({"forced_tool", "strict_tool"}),
    "claude": frozenset({"forced_tool", "output_config"}),
}
THINKING_CONTROLS = {
    # DeepSeek thinks by default and rejects a forced tool_choice while it does.
    "deepseek": frozenset({"disable"}),
    "claude": frozenset({"disable", "default_off", "low_effort"}),
}
# A forced tool_choice is rejected while the model thinks.
TOOL_MODES_NEEDING_NO_THINKING = frozenset({"forced_tool", "strict_tool"})


@dataclass(frozen=True)
class ModelInfo:
    provider: str
    model: str
    structured_output: str
    thinking: str
    accepts_temperature: bool
    knowledge_cutoff: date | None  # last day of the cutoff month; None when the provider publishes none
    min_cache_prefix_tokens: int | None
    is_default: bool


@dataclass(frozen=True)
class ModelTable:
    as_of: date
    models: tuple[ModelInfo, ...]

    def info(self, provider: str, model: str) -> ModelInfo:
        for entry in self.models:
            if entry.provider == provider and entry.model == model:
                return entry
        known = ", ".join(self.known(provider)) or "none"
        raise ValueError(f"unknown {provider} model {model!r} (known: {known}; table as of {self.as_of})")

    def default(self, provider: str) -> str:
        for entry in self.models:
            if entry.provider == provider and entry.is_default:
                return entry.model
        raise ValueError(f"unknown provider {provider!r} (known: {', '.join(sorted(STRUCTURED_OUTPUT_MODES))})")

    def known(self, provider: str) -> list[str]:
        return sorted(entry.model for entry in self.models if entry.provider == provider)


@cache
def load_models(path: Path = MODELS_FILE) -> ModelTable:
    import yaml  # PyYAML adds ~50 ms to every command: only the LLM sources read the table

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    entries: list[ModelInfo] = []
    for provider, section in data["providers"].items():
        if provider not in STRUCTURED_OUTPUT_MODES:
            raise ValueError(f"{path}: unknown provider {provider!r}")
        if section["default"] not in section["models"]:
            raise ValueError(f"{path}: {provider} default {section['default']!r} is not among its models")
        entries += [
            _model_info(provider, model, fields, is_default=model == section["default"], path=path)
            for model, fields in section["models"].items()
        ]
    return ModelTable(as_of=date.fromisoformat(str(data["as_of"])), models=tuple(entries))


def model_info(provider: str, model: str) -> ModelInfo:
    return load_models().info(provider, model)


def default_model(provider: str) -> str:
    return load_models().default(provider)


def _model_info(provider: str, model: str, fields: dict[str, Any], *, is_default: bool, path: Path) -> ModelInfo:
    mode, thinking = fields["structured_output"], fields["thinking"]
    if mode not in STRUCTURED_OUTPUT_MODES[provider]:
        raise ValueError(f"{path}: {provider} model {model!r} has unknown structured_output {mode!r}")
    if thinking not in THINKING_CONTROLS[provider]:
        raise ValueError(f"{path}: {provider} model {model!r} has unsupported thinking {thinking!r}")
    if mode in TOOL_MODES_NEEDING_NO_THINKING and thinking == "low_effort":
        raise ValueError(f"{path}: {provider} model {model!r} cannot force a tool while it always thinks")
    cutoff = fields["knowledge_cutoff"]
    minimum = fields["min_cache_prefix_tokens"]
    return ModelInfo(
        provider=provider,
        model=model,
        structured_output=mode,
        thinking=thinking,
        accepts_temperature=bool(fields["accepts_temperature"]),
        knowledge_cutoff=None if cutoff is None else _end_of_month(str(cutoff)),
        min_cache_prefix_tokens=None if minimum is None else int(minimum),
        is_default=is_default,
    )


def _end_of_month(year_month: str) -> date:
    year, month = (int(part) for part in year_month.split("-"))
    return date(year, month, calendar.monthrange(year, month)[1])
