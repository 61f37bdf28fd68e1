"""UI settings: where the gateway is and how long to wait for it."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from comps.core.settings import ServiceSettings, env_alias


class UiSettings(ServiceSettings):
    """`UI_*` variables; OPEA's `BACKEND_SERVICE_ENDPOINT` names the gateway too."""

    model_config = SettingsConfigDict(env_prefix="UI_")

    port: int = Field(default=7861, ge=1, le=65535, validation_alias=env_alias("UI_PORT", "UI_SERVICE_PORT"))
    gateway_url: str = Field(
        default="http://localhost:8888",
        validation_alias=env_alias("UI_GATEWAY_URL", "BACKEND_SERVICE_ENDPOINT"),
        description="base URL of the gateway (a trailing /v1/avatarchatbot is accepted and stripped)",
    )
    request_timeout_s: float = Field(default=900.0, gt=0, description="one whole answer, video included")
    history_turns: int = Field(default=4, ge=0, le=50, description="earlier question/answer pairs sent along")
    work_dir: Path | None = Field(default=None, description="where downloaded videos go; a temp dir when unset")
