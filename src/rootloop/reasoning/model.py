"""The model reasoner: an LLM behind the same ``Reasoner`` interface as the rules.

Why pydantic-ai: one agent loop for every provider (Anthropic, AWS Bedrock, any
OpenAI-compatible endpoint, a local vLLM / Ollama / llama.cpp server included),
typed output validated against ``Proposal`` with the validation error sent back to
the model, and scripted models (``FunctionModel``, ``TestModel``) for tests.

The model never acts: it proposes. Its output is checked (root cause and target are
nodes of the map, nothing on production, nothing that already failed for that
diagnosis) and each miss is sent back as a retry; when the retries run out, or the
provider fails or times out, the fallback reasoner (rules) answers and the proposal
says why. Keys come from the standard environment variables (``ANTHROPIC_API_KEY``,
``OPENAI_API_KEY``, or the one ``api_key_env`` names) or the AWS credential chain.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_ai import (
    Agent,
    ModelRetry,
    ModelSettings,
    RunContext,
    ToolOutput,
    UsageLimits,
    capture_run_messages,
)
from pydantic_ai.messages import ModelResponse, ToolCallPart
from pydantic_ai.models import Model

from rootloop.errors import UserError
from rootloop.models import Diagnosis
from rootloop.reasoning.backing import false_health_reason, known_components, unbacked_reason
from rootloop.reasoning.base import Proposal, Reasoner, ReasoningInput
from rootloop.reasoning.prompt import SYSTEM_PROMPT, build_prompt
from rootloop.reasoning.usage import CallUsage, Price, UsageLedger, call_from_messages

ProviderName = Literal["anthropic", "bedrock", "openai"]

# Shorthands for OpenAI-compatible servers people run locally (their default ports).
LOCAL_SERVERS = {
    "ollama": "http://127.0.0.1:11434/v1",
    "vllm": "http://127.0.0.1:8000/v1",
    "llamacpp": "http://127.0.0.1:8080/v1",
}
DEFAULT_KEY_ENV = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
ENV_PREFIX = "ROOTLOOP_MODEL"
OUTPUT_TOOL = "final_result"  # the tool the model answers through (the system prompt names it)


class ModelConfig(BaseModel):
    """Which model, where, and within which limits. Loaded from ``model:`` or the env."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: ProviderName
    model: str = Field(min_length=1)
    base_url: str | None = None
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    region: str | None = None  # Bedrock; else AWS_REGION / AWS_DEFAULT_REGION
    max_input_tokens: int = Field(default=12_000, ge=2_000, le=1_000_000)
    max_output_tokens: int = Field(default=4_096, ge=256, le=128_000)
    timeout: float = Field(default=60.0, gt=0, le=900, description="seconds per request")
    max_retries: int = Field(default=2, ge=0, le=10, description="invalid outputs resent")
    request_retries: int = Field(default=1, ge=0, le=10, description="SDK retries per request")
    temperature: float | None = Field(default=None, ge=0, le=2)
    price: Price | None = None
    code_fix_steps: int = Field(default=30, ge=3, le=200, description="model requests per fix")

    @property
    def label(self) -> str:
        return f"{self.provider}:{self.model}"

    @classmethod
    def from_spec(cls, spec: str, **overrides: Any) -> ModelConfig:
        """``anthropic:claude-sonnet-4-5``, ``bedrock:<model id>``, ``openai:gpt-4.1``,
        ``ollama:llama3.1:8b`` (an OpenAI-compatible server on its default local port)."""
        provider, sep, model = spec.partition(":")
        provider = provider.strip().lower()
        if not sep or not model.strip():
            raise UserError(
                f"model '{spec}' has no provider: write '<provider>:<model>', e.g. "
                "'anthropic:claude-sonnet-4-5', 'bedrock:<model id>' or 'ollama:llama3.1'."
            )
        if provider in LOCAL_SERVERS:
            overrides.setdefault("base_url", LOCAL_SERVERS[provider])
            provider = "openai"
        elif provider in ("openai-compatible", "openai-chat"):
            provider = "openai"
        return cls.from_mapping({"provider": provider, "model": model.strip(), **overrides})

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | str, where: str = "model") -> ModelConfig:
        """A ``model:`` block: a mapping, or just a ``provider:model`` string."""
        if isinstance(data, str):
            return cls.from_spec(data)
        data = dict(data)
        if "provider" not in data and isinstance(data.get("model"), str) and ":" in data["model"]:
            spec = data.pop("model")
            return cls.from_spec(spec, **data)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"]) or "(block)"
            known = ", ".join(cls.model_fields)
            hint = (
                "use one of anthropic, bedrock, openai (or ollama/vllm/llamacpp as "
                "'<name>:<model>')."
                if loc == "provider"
                else f"known fields: {known}."
            )
            raise UserError(
                f"{where}.{loc}: {err['msg']} (got {err.get('input')!r}); {hint}"
            ) from None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ModelConfig | None:
        """``ROOTLOOP_MODEL=provider:model`` plus optional ``ROOTLOOP_MODEL_<FIELD>``."""
        env = os.environ if env is None else env
        spec = env.get(ENV_PREFIX, "").strip()
        if not spec:
            return None
        return cls.from_spec(spec, **_env_overrides(env))


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ModelConfig.model_fields:
        if name in ("provider", "model", "price"):
            continue
        value = env.get(f"{ENV_PREFIX}_{name.upper()}")
        if value:
            out[name] = value
    price_in, price_out = (
        env.get(f"{ENV_PREFIX}_PRICE_INPUT"),
        env.get(f"{ENV_PREFIX}_PRICE_OUTPUT"),
    )
    if price_in and price_out:
        out["price"] = {"input_per_1k": price_in, "output_per_1k": price_out}
    return out


def load_model_config(
    path: str | Path | None = None, env: Mapping[str, str] | None = None
) -> ModelConfig | None:
    """The model to use: ``ROOTLOOP_MODEL`` wins, else the file's ``model:`` block, else None.

    ``path`` is any YAML file with a top-level ``model:`` (the map, or a rootloop
    config file); a missing block means no model is configured (rules only).
    """
    from_env = ModelConfig.from_env(env)
    if from_env is not None or path is None:
        return from_env
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"{p}: cannot read the model configuration: {exc}") from None
    block = data.get("model") if isinstance(data, dict) else None
    if block is None:
        return None
    if not isinstance(block, dict | str):
        raise UserError(
            f"{p}: field 'model' must be a mapping or 'provider:model', got {type(block).__name__}."
        )
    return ModelConfig.from_mapping(block, where=f"{p}: model")


# -- providers ------------------------------------------------------------------------


def model_settings(config: ModelConfig) -> ModelSettings:
    settings = ModelSettings(
        max_tokens=config.max_output_tokens,
        timeout=config.timeout,
        max_retries=config.request_retries,
    )
    if config.temperature is not None:
        settings["temperature"] = config.temperature
    return settings


def forced_output_tool(config: ModelConfig, tool: str = OUTPUT_TOOL) -> ModelSettings | None:
    """Name the output tool in the request instead of ``tool_choice: "required"``.

    Why: OpenAI-compatible servers differ. llama.cpp's Python server ignores
    ``"required"`` (the model then answers in prose) but turns a *named* function into
    a grammar, so the answer is JSON of the Proposal schema; OpenAI, vLLM and Ollama
    accept the named form too. pydantic-ai sends ``"required"`` when the output tool is
    the only tool, so the named form goes in the request body. Other providers have
    their own shape for this and keep pydantic-ai's.
    """
    if config.provider != "openai":
        return None
    choice = {"type": "function", "function": {"name": tool}}
    return ModelSettings(extra_body={"tool_choice": choice})


def build_model(config: ModelConfig, env: Mapping[str, str] | None = None) -> Model:
    """The pydantic-ai model for ``config``; a missing key is a clear ``UserError``."""
    env = os.environ if env is None else env
    settings = model_settings(config)
    if config.provider == "anthropic":
        from pydantic_ai.models.anthropic import AnthropicModel
        from pydantic_ai.providers.anthropic import AnthropicProvider

        key = _key(config, env, required=True)
        return AnthropicModel(
            config.model,
            provider=AnthropicProvider(api_key=key, base_url=config.base_url),
            settings=settings,
        )
    if config.provider == "bedrock":
        from pydantic_ai.exceptions import UserError as PaiUserError
        from pydantic_ai.models.bedrock import BedrockConverseModel
        from pydantic_ai.providers.bedrock import BedrockProvider

        region = config.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        try:
            provider = BedrockProvider(
                region_name=region,
                base_url=config.base_url,
                aws_read_timeout=config.timeout,
                aws_connect_timeout=min(config.timeout, 10.0),
            )
        except PaiUserError as exc:
            raise UserError(
                f"Bedrock: {exc} Set 'region' in the model block or export "
                "AWS_REGION; credentials come from the AWS chain."
            ) from None
        return BedrockConverseModel(config.model, provider=provider, settings=settings)
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.profiles.openai import OpenAIModelProfile
    from pydantic_ai.providers.openai import OpenAIProvider

    # A local OpenAI-compatible server usually wants no key, but the client needs one.
    key = _key(config, env, required=config.base_url is None) or "not-needed"
    profile = (
        None
        if openai_itself(config.base_url)
        else OpenAIModelProfile(openai_chat_supports_max_completion_tokens=False)
    )
    return OpenAIChatModel(
        config.model,
        provider=OpenAIProvider(base_url=config.base_url, api_key=key),
        settings=settings,
        profile=profile,
    )


def openai_itself(base_url: str | None) -> bool:
    """Whether ``base_url`` is OpenAI's own API (no base_url means OpenAI).

    Why it matters: OpenAI caps an answer with ``max_completion_tokens``, the field
    pydantic-ai sends by default; OpenAI-compatible servers read ``max_tokens`` (vLLM,
    Ollama and llama.cpp's server all accept it) and llama-cpp-python's server silently
    ignores the other one, so an answer there ran unbounded up to the context window.
    Every other endpoint gets ``max_tokens``: ``max_output_tokens`` always bounds the answer.
    """
    if base_url is None:
        return True
    host = urlsplit(base_url).hostname or ""
    return host == "api.openai.com"


def _key(config: ModelConfig, env: Mapping[str, str], *, required: bool) -> str | None:
    name = config.api_key_env or DEFAULT_KEY_ENV[config.provider]
    value = env.get(name)
    if not value and required:
        raise UserError(
            f"model {config.label}: no API key: export {name}=... "
            "(or set api_key_env to the variable that holds it)."
        )
    return value or None


# -- the reasoner -----------------------------------------------------------------------


class ModelReasoner:
    """Asks a model for a ``Proposal``; checks it; falls back when the model cannot answer."""

    name = "model"
    reads_code = True  # a code fix reads the run's worktree

    def __init__(
        self,
        model: Model,
        *,
        config: ModelConfig | None = None,
        fallback: Reasoner | None = None,
        ledger: UsageLedger | None = None,
    ) -> None:
        self.model = model
        self.config = config or ModelConfig(provider="openai", model=model.model_name)
        self.fallback = fallback
        self.ledger = ledger if ledger is not None else UsageLedger()
        self.last_failure: str | None = None
        self.last_prompt_tokens = 0
        self.rejections: list[str] = []  # why each answer of the current call was sent back
        self.agent: Agent[ReasoningInput, Proposal] = Agent(
            model,
            output_type=ToolOutput(Proposal, name=OUTPUT_TOOL),
            deps_type=ReasoningInput,
            instructions=SYSTEM_PROMPT,
            retries={"output": self.config.max_retries, "tools": self.config.max_retries},
            name="rootloop-diagnose",
            model_settings=forced_output_tool(self.config),
        )

        @self.agent.output_validator
        async def validate(ctx: RunContext[ReasoningInput], p: Proposal) -> Proposal:
            try:
                return await check_proposal(ctx, p)
            except ModelRetry as exc:
                self.rejections.append(str(exc.message))
                raise

    @classmethod
    def from_config(
        cls,
        config: ModelConfig,
        *,
        fallback: Reasoner | None = None,
        ledger: UsageLedger | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ModelReasoner:
        return cls(build_model(config, env), config=config, fallback=fallback, ledger=ledger)

    async def propose(self, inp: ReasoningInput, task: str | None = None) -> Proposal:
        prompt = build_prompt(
            inp,
            max_input_tokens=self.config.max_input_tokens,
            runbooks=inp.extra.get("runbooks"),
            **({"task": task} if task else {}),
        )
        self.last_prompt_tokens = prompt.estimated_tokens
        self.last_failure = None
        self.rejections = []
        # output retries are counted per path (tool, text): allow both to run out
        limits = UsageLimits(request_limit=2 * self.config.max_retries + 2)
        run_timeout = (
            self.config.timeout * (self.config.request_retries + 1) * (self.config.max_retries + 1)
            + 5
        )
        started = time.monotonic()
        with capture_run_messages() as messages:
            try:
                result = await self.agent.run(
                    prompt.user, deps=inp, usage_limits=limits, timeout=run_timeout
                )
            except Exception as exc:  # provider down, timeout, invalid output: never a crash
                why = f"{type(exc).__name__}: {inp.topology.redactor.text(str(exc))}"[:300]
                last = self.rejections[-1] if self.rejections else answer_problem(messages)
                if last:
                    last = inp.topology.redactor.text(last)
                    why = f"{why}; last answer rejected: {last}"[:700]
                self._record(messages, inp, time.monotonic() - started, error=why)
                return await self._fall_back(inp, why)
        self._record(messages, inp, time.monotonic() - started)
        return stamp(result.output, self.name, prompt.trimmed)

    def _record(
        self, messages: list[Any], inp: ReasoningInput, seconds: float, error: str | None = None
    ) -> CallUsage:
        return self.ledger.add(
            call_from_messages(
                messages,
                purpose="diagnose",
                model=self.config.label,
                price=self.config.price,
                iteration=inp.context.iteration,
                error=error,
                seconds=seconds,
            )
        )

    async def _fall_back(self, inp: ReasoningInput, why: str) -> Proposal:
        self.last_failure = why
        if self.fallback is None:
            return escalation(inp, f"the model gave no usable proposal ({why})")
        p = await self.fallback.propose(inp)
        note = f"model reasoner failed ({why}); {self.fallback.name} reasoner answered."
        return p.model_copy(update={"rationale": f"{note} {p.rationale}".strip()})


# Bounds on what a model's words may occupy in the history, the PR and the report.
SUMMARY_CHARS = 400
RATIONALE_CHARS = 1500
EVIDENCE_ITEMS = 10
EVIDENCE_CHARS = 300


def answer_problem(messages: list[Any]) -> str | None:
    """What was wrong with the model's last answer, in words, for the history.

    pydantic-ai says only that the retries ran out; the reason is in the answer itself.
    """
    response = next((m for m in reversed(messages) if isinstance(m, ModelResponse)), None)
    if response is None:
        return None
    call = next(
        (p for p in response.parts if isinstance(p, ToolCallPart) and p.tool_name == OUTPUT_TOOL),
        None,
    )
    if call is None:
        return "it answered in prose, not through the final_result tool"
    try:
        Proposal.model_validate(call.args_as_dict(raise_if_invalid=True))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "(answer)"
        return f"{where}: {err['msg']} (schema errors: {exc.error_count()})"
    except (ValueError, AssertionError) as exc:  # not a JSON object (cut at max tokens?)
        return f"its arguments are not JSON ({str(exc)[:120]})"
    return None


def stamp(p: Proposal, reasoner: str, trimmed: list[str]) -> Proposal:
    """Mark the diagnosis as the model's, bound its text, note what the prompt left out."""
    d = p.diagnosis
    diag = d.model_copy(
        update={
            "reasoner": reasoner,
            "summary": _cut(d.summary, SUMMARY_CHARS),
            "evidence": [_cut(e, EVIDENCE_CHARS) for e in d.evidence[:EVIDENCE_ITEMS]],
        }
    )
    rationale = _cut(p.rationale, RATIONALE_CHARS)
    if trimmed:
        rationale = f"{rationale} (prompt trimmed: {'; '.join(trimmed)})".strip()
    update: dict[str, Any] = {"diagnosis": diag, "rationale": rationale}
    if p.escalate_reason:
        update["escalate_reason"] = _cut(p.escalate_reason, RATIONALE_CHARS)
    return p.model_copy(update=update)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary_reason(summary: str) -> str | None:
    """A summary must say something in words, briefly (a weak model may emit a run of zeros)."""
    words = [w for w in summary.split() if any(c.isalpha() for c in w)]
    if len(words) < 2:
        return "the summary must be a short sentence in words"
    if len(summary) > SUMMARY_CHARS:
        return f"the summary must be under {SUMMARY_CHARS} characters"
    return None


def escalation(inp: ReasoningInput, reason: str) -> Proposal:
    return Proposal(
        diagnosis=Diagnosis(
            root_cause=inp.topology.service,
            category="unknown",
            summary="no diagnosis",
            confidence=0.0,
            reasoner="model",
        ),
        action=None,
        escalate_reason=reason,
    )


known_targets = known_components


async def check_proposal(ctx: RunContext[ReasoningInput], p: Proposal) -> Proposal:
    """Send the model back with the reason when its proposal is not one rootloop can use.

    Root cause and target must be nodes of the map; never "healthy" while a finding is
    not; nothing on production; nothing that already failed for this diagnosis; nothing
    the gatekeeper would refuse; and an action only when this run's findings back it
    (``backing.unbacked_reason``). (A schema change passes here: the gate pauses it for
    a human, which is the right outcome.)
    """
    inp = ctx.deps
    known = known_targets(inp)
    names = ", ".join(sorted(known))
    if p.diagnosis.root_cause not in known:
        raise ModelRetry(
            f"root_cause '{p.diagnosis.root_cause}' is not a node of the map; "
            f"choose one of: {names}."
        )
    wordless = summary_reason(p.diagnosis.summary)
    if wordless:
        raise ModelRetry(wordless + ".")
    healthy = false_health_reason(p, inp)
    if healthy:
        raise ModelRetry(f"{healthy}; name the fault, or set action to null and escalate.")
    a = p.action
    if a is None:
        return p
    if a.target not in known:
        raise ModelRetry(
            f"action target '{a.target}' is not a node of the map; choose one of: {names}."
        )
    if inp.topology.is_production_resource(a.target) or any(
        inp.topology.node_is_production(n) for n in inp.topology.checks_of(a.target)
    ):
        raise ModelRetry(
            f"'{a.target}' is production: rootloop never acts on production. "
            "Propose a lower-environment action or none."
        )
    fp = a.fingerprint()
    failed = inp.context.failed_fingerprints(p.diagnosis.key) | {
        f.fingerprint for f in inp.prior.failed_actions if f.diagnosis_key == p.diagnosis.key
    }
    if fp in failed:
        raise ModelRetry(
            f"'{a.describe()}' already failed for {p.diagnosis.key}; propose a "
            "different action or none (escalate)."
        )
    refusal = inp.screen(a, p.diagnosis.key) if inp.screen is not None else None
    if refusal is not None:
        raise ModelRetry(
            f"the {refusal.gate} gate refuses '{a.describe()}': {refusal.reason}. "
            "Propose a lower-environment action or none."
        )
    unbacked = unbacked_reason(p, inp)
    if unbacked:
        raise ModelRetry(
            f"not backed by this run's findings: {unbacked}. Quote the evidence exactly as "
            "it appears in the findings, or set action to null and say why in escalate_reason."
        )
    return p
