"""rootloop: an autonomous debugging harness for microservices.

The public API is what this package exports (``__all__``); every submodule is
private and may change between releases::

    import rootloop

    topo = rootloop.load_map("rootloop.yaml")
    findings = await rootloop.sweep(topo)
    result = await rootloop.investigate(topo, reasoner="rules", on_event=print)
    print(result.status, result.pr)

Everything is async and runs in the caller's event loop. ``rootloop.testing`` has a
scripted reasoner, a recording executor and a static skill for tests.

The names load on first use (PEP 562), so importing one of rootloop's submodules does
not pay for the whole loop.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from rootloop.actions.once import Executor
    from rootloop.api import Investigation, MapLike, investigate, load_map, sweep
    from rootloop.context import DebugContext, RunStatus
    from rootloop.errors import RootloopError, TopologyError, UserError
    from rootloop.events import Event
    from rootloop.lease import LeaseHeld
    from rootloop.models import Finding, Outcome, Status
    from rootloop.reasoning.base import Proposal, Reasoner, ReasoningInput
    from rootloop.topology import Topology

#: public name -> the private module it lives in
_EXPORTS: dict[str, str] = {
    "investigate": "rootloop.api",
    "load_map": "rootloop.api",
    "sweep": "rootloop.api",
    "Investigation": "rootloop.api",
    "MapLike": "rootloop.api",
    "Topology": "rootloop.topology",
    "Finding": "rootloop.models",
    "Status": "rootloop.models",
    "Outcome": "rootloop.models",
    "Event": "rootloop.events",
    "DebugContext": "rootloop.context",
    "RunStatus": "rootloop.context",
    "Reasoner": "rootloop.reasoning.base",
    "ReasoningInput": "rootloop.reasoning.base",
    "Proposal": "rootloop.reasoning.base",
    "Executor": "rootloop.actions.once",
    "LeaseHeld": "rootloop.lease",
    "RootloopError": "rootloop.errors",
    "UserError": "rootloop.errors",
    "TopologyError": "rootloop.errors",
}

__all__ = [
    "DebugContext",
    "Event",
    "Executor",
    "Finding",
    "Investigation",
    "LeaseHeld",
    "MapLike",
    "Outcome",
    "Proposal",
    "Reasoner",
    "ReasoningInput",
    "RootloopError",
    "RunStatus",
    "Status",
    "Topology",
    "TopologyError",
    "UserError",
    "__version__",
    "investigate",
    "load_map",
    "sweep",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rootloop' has no attribute '{name}'")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


class _Package(types.ModuleType):
    """``rootloop.sweep`` is the public function, and also the name of a private module.

    Importing a submodule binds it on its package (``rootloop.sweep = <module>``), which
    would hide the function once anything imported the module. The package keeps the
    public name: a submodule that shares it stays importable by its full name
    (``from rootloop.sweep import ...``), it is just not bound here.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _EXPORTS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
