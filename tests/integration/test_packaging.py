"""The two distributions, built as wheels and installed into fresh virtualenvs.

``rootloop`` alone is the harness: no ``rootloop_lab``, no lab commands, none of the
lab's dependencies. Adding ``rootloop-lab`` adds ``rootloop lab | demo | bench``
through the ``rootloop.cli_plugins`` entry point.

No index is used, so the test does not depend on the network or its speed: the wheels
are built offline (hatchling from the dev extras) and each fresh virtualenv sees
exactly the dependency closure its installed wheels declare — resolved from their
``Requires-Dist`` against this environment and linked into a directory the venv
reads through a ``.pth`` file. A dependency a wheel forgets to declare is therefore
missing there, as it would be for a user (``rootloop demo`` once stopped at "No module
named 'moto'" for exactly that reason).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
OURS = {"rootloop", "rootloop-lab"}
LAB_COMMANDS = {"lab", "demo", "bench"}


def run(*cmd: str | Path, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=600, cwd=cwd, env=env
    )
    if check:
        assert done.returncode == 0, f"{cmd}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done


def build_wheel(project: Path, name: str, out: Path) -> Path:
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--no-index", "-w", out, project, cwd=out)  # fmt: skip
    (wheel,) = out.glob(f"{name.replace('-', '_')}-*.whl")
    return wheel


def requires(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(meta).decode()
    return re.findall(r"^Requires-Dist: (.+)$", text, flags=re.MULTILINE)


def requirement_names(wheel: Path) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requires(wheel)}


def closure(reqs: Iterable[str]) -> dict[str, Distribution]:
    """Every installed distribution the requirements pull in (extras and markers applied)."""
    found: dict[str, Distribution] = {}
    todo: list[tuple[str, frozenset[str]]] = [(r, frozenset()) for r in reqs]
    while todo:
        text, extras = todo.pop()
        req = Requirement(text)
        wanted = extras or {""}
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in wanted):
            continue
        name = canonicalize_name(req.name)
        if name in OURS:
            continue
        try:
            dist = distribution(req.name)
        except PackageNotFoundError:
            pytest.fail(f"{text}: declared, but not installed in this environment")
        assert dist.version in req.specifier or not req.specifier, f"{text}: {dist.version}"
        key = f"{name}[{','.join(sorted(req.extras))}]"
        if key in found:
            continue
        found[key] = dist
        todo += [(r, frozenset(req.extras)) for r in dist.requires or []]
    return found


def link_closure(dists: Iterable[Distribution], into: Path) -> None:
    """Symlink each distribution's top-level files and folders (from its RECORD)."""
    into.mkdir(exist_ok=True)
    for dist in dists:
        assert dist.files is not None, f"{dist.metadata['Name']} has no RECORD"
        for top in {f.parts[0] for f in dist.files}:
            if top in ("..", "__pycache__") or top.endswith(".pth"):
                continue
            source = Path(str(dist.locate_file(top)))
            if source.exists() and not (into / top).exists():
                (into / top).symlink_to(source)


class FreshVenv:
    def __init__(self, path: Path) -> None:
        run(sys.executable, "-m", "venv", "--without-pip", path, cwd=path.parent)
        self.path = path
        self.python = path / "bin" / "python"
        purelib = run(self.python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                      cwd=path).stdout.strip()  # fmt: skip
        self.deps = path / "linked-deps"
        Path(purelib, "linked_deps.pth").write_text(f"{self.deps}\n")

    def install(self, wheel: Path) -> None:
        link_closure(closure(requires(wheel)).values(), self.deps)
        # dependencies are resolved (not skipped) against what the venv sees: a missing
        # one fails here, since there is no index to fetch it from
        run(sys.executable, "-m", "pip", "--python", self.python, "install", "--quiet",
            "--no-index", "--no-cache-dir", wheel, cwd=self.path)  # fmt: skip

    def python_ok(self, code: str) -> subprocess.CompletedProcess[str]:
        return run(self.python, "-c", code, cwd=self.path, check=False)

    def commands(self) -> set[str]:
        out = run(self.path / "bin" / "rootloop", "--help", cwd=self.path).stdout
        return set(re.findall(r"^│ (\w[\w-]*) ", out, flags=re.MULTILINE))


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    return {
        "rootloop": build_wheel(ROOT, "rootloop", out),
        "rootloop-lab": build_wheel(ROOT / "lab", "rootloop-lab", out),
    }


def test_the_wheels_hold_their_own_packages_only(wheels: dict[str, Path]) -> None:
    with zipfile.ZipFile(wheels["rootloop"]) as z:
        product = z.namelist()
    with zipfile.ZipFile(wheels["rootloop-lab"]) as z:
        lab = z.namelist()
    assert {n.split("/")[0] for n in product if not n.startswith("rootloop-")} == {"rootloop"}
    assert {n.split("/")[0] for n in lab if ".dist-info" not in n} == {"rootloop_lab"}
    assert not [n for n in product if n.startswith("rootloop/lab/")]
    # the lab ships its service template (source, schema, tests) as data
    assert "rootloop_lab/service_template/schema.sql" in lab
    assert "rootloop_lab/service_template/tests/test_batch.py" in lab
    assert {"rootloop", "moto"} <= requirement_names(wheels["rootloop-lab"])
    assert "moto" not in requirement_names(wheels["rootloop"])


def test_the_harness_alone_then_with_the_lab(wheels: dict[str, Path], tmp_path: Path) -> None:
    venv = FreshVenv(tmp_path / "venv")
    venv.install(wheels["rootloop"])

    harness = venv.commands()
    assert {"run", "sweep", "validate", "mcp"} <= harness
    assert not harness & LAB_COMMANDS
    missing = venv.python_ok("import rootloop_lab")
    assert missing.returncode != 0 and "No module named 'rootloop_lab'" in missing.stderr
    assert venv.python_ok("import moto").returncode != 0  # the lab's dependency, not ours
    assert venv.python_ok("import rootloop, rootloop.cli.main").returncode == 0

    venv.install(wheels["rootloop-lab"])
    assert venv.commands() == harness | LAB_COMMANDS
    listed = run(venv.path / "bin" / "rootloop", "lab", "scenarios", cwd=tmp_path)
    assert "oom-batch" in listed.stdout
    imports = "import moto.server, rootloop_lab.servers.emulator, rootloop_lab.supervisor"
    assert venv.python_ok(imports).returncode == 0


def test_the_fixture_closure_sees_what_this_venv_runs_on() -> None:
    """The closure helper itself: a known chain of dependencies is followed."""
    found = {canonicalize_name(d.metadata["Name"]) for d in closure(["rich>=13"]).values()}
    assert {"rich", "pygments", "markdown-it-py", "mdurl"} <= found
