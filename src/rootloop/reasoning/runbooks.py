"""Runbooks: per-service YAML mapping a diagnosis category to a ladder of remediations.

    service: payments-api
    ladders:
      oom:
        - kind: set-task-resources
          memory: "{memory_x2}"
        - kind: apply-patch
          title: "reduce batch size 1000 -> 100"
          edits: [{path: app/batch.py, search: "BATCH_SIZE = 1000", replace: "BATCH_SIZE = 100"}]

A rung is an action (see ``rootloop.actions.types``) whose string values may
hold ``{fact}`` placeholders filled from what the reasoner read in the findings.
The ladder is climbed one rung per iteration; a rung that already failed for
the same diagnosis is skipped; when no rung is left the run escalates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from rootloop.errors import UserError
from rootloop.models.actions import BaseAction, fields_of, parse_action

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


class RunbookFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: str
    ladders: dict[str, list[dict[str, Any]]] = {}


@dataclass
class Rung:
    action: BaseAction | None
    source: str  # "payments-api.yaml#oom[1]"
    missing: list[str] = field(default_factory=list)


@dataclass
class Runbooks:
    books: dict[str, RunbookFile] = field(default_factory=dict)

    def ladder(self, services: list[str], category: str) -> tuple[str, list[dict[str, Any]]]:
        """The first ladder for ``category`` among ``services``, then the defaults."""
        for svc in [*services, "*"]:
            book = self.books.get(svc)
            if book and category in book.ladders:
                return svc, book.ladders[category]
        return "", []

    def rungs(
        self, services: list[str], category: str, facts: dict[str, Any], defaults: dict[str, Any]
    ) -> list[Rung]:
        svc, ladder = self.ladder(services, category)
        out = []
        for i, raw in enumerate(ladder):
            source = f"{'default' if svc in ('', '*') else svc}#{category}[{i}]"
            accepted = fields_of(str(raw.get("kind", "")))
            base = {k: v for k, v in defaults.items() if k in accepted}
            filled, missing = fill({**base, **raw}, facts)
            if missing:
                out.append(Rung(None, source, missing))
                continue
            try:
                out.append(Rung(parse_action(filled), source))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"][1:])
                raise UserError(f"runbook {source}: field '{where}': {first['msg']}") from None
        return out


def fill(raw: Any, facts: dict[str, Any]) -> tuple[Any, list[str]]:
    """Replace ``{fact}`` placeholders; a value that is one placeholder keeps the fact's type."""
    missing: list[str] = []

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        if not isinstance(v, str):
            return v
        whole = _PLACEHOLDER.fullmatch(v)
        if whole:
            key = whole.group(1)
            if facts.get(key) is None:
                missing.append(key)
                return v
            return facts[key]

        def sub(m: re.Match[str]) -> str:
            if facts.get(m.group(1)) is None:
                missing.append(m.group(1))
                return m.group(0)
            return str(facts[m.group(1)])

        return _PLACEHOLDER.sub(sub, v)

    return walk(raw), missing


def load(path: Path | None) -> Runbooks:
    """Load every runbook in a folder (or one file), plus the built-in defaults."""
    books: dict[str, RunbookFile] = {}
    default_text = files("rootloop.reasoning").joinpath("default_runbooks.yaml").read_text()
    books["*"] = RunbookFile.model_validate(yaml.safe_load(default_text))
    if path is None:
        return Runbooks(books)
    if not path.exists():
        raise UserError(
            f"runbooks: {path} does not exist (set 'runbooks:' in the map to a "
            "folder of <service>.yaml files, or remove it)."
        )
    targets = sorted(path.glob("*.y*ml")) if path.is_dir() else [path]
    for file in targets:
        try:
            book = RunbookFile.model_validate(yaml.safe_load(file.read_text()) or {})
        except (yaml.YAMLError, ValidationError) as exc:
            raise UserError(
                f"runbook {file}: {str(exc).splitlines()[0]} — expected "
                "'service: NAME' and 'ladders: {category: [actions]}'."
            ) from None
        books[book.service] = book
    return Runbooks(books)
