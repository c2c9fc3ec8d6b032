"""A scenario pack shipped in a separate distribution is found through the
``rootloop.scenarios`` entry point, listed with its pack, and run by the bench with the
same scoring — installed with pip, as a user would, into a directory of its own that
only the subprocesses of this test see (nothing is installed into, or left in, .venv)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PACK = Path(__file__).resolve().parents[1] / "fixtures" / "scenario_pack"
ROOTLOOP = Path(sys.executable).with_name("rootloop")


@pytest.fixture(scope="module")
def pack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("pack-site")
    build = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    build += ["--no-build-isolation", "--no-index", "--target", str(target), str(PACK)]
    done = subprocess.run(build, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert list(target.glob("rootloop_scenario_pack_fixture-*.dist-info"))
    return target


def rootloop(
    *args: str, site: Path | None, cwd: Path, timeout: float = 120, **extra: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(extra)
    env["COLUMNS"] = "250"  # rich's tables: one row per line
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [str(ROOTLOOP), *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd
    )


def rows(table: str) -> dict[str, list[str]]:
    out = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("│| ").split("│")]
        if len(cells) > 2 and cells[0]:
            out[cells[0]] = cells
    return out


def test_the_installed_pack_is_listed_beside_the_lab_catalogue(pack_dir: Path, tmp_path: Path):
    done = rootloop("lab", "scenarios", site=pack_dir, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    listed = rows(done.stdout)
    assert listed["game-day-notifier-stuck"][1] == "game-day"
    assert listed["game-day-notifier-stuck"][2] == "notification-svc"
    assert listed["pg-blocking-lock"][1] == "lab"  # the built-in catalogue, as a pack


def test_without_the_pack_its_scenarios_are_absent(tmp_path: Path):
    done = rootloop("lab", "scenarios", site=None, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "game-day-notifier-stuck" not in done.stdout
    missing = rootloop("bench", "--pack", "game-day", site=None, cwd=tmp_path)
    assert missing.returncode == 2
    assert "no scenario pack 'game-day' is installed" in " ".join(missing.stdout.split())
    assert "Traceback" not in missing.stderr + missing.stdout


def test_a_pack_that_does_not_load_is_a_clear_error(tmp_path: Path):
    site = tmp_path / "site"
    info = site / "broken_pack-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-pack\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[rootloop.scenarios]\nbroken = no_such_module_here:scenarios\n"
    )
    done = rootloop("lab", "scenarios", site=site, cwd=tmp_path)
    assert done.returncode == 1
    said = " ".join((done.stdout + done.stderr).split())
    assert "scenario pack 'broken'" in said and "ModuleNotFoundError" in said
    assert "Traceback" not in done.stderr


@pytest.mark.lab
@pytest.mark.e2e
def test_the_bench_runs_the_pack_with_the_same_scoring(pack_dir: Path, tmp_path: Path):
    """The whole bench on the pack: a clean lab, the pack's injector, rootloop's run, the
    pack's own probe. The notifier's lock is a fault rootloop fixes with a restart."""
    table = tmp_path / "bench.md"
    done = rootloop(
        "bench", "--pack", "game-day", "--markdown", str(table),
        site=pack_dir, cwd=tmp_path, timeout=900, ROOTLOOP_STATE_DIR=str(tmp_path / "state"),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = table.read_text().splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    (row,) = [ln for ln in lines if ln.startswith("| game-day-notifier-stuck")]
    got = dict(zip(header, [c.strip() for c in row.strip("|").split("|")], strict=True))
    assert got["root cause found"] == "yes"
    assert got["category right"] == "yes"
    assert got["truly fixed"] == "yes"  # the pack's own probe, not rootloop's word
    assert got["false claim"] == ""
    assert "false 'fixed' claims: 0 of 1" in table.read_text()


def test_every_scenario_of_the_lab_pack_has_complete_ground_truth():
    """Each registered scenario names a category rootloop knows, a node of the lab's map,
    action kinds that exist, and an injector and probe to call."""
    from rootloop.actions.types import fields_of
    from rootloop.reasoning import categories
    from rootloop_lab import packs

    lab_pack = packs.of_pack("lab")
    assert len(lab_pack) >= 16
    nodes = {"payments-api", "postgresql", "redis", "lambda-worker", "notification-svc",
             "sqs-payments", "api-gateway", "frontend-app"}  # fmt: skip
    for sc in lab_pack:
        t = sc.truth
        assert t.category in categories.ALL, t.name
        assert t.root_cause in nodes, t.name
        assert all(fields_of(k) for k in t.fix_kinds), t.name
        assert callable(sc.inject) and callable(sc.probe), t.name
        assert t.fixable == bool(t.fix_kinds) or t.gate is not None, t.name
