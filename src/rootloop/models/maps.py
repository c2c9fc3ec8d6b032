"""Parts of a map that a skill reads as its input: the load test and the UI test a
service declares. Data only; the loader (``rootloop.topology``) validates them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class LoadTestSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    url: str
    method: Literal["GET", "POST"] = "GET"
    body: dict[str, Any] | None = None
    rate: float = Field(default=20.0, gt=0, le=2000)
    duration: float = Field(default=5.0, gt=0, le=600)
    min_success_ratio: float = Field(default=0.99, ge=0, le=1)
    max_p50_ms: float = 200.0
    max_p95_ms: float = 800.0


class UiTestSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    url: str
    steps: list[dict[str, str]] = []
    expect_text: str | None = None
    timeout: float = 30.0
