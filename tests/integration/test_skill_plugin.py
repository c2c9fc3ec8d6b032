"""A skill shipped in a separate distribution is found through the ``rootloop.skills``
entry point and run by the sweep — installed with pip, as a user would, into a
directory of its own that only the subprocesses of this test see."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parents[1] / "fixtures" / "skill_plugin"
ROOTLOOP = Path(sys.executable).with_name("rootloop")


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("plugin-site")
    build = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    build += ["--no-build-isolation", "--no-index", "--target", str(target), str(PLUGIN)]
    done = subprocess.run(build, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert list(target.glob("rootloop_skill_plugin_fixture-*.dist-info"))
    return target


def rootloop(*args: str, site: Path | None, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [str(ROOTLOOP), *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd
    )


def write_map(tmp_path: Path) -> Path:
    present = tmp_path / "present.txt"
    present.write_text("here\n")
    path = tmp_path / "rootloop.yaml"
    path.write_text(
        "service: files\n"
        "downstream:\n"
        "  - {name: config, type: file, skill: file-present, path: " + f"'{present}'" + "}\n"
        "  - {name: secret, type: file, skill: file-present, path: "
        + f"'{tmp_path / 'absent.txt'}'"
        + "}\n",
        encoding="utf-8",
    )
    return path


def test_an_entry_point_skill_is_found_and_run(plugin_dir: Path, tmp_path: Path) -> None:
    map_file = write_map(tmp_path)
    done = rootloop("sweep", "--json", "-t", str(map_file), site=plugin_dir, cwd=tmp_path)
    assert done.returncode == 1, done.stderr  # one node critical: the sweep says so
    findings = {f["node"]: f for f in json.loads(done.stdout)}
    assert findings["config"]["skill"] == "file-present"
    assert findings["config"]["status"] == "ok"
    assert findings["secret"]["status"] == "critical"
    assert findings["secret"]["summary"] == "absent.txt is missing"


def test_without_the_plugin_the_map_names_an_unknown_skill(tmp_path: Path) -> None:
    map_file = write_map(tmp_path)
    done = rootloop("validate", "-t", str(map_file), site=None, cwd=tmp_path)
    assert done.returncode != 0
    assert "file-present" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
