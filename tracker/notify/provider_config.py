"""Validated options for each buyer channel provider, from a ``[notify.sms]``/``[notify.chat]``."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tracker.errors import ConfigError

__all__ = ["ProviderOptions", "parse_options"]

T = TypeVar("T", bound="ProviderOptions")


class ProviderOptions(BaseModel):
    """Keys every provider accepts; each provider adds its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str
    requests_per_s: float | None = Field(default=None, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)
    allow_private_networks: bool = False


def parse_options(model: type[T], options: dict[str, Any], where: str) -> T:
    """Validate a provider's table; errors name the key (``notify.sms.sign_name: ...``)."""
    try:
        return model.model_validate(options)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            dotted = ".".join([where, *(str(p) for p in err["loc"])])
            message = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = f"unknown key for provider {options.get('provider')!r}"
            elif err["type"] == "missing":
                message = f"required by provider {options.get('provider')!r}"
            lines.append(f"{dotted}: {message}")
        raise ConfigError("\n".join(lines)) from None
