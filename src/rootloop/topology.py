"""Loading and validating topology maps.

The seed's JSON shape loads as it is (``service``, ``upstream[]``,
``downstream[]``, nodes ``{name, type, skill}``); everything a real run needs
is an optional extension of it: per-node settings beside those three keys,
``self`` (the service's own checks and repository), ``environment``,
``policy``, and ``map`` on a node to pull in that node's own map, so the graph
spans several services. Every problem is a ``TopologyError`` naming the file,
the field path and the fix — never a traceback.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import networkx as nx
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
)

from rootloop.errors import TopologyError, UserError
from rootloop.models.maps import LoadTestSpec as LoadTestSpec
from rootloop.models.maps import UiTestSpec as UiTestSpec
from rootloop.models.memory import MemoryConfig
from rootloop.models.nodes import Node, SkillCatalog
from rootloop.policy import Policy as Policy
from rootloop.production import (
    is_lower,
    name_production_reason,
    normalise,
    tag_production_reason,
)
from rootloop.redact import Redactor, is_sensitive_name

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
_NODE_KEYS = {"name", "type", "skill", "timeout", "map", "production", "tags", "compute", "logs"}
#: a node's own checks besides its main one (``compute``: the ECS service that runs it)
NODE_ASPECTS = ("compute", "logs")
#: how deep a map may nest: real maps are < 10; more is a mistake or an attack
MAX_DEPTH = 64
UNDECLARED = "undeclared"
_CHECK_KEYS = {"skill", "timeout"}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SECRET_KEYS = re.compile(r"^(password|passwd|token|secret|api_key|apikey|secret_key)$", re.I)
_URL_PASSWORD = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:([^@\s/]+)@")


class RawNode(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=NAME_RE)
    type: str
    skill: str
    timeout: float | None = Field(default=None, gt=0, le=600)
    map: str | None = None
    production: bool = False
    tags: dict[str, str] = {}
    compute: RawCheck | None = None
    logs: RawCheck | None = None


class RawCheck(BaseModel):
    model_config = ConfigDict(extra="allow")

    skill: str
    timeout: float | None = Field(default=None, gt=0, le=600)


RawNode.model_rebuild()


class RepoSpec(BaseModel):
    """Where the service's code lives and how its tests run."""

    model_config = ConfigDict(extra="forbid")

    path: str | None = None
    remote: str | None = None
    forge: Literal["local", "github"] = "local"
    github_repo: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.-]+$")
    default_branch: str = "main"
    test_command: str | None = None


class SelfSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    health: RawCheck | None = None
    compute: RawCheck | None = None
    logs: RawCheck | None = None
    ci: RawCheck | None = None
    repo: RepoSpec | None = None
    production: bool = False
    tags: dict[str, str] = {}


class RawMap(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    service: str = Field(pattern=NAME_RE)
    #: not declared means not lower: rootloop then diagnoses but never acts (default deny)
    environment: str = Field(default=UNDECLARED, min_length=1, max_length=100)
    upstream: list[RawNode] = []
    downstream: list[RawNode] = []
    self_: SelfSpec | None = Field(default=None, alias="self")
    policy: Policy = Policy()
    runbooks: str | None = None
    load_test: LoadTestSpec | None = None
    ui_test: UiTestSpec | None = None
    # validated by their own subsystems (rootloop.reasoning.model, rootloop.memory)
    model: dict[str, Any] | str | None = None
    memory: dict[str, Any] | None = None


@dataclass(frozen=True)
class MapScope:
    """One map file's say over the nodes it declares: its environment and policy."""

    service: str
    file: Path
    environment: str
    policy: Policy
    parents: tuple[str, ...] = ()  # the maps that pulled this one in with ``map:``


@dataclass
class Topology:
    """A validated map, expanded across every service it references."""

    service: str
    environment: str
    policy: Policy
    nodes: dict[str, Node]
    graph: nx.DiGraph  # components; an edge caller -> callee
    files: dict[str, Path]
    repo: RepoSpec | None = None
    runbooks: Path | None = None
    load_test: LoadTestSpec | None = None
    ui_test: UiTestSpec | None = None
    redactor: Redactor = field(default_factory=Redactor)
    memory: dict[str, Any] | None = None
    scopes: dict[str, MapScope] = field(default_factory=dict)
    #: component -> the maps that declare a check of it
    declared_by: dict[str, set[str]] = field(default_factory=dict)
    #: node name -> its later declarations in other maps (kept for their production marks)
    redeclared: dict[str, list[Node]] = field(default_factory=dict)

    @property
    def file(self) -> Path:
        return self.files[self.service]

    # -- environments and policy, strictest wins -------------------------------------------
    def scopes_of(self, component: str | None = None) -> list[MapScope]:
        """Every map with a say over ``component``: the root, the maps that declare it,
        its own map, and the maps that pulled those in. Without a component: the root."""
        names = {self.service}
        if component is not None:
            names |= self.declared_by.get(component, set())
            if component in self.scopes:
                names.add(component)
        todo, seen = list(names), set()
        while todo:
            name = todo.pop()
            if name in seen or name not in self.scopes:
                continue
            seen.add(name)
            todo.extend(self.scopes[name].parents)
        scopes = [self.scopes[n] for n in sorted(seen)]
        if not scopes:  # a Topology built by hand, without the loader
            scopes = [MapScope(self.service, Path(), self.environment, self.policy)]
        return scopes

    def environment_refusal(self, component: str | None = None) -> str | None:
        """Why ``component`` (default: the whole run) is not in a lower environment."""
        scopes = self.scopes_of(component)
        for scope in scopes:
            env = scope.environment
            where = "" if scope.service == self.service else f" (the map of '{scope.service}')"
            if env == UNDECLARED:
                return (
                    f"the map{where} declares no environment, so it is not known to be lower "
                    "(write 'environment:' with one of policy.act_in)"
                )
            named = name_production_reason(env)
            if named or normalise(env) in {
                normalise(e) for p in scopes for e in p.policy.production_environments
            }:
                return f"the environment '{env}'{where} is production"
            for other in scopes:
                if not is_lower(env, other.policy.act_in):
                    owner = "" if other.service == self.service else f" of '{other.service}'"
                    return (
                        f"the environment '{env}'{where} is not one the policy{owner} "
                        f"declares lower (policy.act_in: {', '.join(other.policy.act_in) or '[]'})"
                    )
        return None

    @property
    def is_production_env(self) -> bool:
        """True when the run's own environment is not declared lower (default deny)."""
        return self.environment_refusal() is not None

    def aws_accounts_for(self, component: str | None = None) -> list[str] | None:
        """The lower AWS accounts every map over ``component`` allows; None: none listed."""
        lists = [set(s.policy.aws_accounts) for s in self.scopes_of(component)]
        named = [acc for acc in lists if acc]
        if not named:
            return None
        return sorted(set.intersection(*named))

    def resource_refusal(
        self, name: str, tags: dict[str, str] | None = None, component: str | None = None
    ) -> str | None:
        """Why a resource (by its name and its own tags) must not be changed, or None."""
        scopes = self.scopes_of(component)
        env = self.environment_refusal(component)
        if env:
            return env
        for scope in scopes:
            why = name_production_reason(name, scope.policy.production_name_pattern)
            if why:
                return why
        for scope in scopes:
            act_in = [
                e
                for e in scope.policy.act_in
                if all(is_lower(e, other.policy.act_in) for other in scopes)
            ]
            why = tag_production_reason(tags or {}, act_in, scope.policy.production_tags)
            if why:
                return why
        return None

    def is_production_resource(self, name: str, tags: dict[str, str] | None = None) -> bool:
        """Production by the map's policy: the environment, a tag, or the resource's name."""
        return self.resource_refusal(name, tags) is not None

    def node_refusal(self, node: Node) -> str | None:
        for decl in [node, *self.redeclared.get(node.name, [])]:
            if decl.production:
                return f"'{decl.name}' is marked production in the map of '{decl.service}'"
            why = self.resource_refusal(decl.component, decl.tags, decl.component)
            if why:
                return why
        return self.resource_refusal(node.name, {}, node.component)

    def node_is_production(self, node: Node) -> bool:
        return self.node_refusal(node) is not None

    def checks_of(self, component: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.component == component]

    def downstream_of(self, component: str) -> list[str]:
        return list(self.graph.successors(component))


def load(path: str | Path, env: dict[str, str] | None = None, *, skills: SkillCatalog) -> Topology:
    """Load a map file (JSON or YAML) and every map it references.

    ``skills`` finds each node's skill (its settings schema and default timeout). The
    caller passes it — the entry points hand in ``rootloop.skills.registry`` (the
    built-ins and the installed plugins) — so the loader depends on no catalog of its
    own and sits above the skills only through the ``SkillCatalog`` protocol.
    """
    loader = _Loader(dict(os.environ) if env is None else env, skills)
    root = loader.load_file(Path(path), stack=[])
    loader.check_acyclic(root)
    return loader.result(root)


def field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


class _Loader:
    def __init__(self, env: dict[str, str], skills: SkillCatalog) -> None:
        self.env = env
        self.skills = skills
        self.redactor = Redactor()
        self.nodes: dict[str, Node] = {}
        self.graph = nx.DiGraph()
        self.files: dict[str, Path] = {}
        self.maps: dict[str, RawMap] = {}
        self.parents: dict[str, set[str]] = {}
        self.declared_by: dict[str, set[str]] = {}
        self.redeclared: dict[str, list[Node]] = {}

    # -- files ------------------------------------------------------------
    def load_file(self, path: Path, stack: list[Path], parent: str | None = None) -> RawMap:
        path = path.resolve() if path.exists() else path
        shown = str(path)
        if path in stack:
            chain = " -> ".join(p.name for p in [*stack, path])
            raise TopologyError(
                shown,
                "map",
                f"maps reference each other in a cycle: {chain}.",
                "remove one of the 'map:' references so the chain ends.",
            )
        if not path.exists():
            where = f"{stack[-1]}" if stack else shown
            raise TopologyError(
                where,
                "map" if stack else "(file)",
                f"the map file {shown} does not exist.",
                "check the path (relative paths start at the map's folder).",
            )
        data = self._parse(path)
        data = self._expand(data, shown, ())
        try:
            raw = RawMap.model_validate(data)
        except ValidationError as exc:
            raise _topology_error(shown, exc, data) from None
        if parent is not None and parent != raw.service:
            self.parents.setdefault(raw.service, set()).add(parent)
        if raw.service in self.maps:
            return self.maps[raw.service]
        self.maps[raw.service] = raw
        self.files[raw.service] = path
        self._add_service(raw, path, [*stack, path])
        return raw

    def _parse(self, path: Path) -> dict[str, Any]:
        shown = str(path)
        if path.is_dir():
            raise TopologyError(
                shown, "(file)", "is a directory, not a map file.", "pass the YAML or JSON file."
            )
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise TopologyError(
                shown, "(file)", f"cannot be read: {exc.strerror or exc}.", "check the path."
            ) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise TopologyError(
                shown,
                f"line {line}",
                f"is not UTF-8 text (byte {exc.start} is 0x{raw[exc.start]:02x}).",
                "save the map as UTF-8.",
            ) from None
        try:
            if path.suffix.lower() == ".json":
                data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
            else:
                data = yaml.load(text, Loader=_StrictLoader)
        except json.JSONDecodeError as exc:
            raise TopologyError(
                shown,
                f"line {exc.lineno} column {exc.colno}",
                f"invalid JSON: {exc.msg}.",
                "fix the syntax there.",
            ) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1} column {mark.column + 1}" if mark else "(file)"
            problem = getattr(exc, "problem", None) or str(exc)
            raise TopologyError(
                shown, where, f"invalid YAML: {problem}.", "fix the syntax there."
            ) from None
        except _DuplicateKey as exc:
            raise TopologyError(
                shown,
                exc.where,
                f"the key '{exc.key}' is written twice in the same mapping.",
                "keep one of them: a map with two values for one key is ambiguous.",
            ) from None
        except RecursionError:
            raise TopologyError(
                shown,
                "(file)",
                "is nested too deeply to be a map.",
                f"keep it under {MAX_DEPTH} levels.",
            ) from None
        if _depth(data) > MAX_DEPTH:
            raise TopologyError(
                shown,
                "(file)",
                f"is nested more than {MAX_DEPTH} levels deep.",
                "a map is a few levels deep; check the file is the map you meant.",
            )
        if not isinstance(data, dict):
            raise TopologyError(
                shown,
                "(top level)",
                f"expected a mapping with 'service', got {type(data).__name__}.",
                "start the file with 'service: <name>'.",
            )
        return data

    def _expand(self, value: Any, file: str, loc: tuple[Any, ...]) -> Any:
        """Resolve ``${VAR}`` references; refuse literal secrets."""
        if isinstance(value, dict):
            return {k: self._expand(v, file, (*loc, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self._expand(v, file, (*loc, i)) for i, v in enumerate(value)]
        if not isinstance(value, str):
            return value
        where = field_path(loc)
        literal = _ENV_REF.sub("", value)
        key = str(loc[-1]) if loc else ""
        if _SECRET_KEYS.match(key) and literal.strip():
            raise TopologyError(
                file,
                where,
                "secrets must not be written in the map.",
                f"write '${{{key.upper()}}}' and export {key.upper()}.",
            )
        if _URL_PASSWORD.search(literal):
            raise TopologyError(
                file,
                where,
                "the URL contains a literal password.",
                "move the whole URL (or the password) into an environment "
                "variable and write '${VAR}'.",
            )

        def sub(m: re.Match[str]) -> str:
            var, default = m.group(1), m.group(2)
            if var in self.env:
                self.redactor.add_env(var, self.env[var])
                return self.env[var]
            if default is not None:
                return default
            raise TopologyError(
                file,
                where,
                f"environment variable {var} is not set.",
                f"export {var}=... or write '${{{var}:-default}}'.",
            )

        expanded = _ENV_REF.sub(sub, value)
        if expanded != value and is_sensitive_name(key):  # `token: ${ANY_NAME}` is a secret
            self.redactor.add(expanded)
        return expanded

    # -- nodes ------------------------------------------------------------
    def _add_service(self, raw: RawMap, path: Path, stack: list[Path]) -> None:
        file = str(path)
        svc = raw.service
        self.graph.add_node(svc, type="service")
        selfspec = raw.self_ or SelfSpec()
        repo = _resolved_repo(selfspec.repo, path.parent)
        own_repo = {"path": repo.path, "remote": repo.remote} if repo and repo.path else None
        for aspect in ("health", "compute", "logs", "ci"):
            check: RawCheck | None = getattr(selfspec, aspect)
            if check is None:
                continue
            settings = {k: v for k, v in (check.model_extra or {}).items()}
            loc: tuple[str | int, ...] = ("self", aspect)
            self._add_node(
                file,
                loc,
                name=f"{svc}/{aspect}",
                type=aspect,
                skill=check.skill,
                role="self",
                component=svc,
                service=svc,
                timeout=check.timeout,
                production=selfspec.production,
                tags=selfspec.tags,
                settings=settings,
                policy=raw.policy,
                repo=own_repo,
            )
        for role in ("upstream", "downstream"):
            for i, rn in enumerate(getattr(raw, role)):
                loc = (role, i)
                settings = {k: v for k, v in (rn.model_extra or {}).items()}
                self._add_node(
                    file,
                    loc,
                    name=rn.name,
                    type=rn.type,
                    skill=rn.skill,
                    role=role,
                    component=rn.name,
                    service=svc,
                    timeout=rn.timeout,
                    production=rn.production,
                    tags=rn.tags,
                    settings=settings,
                    policy=raw.policy,
                )
                for aspect in NODE_ASPECTS:
                    extra: RawCheck | None = getattr(rn, aspect)
                    if extra is None:
                        continue
                    self._add_node(
                        file,
                        (*loc, aspect),
                        name=f"{rn.name}/{aspect}",
                        type=aspect,
                        skill=extra.skill,
                        role=role,
                        component=rn.name,
                        service=svc,
                        timeout=extra.timeout,
                        production=rn.production,
                        tags=rn.tags,
                        settings=dict(extra.model_extra or {}),
                        policy=raw.policy,
                    )
                self.graph.add_node(rn.name, type=rn.type)
                if role == "upstream":
                    self.graph.add_edge(rn.name, svc)
                else:
                    self.graph.add_edge(svc, rn.name)
                if rn.map:
                    sub = self.load_file((path.parent / rn.map), stack, parent=svc)
                    if sub.service != rn.name:
                        raise TopologyError(
                            file,
                            f"{field_path(loc)}.map",
                            f"points at the map of '{sub.service}', but the node is '{rn.name}'.",
                            "point it at the map whose 'service' is "
                            f"'{rn.name}', or rename the node.",
                        )

    def _add_node(
        self,
        file: str,
        loc: tuple[Any, ...],
        *,
        settings: dict[str, Any],
        policy: Policy,
        timeout: float | None,
        repo: dict[str, str | None] | None = None,
        **kw: Any,
    ) -> None:
        where = field_path(loc)
        label = f"{where} ({kw['name']})"
        try:
            skill = self.skills.get(kw["skill"])
        except UserError as exc:
            raise TopologyError(
                file,
                f"{label}.skill",
                f"{exc}.",
                "use one of the known skills or install the package that provides it.",
            ) from None
        try:
            parsed = skill.Settings.model_validate(
                settings, context={"node": kw["component"], "type": kw["type"], "repo": repo}
            )
        except ValidationError as exc:
            raise _topology_error(
                file,
                exc,
                settings,
                prefix=label,
                known=set(skill.Settings.model_fields) | _NODE_KEYS,
            ) from None
        node = Node(
            settings=parsed,
            timeout=timeout or getattr(skill, "default_timeout", None) or policy.default_timeout,
            **kw,
        )
        self.declared_by.setdefault(node.component, set()).add(node.service)
        existing = self.nodes.get(node.name)
        if existing is not None:
            if existing.skill != node.skill:
                raise TopologyError(
                    file,
                    f"{label}.skill",
                    f"'{node.name}' is declared again with skill "
                    f"'{node.skill}', but {existing.service}'s map checks it "
                    f"with '{existing.skill}'.",
                    "give the two nodes different names or the same skill.",
                )
            # one node, two maps: the first declaration checks it, but both say whether
            # it is production (a child map cannot unmark its parent's production node)
            self.redeclared.setdefault(node.name, []).append(node)
            return
        self.nodes[node.name] = node

    # -- whole graph ------------------------------------------------------
    def check_acyclic(self, root: RawMap) -> None:
        try:
            cycle = nx.find_cycle(self.graph)
        except nx.NetworkXNoCycle:
            return
        chain = " -> ".join([*(a for a, _ in cycle), cycle[0][0]])
        raise TopologyError(
            str(self.files[root.service]),
            "downstream",
            f"the dependency graph has a cycle: {chain}.",
            "a node cannot (transitively) call a service that calls it; "
            "remove one edge of the cycle.",
        )

    def result(self, root: RawMap) -> Topology:
        selfspec = root.self_ or SelfSpec()
        base = self.files[root.service].parent
        runbooks = (base / root.runbooks) if root.runbooks else None
        repo = _resolved_repo(selfspec.repo, base)
        memory = _validated_memory(str(self.files[root.service]), root.memory)
        scopes = {
            name: MapScope(
                service=name,
                file=self.files[name],
                environment=raw.environment,
                policy=raw.policy,
                parents=tuple(sorted(self.parents.get(name, ()))),
            )
            for name, raw in self.maps.items()
        }
        return Topology(
            service=root.service,
            environment=root.environment,
            policy=root.policy,
            nodes=self.nodes,
            graph=self.graph,
            files=self.files,
            repo=repo,
            runbooks=runbooks,
            load_test=root.load_test,
            ui_test=root.ui_test,
            redactor=self.redactor,
            memory=memory,
            scopes=scopes,
            declared_by=self.declared_by,
            redeclared=self.redeclared,
        )


def _resolved_repo(repo: RepoSpec | None, base: Path) -> RepoSpec | None:
    """The repository with a relative ``path`` read against the map file's directory."""
    if repo and repo.path and not Path(repo.path).is_absolute():
        return repo.model_copy(update={"path": str((base / repo.path).resolve())})
    return repo


def _validated_memory(file: str, block: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``memory:`` block checked here, so ``validate`` rejects what ``run`` would."""
    if block is None:
        return None
    try:
        MemoryConfig.model_validate(block)
    except ValidationError as exc:
        raise _topology_error(file, exc, block, prefix="memory") from None
    return block


def _topology_error(
    file: str, exc: ValidationError, data: Any, prefix: str = "", known: set[str] | None = None
) -> TopologyError:
    """Turn pydantic's first error into one paragraph a human can act on."""
    errors = exc.errors()
    err = errors[0]
    loc = tuple(err["loc"])
    if err["type"] == "union_tag_invalid" or not loc:
        loc = loc or ("(top level)",)
    where = field_path(loc)
    label = f"{prefix}.{where}" if prefix and where else (prefix or where)
    if prefix == "" and len(loc) >= 2 and loc[0] in ("upstream", "downstream"):
        try:
            name = data[loc[0]][loc[1]].get("name")
            if name:
                label = label.replace(f"{loc[0]}[{loc[1]}]", f"{loc[0]}[{loc[1]}] ({name})", 1)
        except (KeyError, IndexError, TypeError, AttributeError):
            pass
    typ, msg = err["type"], err["msg"]
    fix = ""
    if typ == "missing":
        problem = "is required but missing."
        fix = f"add '{loc[-1]}'."
    elif typ == "extra_forbidden":
        fields = known or _known_fields(loc)
        close = difflib.get_close_matches(str(loc[-1]), sorted(fields), n=1)
        problem = "is not a known field."
        fix = (
            f"did you mean '{close[0]}'?"
            if close
            else (f"known fields here: {', '.join(sorted(fields))}." if fields else "remove it.")
        )
    elif typ == "string_pattern_mismatch" and loc[-1] in ("name", "service"):
        problem = f"{err.get('input')!r} is not a valid name."
        fix = "use letters, digits, '.', '_' or '-', starting with a letter or digit."
    else:
        got = err.get("input")
        shown = repr(got) if not isinstance(got, dict | list) else type(got).__name__
        msg = msg.removeprefix("Value error, ")
        problem = f"{msg[0].lower()}{msg[1:]} (got {shown})."
    if len(errors) > 1:
        problem += f" ({len(errors) - 1} more problem(s) after this one.)"
    return TopologyError(file, label, problem, fix)


def _known_fields(loc: tuple[Any, ...]) -> set[str]:
    model: type[BaseModel] = RawMap
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fld = model.model_fields.get(part) or next(
            (f for f in model.model_fields.values() if f.alias == part), None
        )
        if fld is None:
            return set()
        ann = fld.annotation
        inner = getattr(ann, "__args__", (ann,))
        nxt = next((t for t in inner if isinstance(t, type) and issubclass(t, BaseModel)), None)
        if nxt is None:
            return set()
        model = nxt
    return {f.alias or n for n, f in model.model_fields.items()}


class _DuplicateKey(Exception):
    def __init__(self, key: Any, where: str) -> None:
        self.key, self.where = key, where
        super().__init__(f"duplicate key {key!r} at {where}")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k, "(a JSON object)")
        out[k] = v
    return out


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but a key written twice in one mapping is an error."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: PyYAML reports it itself
                continue
            if duplicate:
                mark = key_node.start_mark
                raise _DuplicateKey(key, f"line {mark.line + 1} column {mark.column + 1}")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _depth(value: Any) -> int:
    """How deeply containers nest, without recursion (a hostile file must not crash us)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict):
            items: Any = item.values()
        elif isinstance(item, list):
            items = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        todo.extend((v, level + 1) for v in items)
    return deepest
