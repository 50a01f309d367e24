"""Signal-source specs: `deepseek[:MODEL]`, `claude[:MODEL]`, `rules:STRATEGY`, `replay[:PROVIDER[:MODEL]]`,
chained with `->` into a fallback order (e.g. `deepseek -> claude -> rules:sma_cross`)."""

from dataclasses import dataclass

LLM_PROVIDERS = ("deepseek", "claude")
KINDS = (*LLM_PROVIDERS, "rules", "replay")


class SourceSpecError(ValueError):
    pass


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # deepseek | claude | rules | replay
    provider: str | None = None  # the LLM provider (for replay: whose cached answers)
    model: str | None = None  # None: the provider's default model
    strategy: str | None = None  # rules only

    @property
    def is_paid(self) -> bool:
        return self.kind in LLM_PROVIDERS

    def __str__(self) -> str:
        if self.kind == "rules":
            return f"rules:{self.strategy}"
        parts = [self.kind] if self.kind != "replay" else ["replay", self.provider or ""]
        return ":".join(part for part in [*parts, self.model or ""] if part)


def parse_source(text: str) -> SourceSpec:
    kind, _, rest = text.strip().partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise SourceSpecError(f"unknown signal source {text.strip()!r} (use one of: {', '.join(KINDS)})")
    if kind == "rules":
        if not rest.strip():
            raise SourceSpecError("rules needs a strategy, e.g. rules:sma_cross")
        return SourceSpec("rules", strategy=rest.strip())
    if kind == "replay":
        provider, _, model = rest.partition(":")
        provider = provider.strip().lower() or "deepseek"
        if provider not in LLM_PROVIDERS:
            raise SourceSpecError(f"replay needs an LLM provider ({', '.join(LLM_PROVIDERS)}), not {provider!r}")
        return SourceSpec("replay", provider=provider, model=model.strip() or None)
    return SourceSpec(kind, provider=kind, model=rest.strip() or None)


def parse_chain(text: str) -> list[SourceSpec]:
    parts = [part for part in text.split("->")]
    if not text.strip() or any(not part.strip() for part in parts):
        raise SourceSpecError(f"empty signal source in {text!r}")
    chain = [parse_source(part) for part in parts]
    if any(spec.kind == "replay" for spec in chain) and len(chain) > 1:
        raise SourceSpecError("replay answers only from the cache and cannot be part of a fallback chain")
    return chain
