"""Prometheus's HTTP API (``/api/v1``): instant queries, for skills and for reproduction.

One client per Prometheus server, over httpx. Only what rootloop needs: an instant
query (``/api/v1/query``), the alerts Prometheus itself evaluates (``/api/v1/alerts``)
and readiness (``/-/ready``). Every failure — unreachable, a non-JSON body, an HTTP
error, the API's own ``status: "error"`` (a bad expression) — is a ``PlatformError``
that names the server and says what went wrong, never a traceback.

The expression of an alert that started an investigation comes from its
``generatorURL`` (``rootloop.models.AlertContext``); ``rootloop.reproduce`` runs it here.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel

from rootloop.errors import PlatformError

ResultType = Literal["vector", "matrix", "scalar", "string"]


class Sample(BaseModel):
    """One series of a query's result: its labels and its latest value."""

    labels: dict[str, str] = {}
    value: float

    def matches(self, labels: dict[str, str]) -> bool:
        """Every label of this series (but the metric name) has the same value in
        ``labels``: the series is the one an alert with ``labels`` was raised for (an
        alert's labels are its series' labels plus the rule's and external labels)."""
        return all(labels.get(k) == v for k, v in self.labels.items() if k != "__name__")


class QueryResult(BaseModel):
    expr: str
    result_type: ResultType
    samples: list[Sample] = []
    warnings: list[str] = []

    @property
    def empty(self) -> bool:
        """An alerting rule fires for each series its expression returns: no series, no
        alert. A scalar counts as a result when it is a number other than zero."""
        if self.result_type in ("vector", "matrix"):
            return not self.samples
        return not any(s.value and not math.isnan(s.value) for s in self.samples)


class PrometheusClient:
    """A client for one Prometheus server. ``base_url``: e.g. ``http://127.0.0.1:9090``
    (a path prefix such as ``/prometheus`` is kept)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        headers: dict[str, str] | None = None,
        verify_tls: bool = True,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise PlatformError(
                f"Prometheus URL {base_url!r} is not an http(s) URL", "write it as http://host:port"
            )
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._headers = headers or {}
        self._verify = verify_tls
        self._client = client

    @property
    def where(self) -> str:
        """The server, for messages: scheme, host and port only (no credentials)."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")

    async def query(self, expr: str, *, at: datetime | None = None) -> QueryResult:
        """An instant query, evaluated now (or at ``at``)."""
        params: dict[str, str] = {"query": expr}
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"
        data = await self._get("/api/v1/query", params)
        rtype = data.get("resultType")
        raw = data.get("result")
        if rtype not in ("vector", "matrix", "scalar", "string"):
            raise PlatformError(f"{self.where}: unexpected resultType {rtype!r} for {expr!r}")
        return QueryResult(
            expr=expr,
            result_type=rtype,
            samples=_samples(rtype, raw, self.where),
            warnings=[str(w) for w in data.get("_warnings", [])],
        )

    async def alerts(self) -> list[dict[str, Any]]:
        """The alerts Prometheus's own rules hold now (pending and firing)."""
        data = await self._get("/api/v1/alerts", {})
        alerts = data.get("alerts", [])
        return [a for a in alerts if isinstance(a, dict)] if isinstance(alerts, list) else []

    async def ready(self) -> bool:
        try:
            async with self._session() as client:
                resp = await client.get(f"{self.base_url}/-/ready")
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    # -- transport ---------------------------------------------------------------
    def _session(self) -> httpx.AsyncClient:
        if self._client is not None:
            return _Borrowed(self._client)  # type: ignore[return-value]
        return httpx.AsyncClient(timeout=self.timeout, verify=self._verify, headers=self._headers)

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        try:
            async with self._session() as client:
                resp = await client.get(url, params=params, timeout=self.timeout)
        except httpx.TimeoutException:
            raise PlatformError(
                f"Prometheus at {self.where} did not answer within {self.timeout:g}s"
            ) from None
        except httpx.HTTPError as exc:
            raise PlatformError(
                f"Prometheus at {self.where} is unreachable: {type(exc).__name__}: {exc}"
            ) from None
        try:
            body = resp.json()
        except ValueError:
            raise PlatformError(
                f"Prometheus at {self.where} answered HTTP {resp.status_code} without JSON "
                f"on {path}",
                "is this the Prometheus server's base URL?",
            ) from None
        if not isinstance(body, dict):
            raise PlatformError(f"Prometheus at {self.where}: unexpected answer on {path}")
        if body.get("status") != "success":
            kind = body.get("errorType", f"HTTP {resp.status_code}")
            raise PlatformError(f"Prometheus at {self.where}: {kind}: {body.get('error', '')}")
        data = body.get("data")
        if not isinstance(data, dict):
            raise PlatformError(f"Prometheus at {self.where}: no data in the answer on {path}")
        if body.get("warnings"):
            data["_warnings"] = body["warnings"]
        return data


class _Borrowed:
    """A caller's pooled client, used as a context manager without closing it."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def __aenter__(self) -> httpx.AsyncClient:
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        return None


def _samples(rtype: str, raw: Any, where: str) -> list[Sample]:
    try:
        if rtype in ("scalar", "string"):
            return [Sample(value=_number(raw[1]))] if rtype == "scalar" else []
        out = []
        for series in raw or []:
            labels = {str(k): str(v) for k, v in (series.get("metric") or {}).items()}
            if rtype == "vector":
                value = _number(series["value"][1])
            else:
                points = series.get("values") or []
                value = _number(points[-1][1]) if points else math.nan
            out.append(Sample(labels=labels, value=value))
        return out
    except (KeyError, IndexError, TypeError, ValueError):
        raise PlatformError(f"Prometheus at {where}: a {rtype} result of unknown shape") from None


def _number(text: Any) -> float:
    return float(text)  # Prometheus writes "NaN", "+Inf", "-Inf": float() reads them all
