"""The diagnosis categories rootloop names. Runbooks are keyed by these."""

from __future__ import annotations

OOM = "oom"  # container killed for memory (exit 137)
CONNECTION_EXHAUSTION = "connection-exhaustion"  # a node holds (nearly) all DB connections
BLOCKING_LOCK = "blocking-lock"  # a session blocks others (often idle in tx)
CACHE_FULL = "cache-full"  # Redis at maxmemory under noeviction
CONSUMER_DOWN = "consumer-down"  # a queue fills because its consumer stopped
MESSAGES_FAILING = "messages-failing"  # the consumer runs; some messages end in the DLQ
BAD_DEPLOY = "bad-deploy"  # errors began right after a deploy
DEPENDENCY_DOWN = "dependency-down"  # an HTTP dependency fails (5xx / down)
SCHEMA_DRIFT = "schema-drift"  # code and database schema disagree
THROTTLING = "throttling"  # a function or API is throttled
CI_FAILURE = "ci-failure"  # the deployed commit did not pass CI
CRASH_LOOP = "crash-loop"  # tasks of the deployed revision exit on start; none runs
FAILED_DEPLOYMENT = "failed-deployment"  # a rollout whose new tasks fail; the old still serve
SLOW_DEPENDENCY = "slow-dependency"  # a dependency answers slowly (latency, not errors)
CLIENT_LIMIT = "client-limit"  # a datastore refuses clients at maxclients / CONNECTION LIMIT
FUNCTION_TIMEOUT = "function-timeout"  # a function's invocations end at its configured timeout
CONFIG_CHANGE = "config-change"  # errors began with a configuration change of the function
CAPACITY_LOST = "capacity-lost"  # hosts interrupted; the service's capacity cannot replace them
PLACEMENT_BLAST_RADIUS = "placement-blast-radius"  # one host took every task of the service
UNKNOWN = "unknown"  # no signature matched

ALL = [
    OOM,
    CONNECTION_EXHAUSTION,
    BLOCKING_LOCK,
    CACHE_FULL,
    CONSUMER_DOWN,
    MESSAGES_FAILING,
    BAD_DEPLOY,
    DEPENDENCY_DOWN,
    SCHEMA_DRIFT,
    THROTTLING,
    CI_FAILURE,
    CLIENT_LIMIT,
    SLOW_DEPENDENCY,
    CRASH_LOOP,
    FAILED_DEPLOYMENT,
    FUNCTION_TIMEOUT,
    CONFIG_CHANGE,
    CAPACITY_LOST,
    PLACEMENT_BLAST_RADIUS,
    UNKNOWN,
]
