"""The map loader finds skills through the catalog it is handed (it has no default of
its own; ``rootloop.load_map`` hands it the registry): it validates each node's settings
with that catalog's schemas."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

import rootloop
from rootloop import topology
from rootloop.errors import TopologyError, UserError
from rootloop.models.nodes import SkillSettings


class PortSettings(SkillSettings):
    port: int


class PortSkill:
    Settings: ClassVar[type[SkillSettings]] = PortSettings
    default_timeout: ClassVar[float] = 7.0


class Catalog:
    """Knows one skill, ``port``, that the built-in registry does not."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def get(self, name: str, /) -> PortSkill:
        self.asked.append(name)
        if name != "port":
            raise UserError(f"unknown skill '{name}'")
        return PortSkill()


MAP = "service: svc\ndownstream:\n  - {name: db, type: tcp, skill: port, port: 5432}\n"


def test_the_loader_uses_the_catalog_it_is_handed(tmp_path: Path):
    (tmp_path / "m.yaml").write_text(MAP)
    catalog = Catalog()
    topo = topology.load(tmp_path / "m.yaml", env={}, skills=catalog)
    assert catalog.asked == ["port"]
    node = topo.nodes["db"]
    assert isinstance(node.settings, PortSettings) and node.settings.port == 5432
    assert node.timeout == 7.0


def test_a_catalog_validates_settings_and_the_registry_does_not_know_its_skill(tmp_path: Path):
    (tmp_path / "m.yaml").write_text(MAP.replace("5432", "'not a port'"))
    with pytest.raises(TopologyError):
        rootloop.load_map(tmp_path / "m.yaml", env={}, skills=Catalog())
    (tmp_path / "m.yaml").write_text(MAP)
    with pytest.raises(TopologyError, match="unknown skill 'port'"):
        rootloop.load_map(tmp_path / "m.yaml", env={})  # the built-in registry


def test_the_loader_has_no_catalog_of_its_own(tmp_path: Path):
    """It must be handed one (the import contract keeps ``rootloop.topology`` off the
    registry); the public API is where the built-in one is the default."""
    (tmp_path / "m.yaml").write_text(MAP)
    with pytest.raises(TypeError, match="skills"):
        topology.load(tmp_path / "m.yaml", env={})  # no skills= argument
    assert rootloop.load_map(tmp_path / "m.yaml", env={}, skills=Catalog()).nodes["db"]
