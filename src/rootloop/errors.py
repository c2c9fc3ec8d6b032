"""Errors rootloop raises, in three families.

    RootloopError                  base: the CLI catches only this and prints one line
    ├── UserError                  the user's input is wrong; the message says how to fix it
    │   ├── TopologyError          a map file is invalid (file, field path, what was expected)
    │   └── StateError             a run id, gate or state directory does not exist / fits not
    ├── PlatformError              a platform (AWS, GitHub, git, a process) failed; skills turn
    │                              these into findings, actions into failed results
    └── ControlFlow                not failures: the loop reacts to them
        ├── ApprovalRequired       a gate wants a human before this action runs
        └── ActionRefused          a gate refuses the action outright (production, target,
                                   autonomy); the run ends ``refused``, never retried

Library code raises; only ``rootloop.cli`` prints or exits.
"""

from __future__ import annotations


class RootloopError(Exception):
    """Base of every error rootloop raises on purpose."""


class UserError(RootloopError):
    """The user's input is wrong. The message is one paragraph that says how to fix it."""


class TopologyError(UserError):
    """A topology map is invalid."""

    def __init__(self, file: str, field: str, problem: str, fix: str = "") -> None:
        self.file, self.field, self.problem, self.fix = file, field, problem, fix
        msg = f"{file}: field '{field}': {problem}"
        if fix:
            msg += f" Fix: {fix}"
        super().__init__(msg)


class StateError(UserError):
    """Persisted state (a run, a gate, the state directory) is missing or inconsistent."""


class PlatformError(RootloopError):
    """A platform call failed. ``hint`` says what the operator can do about it."""

    def __init__(self, message: str, hint: str = "") -> None:
        self.hint = hint
        super().__init__(f"{message} ({hint})" if hint else message)


class ControlFlow(RootloopError):
    """Raised to steer the loop, never to report a bug."""


class ApprovalRequired(ControlFlow):
    def __init__(self, gate: str, reason: str) -> None:
        self.gate, self.reason = gate, reason
        super().__init__(f"approval required at gate '{gate}': {reason}")


class ActionRefused(ControlFlow):
    def __init__(self, gate: str, reason: str) -> None:
        self.gate, self.reason = gate, reason
        super().__init__(f"refused by gate '{gate}': {reason}")
