"""Scenario packs: game-day faults that any installed distribution can add to the lab.

A pack is an entry point in the ``rootloop.scenarios`` group whose object is a list
of ``PackScenario`` (or a function returning one). The entry point's name is the
pack's name. Each ``PackScenario`` carries

- ``truth``: the ground truth (root-cause node, category, whether rootloop may fix it
  alone, the gate it must stop at, …) — a ``Scenario``;
- ``inject(lab, state, wait)``: applies the real fault to the running lab (data,
  configuration, processes, the emulator's state — never a planted finding) and
  returns facts about it;
- ``probe(lab, state)``: ``(fixed, detail)``, asked of the real system with the
  pack's own clients, never through rootloop's skills — the bench's "truly fixed".

The lab's own catalogue registers exactly this way (``lab/pyproject.toml``), so
``rootloop bench --pack NAME`` scores another package's scenarios with the same
table. Why entry points: a team writes faults for its own system in its own repo and
installs them beside the lab; nothing here has to know them.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from rootloop.errors import UserError
from rootloop.state import atomic_write
from rootloop_lab.scenarios import Scenario, Truth

if TYPE_CHECKING:
    from rootloop_lab.lab import Lab
    from rootloop_lab.layout import LabState

__all__ = ["ENTRY_POINT_GROUP", "PackScenario", "Scenario", "Truth", "catalogue", "get"]

ENTRY_POINT_GROUP = "rootloop.scenarios"

Injector = Callable[["Lab", "LabState", bool], "dict[str, Any] | None"]
Probe = Callable[["Lab", "LabState"], "tuple[bool, str]"]


@dataclass(frozen=True)
class PackScenario:
    """One scenario of a pack: its ground truth, its injector and its own probe."""

    truth: Scenario
    inject: Injector
    probe: Probe
    pack: str = ""  # filled in by the loader: the entry point's name

    @property
    def name(self) -> str:
        return self.truth.name


@functools.cache
def catalogue() -> dict[str, PackScenario]:
    """Every installed pack's scenarios by name, in pack order (the lab's first).

    A pack that does not load, or registers something that is not a ``PackScenario``,
    or a scenario name two packs both claim, is a clear error naming the pack: a
    silently dropped scenario would make a bench look better than it is.
    """
    found: dict[str, PackScenario] = {}
    eps = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name != "lab", e.name))
    for ep in eps:
        for sc in _load(ep.name, ep.value, ep.load):
            if sc.name in found:
                raise UserError(
                    f"scenario '{sc.name}' is registered by both pack '{found[sc.name].pack}' "
                    f"and pack '{ep.name}': rename one of them"
                )
            found[sc.name] = PackScenario(sc.truth, sc.inject, sc.probe, ep.name)
    return found


def _load(pack: str, where: str, load: Callable[[], Any]) -> list[PackScenario]:
    try:
        obj = load()
        items = obj() if callable(obj) else obj
        scenarios = list(items) if isinstance(items, Iterable) else None
    except Exception as exc:  # a third party's import error must not be a traceback
        raise UserError(
            f"scenario pack '{pack}' ({where}) failed to load: {type(exc).__name__}: {exc}"
        ) from None
    if scenarios is None or not all(isinstance(s, PackScenario) for s in scenarios):
        raise UserError(
            f"scenario pack '{pack}' ({where}) must be a list of "
            "rootloop_lab.packs.PackScenario, or a function returning one"
        )
    return scenarios


def packs() -> dict[str, list[PackScenario]]:
    out: dict[str, list[PackScenario]] = {}
    for sc in catalogue().values():
        out.setdefault(sc.pack, []).append(sc)
    return out


def get(name: str) -> PackScenario:
    known = catalogue()
    if name not in known:
        raise UserError(f"unknown scenario '{name}': known scenarios are {', '.join(known)}")
    return known[name]


def of_pack(pack: str) -> list[PackScenario]:
    by_pack = packs()
    if pack not in by_pack:
        raise UserError(
            f"no scenario pack '{pack}' is installed: installed packs are "
            f"{', '.join(by_pack) or 'none'} (entry-point group {ENTRY_POINT_GROUP})"
        )
    return by_pack[pack]


def inject(lab: Lab, name: str, *, wait: bool = True) -> dict[str, Any]:
    """Apply the scenario's fault and record it in the lab's ``faults.json``."""
    sc = get(name)
    facts = dict(sc.inject(lab, lab.state(), wait) or {})
    if sc.truth.production:
        facts["map"] = str(lab.write_map(production=True))
    record = {"scenario": name, "pack": sc.pack, "at": time.time(), **facts}
    faults = lab.root / "faults.json"
    done = json.loads(faults.read_text()) if faults.exists() else []
    atomic_write(faults, json.dumps([*done, record], indent=1, default=str) + "\n")
    return facts


def probe(lab: Lab, name: str) -> Truth:
    """Whether ``name``'s injected fault is truly gone, by the pack's own probe."""
    sc = get(name)
    fixed, detail = sc.probe(lab, lab.state())
    return Truth(fixed=bool(fixed), detail=detail)
