"""ModelConfig from a spec, the environment or a YAML ``model:`` block; providers built."""

from __future__ import annotations

from pathlib import Path

import pytest

from rootloop.errors import UserError
from rootloop.reasoning.model import ModelConfig, build_model, load_model_config


def test_spec_forms() -> None:
    c = ModelConfig.from_spec("anthropic:claude-sonnet-4-5")
    assert (c.provider, c.model, c.base_url) == ("anthropic", "claude-sonnet-4-5", None)
    local = ModelConfig.from_spec("ollama:llama3.1:8b")
    assert (local.provider, local.model) == ("openai", "llama3.1:8b")
    assert local.base_url == "http://127.0.0.1:11434/v1"
    b = ModelConfig.from_spec("bedrock:us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert b.model == "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    with pytest.raises(UserError, match="<provider>:<model>"):
        ModelConfig.from_spec("claude-sonnet-4-5")
    with pytest.raises(UserError, match="provider"):
        ModelConfig.from_spec("gemini:pro")


def test_from_env() -> None:
    assert ModelConfig.from_env({}) is None
    c = ModelConfig.from_env(
        {
            "ROOTLOOP_MODEL": "openai:qwen2.5-coder",
            "ROOTLOOP_MODEL_BASE_URL": "http://127.0.0.1:8000/v1",
            "ROOTLOOP_MODEL_MAX_INPUT_TOKENS": "32000",
            "ROOTLOOP_MODEL_TIMEOUT": "30",
            "ROOTLOOP_MODEL_PRICE_INPUT": "0.003",
            "ROOTLOOP_MODEL_PRICE_OUTPUT": "0.015",
        }
    )
    assert c is not None
    assert c.base_url == "http://127.0.0.1:8000/v1" and c.max_input_tokens == 32000
    assert c.timeout == 30.0 and c.price is not None and c.price.output_per_1k == 0.015


def test_yaml_block_and_env_precedence(tmp_path: Path) -> None:
    f = tmp_path / "rootloop.yaml"
    f.write_text(
        "service: payments-api\nmodel:\n  provider: bedrock\n  model: anthropic.claude-x\n"
        "  region: eu-west-1\n  max_input_tokens: 20000\n"
        "  price: {input_per_1k: 0.003, output_per_1k: 0.015}\n"
    )
    c = load_model_config(f, env={})
    assert c is not None and c.provider == "bedrock" and c.region == "eu-west-1"
    assert c.price is not None and c.price.cost(1000, 1000) == pytest.approx(0.018)
    env_wins = load_model_config(f, env={"ROOTLOOP_MODEL": "anthropic:claude-sonnet-4-5"})
    assert env_wins is not None and env_wins.provider == "anthropic"
    short = tmp_path / "short.yaml"
    short.write_text("model: ollama:llama3.1\n")
    sc = load_model_config(short, env={})
    assert sc is not None and sc.base_url == "http://127.0.0.1:11434/v1"
    none = tmp_path / "none.yaml"
    none.write_text("service: x\n")
    assert load_model_config(none, env={}) is None


def test_bad_block_names_the_field(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  provider: openai\n  model: gpt-x\n  max_input_tokens: 10\n")
    with pytest.raises(UserError, match=r"model\.max_input_tokens"):
        load_model_config(f, env={})
    f.write_text("model:\n  provider: openai\n  model: gpt-x\n  temprature: 0.1\n")
    with pytest.raises(UserError, match=r"temprature.*known fields"):
        load_model_config(f, env={})


def test_build_model_per_provider() -> None:
    # the providers' SDKs (anthropic, openai, boto3) are imported here, not at module
    # level: collection imports every test module in every xdist worker, and these
    # cost seconds of CPU that only this test needs (as the product imports them lazily)
    from pydantic_ai.models.anthropic import AnthropicModel
    from pydantic_ai.models.bedrock import BedrockConverseModel
    from pydantic_ai.models.openai import OpenAIChatModel

    a = build_model(
        ModelConfig.from_spec("anthropic:claude-sonnet-4-5"),
        env={"ANTHROPIC_API_KEY": "sk-ant-test"},
    )
    assert isinstance(a, AnthropicModel) and a.model_name == "claude-sonnet-4-5"
    with pytest.raises(UserError, match="export ANTHROPIC_API_KEY"):
        build_model(ModelConfig.from_spec("anthropic:claude-sonnet-4-5"), env={})
    with pytest.raises(UserError, match="export MY_KEY"):
        build_model(ModelConfig(provider="openai", model="gpt-x", api_key_env="MY_KEY"), env={})
    local = build_model(ModelConfig.from_spec("vllm:qwen"), env={})  # no key needed locally
    assert isinstance(local, OpenAIChatModel)
    assert str(local.client.base_url).startswith("http://127.0.0.1:8000/v1")
    b = build_model(
        ModelConfig(provider="bedrock", model="anthropic.claude-x", region="us-east-1"), env={}
    )
    assert isinstance(b, BedrockConverseModel)


def test_the_answer_cap_goes_in_the_field_the_endpoint_reads() -> None:
    """OpenAI reads max_completion_tokens; the compatible servers read max_tokens."""
    openai = build_model(ModelConfig.from_spec("openai:gpt-4.1"), env={"OPENAI_API_KEY": "sk-x"})
    assert openai.profile.get("openai_chat_supports_max_completion_tokens", True) is True
    for spec in ("llamacpp:gemma", "ollama:qwen", "vllm:qwen"):
        local = build_model(ModelConfig.from_spec(spec), env={})
        assert local.profile.get("openai_chat_supports_max_completion_tokens") is False, spec
