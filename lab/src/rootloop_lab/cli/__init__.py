"""The lab's commands, added to the ``rootloop`` CLI by the ``rootloop.cli_plugins`` entry point.

The harness never imports the lab: ``rootloop.cli.main`` loads every plugin listed under
that entry-point group and calls it with its Typer app, so ``rootloop lab | demo | bench``
exist exactly when this distribution (``rootloop-lab``) is installed.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add ``rootloop lab …``, ``rootloop demo`` and ``rootloop bench`` to ``app``."""
    from . import bench as bench_cmds
    from . import demo as demo_cmds
    from . import lab as lab_cmds

    app.command("demo")(demo_cmds.demo)
    app.command("bench")(bench_cmds.bench)
    app.add_typer(lab_cmds.app, name="lab")
