"""ElastiCache (Redis): cluster status, memory, evictions, connections, CPU, replication.

Status from DescribeCacheClusters / DescribeReplicationGroups; the numbers
from CloudWatch (AWS/ElastiCache) per member cluster. Evictions with memory
near full is the signature of an undersized cache or a wrong maxmemory-policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import Field, model_validator

from rootloop.models import Evidence, Finding, Signal, Status, worst
from rootloop.models.nodes import Node, SkillSettings, node_default
from rootloop.platforms.aws.metrics import Window
from rootloop.platforms.aws.session import AwsClients, AwsConfig
from rootloop.skills import verdicts
from rootloop.skills.aws_base import AwsSkill
from rootloop.skills.cloudwatch_metrics import MetricAssessment, MetricSpec, assess
from rootloop.skills.verdicts import Rule, Value

_BAD = {"incompatible-network", "restore-failed", "deleted", "deleting", "create-failed"}
MAX_MEMBERS = 6


class Settings(SkillSettings, AwsConfig):
    fill_from_node: ClassVar[Any] = node_default("cluster_id", "replication_group_id")

    cluster_id: str | None = None
    replication_group_id: str | None = None
    window_minutes: float = Field(default=15, gt=0, le=1440)
    baseline_minutes: float = Field(default=60, gt=0, le=10080)
    memory_warn_pct: float = 80.0
    memory_crit_pct: float = 95.0
    evictions_warn: float = 1.0
    cpu_warn_pct: float = 80.0
    connections_warn: float | None = None
    replication_lag_warn_s: float = 5.0

    @model_validator(mode="after")
    def _one_id(self) -> Settings:
        if not (self.cluster_id or self.replication_group_id):
            raise ValueError("give 'cluster_id' or 'replication_group_id'")
        return self


@dataclass
class CacheState:
    status: str
    engine: str
    node_type: str
    members: list[str]
    roles: dict[str, str] = field(default_factory=dict)
    metrics: list[MetricAssessment] = field(default_factory=list)


def inspect(clients: AwsClients, s: Any, window: Window) -> CacheState:
    ec = clients.elasticache
    if s.replication_group_id:
        rg = ec.describe_replication_groups(ReplicationGroupId=s.replication_group_id)[
            "ReplicationGroups"
        ][0]
        roles = {
            m["CacheClusterId"]: m.get("CurrentRole", "")
            for g in rg.get("NodeGroups", [])
            for m in g.get("NodeGroupMembers", [])
        }
        st = CacheState(
            status=rg.get("Status", "?"),
            engine=rg.get("Engine", "redis"),
            node_type=rg.get("CacheNodeType", "?"),
            members=list(rg.get("MemberClusters", []))[:MAX_MEMBERS],
            roles=roles,
        )
    else:
        cc = ec.describe_cache_clusters(CacheClusterId=s.cluster_id, ShowCacheNodeInfo=True)[
            "CacheClusters"
        ][0]
        st = CacheState(
            status=cc.get("CacheClusterStatus", "?"),
            engine=cc.get("Engine", "?"),
            node_type=cc.get("CacheNodeType", "?"),
            members=[s.cluster_id],
        )
    specs = []
    for member in st.members:
        dims = {"CacheClusterId": member}
        tag = f"[{member}]" if len(st.members) > 1 else ""
        specs += [
            MetricSpec(
                namespace="AWS/ElastiCache",
                name="DatabaseMemoryUsagePercentage",
                dimensions=dims,
                stat="Maximum",
                label=f"memory_pct{tag}",
                unit="%",
                warn=s.memory_warn_pct,
                crit=s.memory_crit_pct,
            ),
            MetricSpec(
                namespace="AWS/ElastiCache",
                name="Evictions",
                dimensions=dims,
                stat="Sum",
                label=f"evictions{tag}",
                warn=s.evictions_warn,
            ),
            MetricSpec(
                namespace="AWS/ElastiCache",
                name="CurrConnections",
                dimensions=dims,
                stat="Maximum",
                label=f"connections{tag}",
                warn=s.connections_warn,
            ),
            MetricSpec(
                namespace="AWS/ElastiCache",
                name="EngineCPUUtilization",
                dimensions=dims,
                stat="Maximum",
                label=f"engine_cpu_pct{tag}",
                unit="%",
                warn=s.cpu_warn_pct,
            ),
        ]
        if st.roles.get(member, "") == "replica":
            specs.append(
                MetricSpec(
                    namespace="AWS/ElastiCache",
                    name="ReplicationLag",
                    dimensions=dims,
                    stat="Maximum",
                    label=f"replication_lag{tag}",
                    unit="s",
                    warn=s.replication_lag_warn_s,
                )
            )
    st.metrics = assess(clients, specs, window)
    return st


#: a cache cluster's own signals (see ``rootloop.skills.verdicts``); its CloudWatch
#: metrics follow them, each judged by its own thresholds
RULES: tuple[Rule, ...] = (
    Rule("cluster_status", "flag", on="unavailable", crit_on="failed"),
    Rule("members"),
)
#: the window's total of evictions (the metric's own verdict judges each period)
EVICTIONS = Rule("evictions", "above", warn="evictions_warn")


class ElastiCacheSkill(AwsSkill):
    name: ClassVar[str] = "aws-elasticache"
    Settings: ClassVar[type[SkillSettings]] = Settings
    inspect = staticmethod(inspect)
    default_timeout: ClassVar[float] = 15.0

    def judge(self, node: Node, s: Any, st: CacheState) -> Finding:
        # evictions are judged on the window's total too, not only per period
        for a in st.metrics:
            if a.spec.name == "Evictions" and a.has_data:
                a.status = worst([a.status, verdicts.judge_value(EVICTIONS, a.total, s, {})])
        values: dict[str, Value | Signal] = {
            "cluster_status": st.status,
            "members": len(st.members),
        }
        for a in st.metrics:
            if a.has_data:  # judged by the metric's own thresholds and anomaly score
                sig = a.signal()
                if a.spec.name == "Evictions":
                    sig.value = a.total
                values[sig.name] = sig
        facts: dict[str, Value] = {
            "unavailable": st.status != "available",
            "failed": st.status in _BAD,
        }
        rules = (*RULES, *(Rule(name) for name in values if isinstance(values[name], Signal)))
        verdict = verdicts.assess(rules, values, s, facts)
        status, signals = verdict.status, verdict.signals
        bad = [a for a in st.metrics if a.has_data and a.status is not Status.OK]
        who = s.replication_group_id or s.cluster_id
        summary = f"{who} ({st.engine}, {st.node_type}) is {st.status}"
        if bad:
            summary += "; " + "; ".join(
                (
                    f"{a.spec.signal_name}: {a.total:g} in the window"
                    if a.spec.name == "Evictions"
                    else a.describe()
                )
                for a in bad
            )
        evidence = [
            Evidence(kind="metric", title=a.spec.signal_name, text=a.describe())
            for a in st.metrics
            if a.has_data
        ]
        if st.roles:
            evidence.append(
                Evidence(
                    kind="config",
                    title="replication",
                    text="\n".join(f"{k}: {v}" for k, v in st.roles.items()),
                )
            )
        onsets = [a.onset for a in bad if a.onset]
        return self.finding(
            node,
            status,
            summary[:600],
            signals=signals,
            evidence=evidence,
            anomaly_started_at=min(onsets, default=None),
        )
