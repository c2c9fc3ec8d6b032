"""Sessions share botocore's data loader, and nothing else: not credentials, not profiles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ProfileNotFound

from rootloop.platforms.aws.session import AwsConfig, clear_cache, clients_for


@pytest.fixture(autouse=True)
def _isolated_aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    creds = tmp_path / "credentials"
    creds.write_text("[default]\naws_access_key_id = AKIAFIRST\naws_secret_access_key = one\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config-that-does-not-exist"))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_DATA_PATH"):
        monkeypatch.delenv(name, raising=False)
    clear_cache()
    yield creds
    clear_cache()


def _loader(cfg: AwsConfig) -> object:
    return clients_for(cfg).session._session.get_component("data_loader")


def test_two_sessions_share_one_loader_and_its_search_path_stays_put() -> None:
    first = _loader(AwsConfig(region="us-east-1", read_timeout=5))
    paths = list(first.search_paths)  # type: ignore[attr-defined]
    for timeout in range(6, 30):
        assert _loader(AwsConfig(region="eu-west-1", read_timeout=timeout)) is first
    clear_cache()
    assert _loader(AwsConfig(region="us-east-1", read_timeout=5)) is first
    assert first.search_paths == paths  # type: ignore[attr-defined]
    ecs = clients_for(AwsConfig(region="eu-west-1", read_timeout=6)).ecs
    assert ecs.meta.region_name == "eu-west-1"
    assert ecs.meta.service_model.service_name == "ecs"


def test_credentials_are_read_again_after_the_cache_is_cleared(_isolated_aws: Path) -> None:
    cfg = AwsConfig(region="us-east-1")
    assert clients_for(cfg).session.get_credentials().access_key == "AKIAFIRST"
    _isolated_aws.write_text(
        "[default]\naws_access_key_id = AKIASECOND\naws_secret_access_key = two\n"
    )
    clear_cache()
    assert clients_for(cfg).session.get_credentials().access_key == "AKIASECOND"


def test_a_missing_profile_is_botocores_error_as_before() -> None:
    with pytest.raises(ProfileNotFound):
        clients_for(AwsConfig(region="us-east-1", profile="nobody-has-this-profile"))


def test_a_data_path_of_its_own_gets_a_loader_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = _loader(AwsConfig(region="us-east-1"))
    models = tmp_path / "models"
    models.mkdir()
    monkeypatch.setenv("AWS_DATA_PATH", str(models))
    clear_cache()
    own = _loader(AwsConfig(region="us-east-1"))
    assert own is not default
    assert str(models) in own.search_paths  # type: ignore[attr-defined]
    assert str(models) not in default.search_paths  # type: ignore[attr-defined]
