"""Taking a payment: PostgreSQL row, Redis cache, SQS message, notification."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

import boto3
import redis
from botocore.config import Config as BotoConfig

from app import db, receipts
from app.config import Config

log = logging.getLogger("payments")


class Rejected(Exception):
    """The payment cannot be taken right now; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class Payments:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.redis = redis.Redis.from_url(cfg.redis_url, socket_connect_timeout=2, socket_timeout=2)
        self.sqs = boto3.client(
            "sqs",
            endpoint_url=_endpoint(),
            config=BotoConfig(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2}),
        )

    def queue_depth(self) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.cfg.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        return int(attrs["Attributes"]["ApproximateNumberOfMessages"])

    def create(self, body: dict) -> dict:
        amount = int(body.get("amount_cents", 0))
        merchant = int(body.get("merchant_id", 1))
        currency = str(body.get("currency", "usd"))
        if amount <= 0:
            raise Rejected(400, "amount_cents must be positive")
        depth = self.queue_depth()
        if depth >= self.cfg.backpressure_depth:
            raise Rejected(503, f"backpressure: sqs-payments has {depth} messages waiting")
        try:
            with db.connect(self.cfg.pg_dsn) as conn, conn.transaction():
                row = conn.execute(
                    "INSERT INTO payments (merchant_id, amount_cents, currency, status) "
                    "VALUES (%s, %s, %s, 'accepted') RETURNING id",
                    (merchant, amount, currency),
                ).fetchone()
                conn.execute(
                    "UPDATE merchants SET balance_cents = balance_cents + %s WHERE id = %s",
                    (amount, merchant),
                )
        except db.DbUnavailable as exc:
            log.error("DB connection timeout: %s", exc)
            raise Rejected(503, "database unavailable") from exc
        payment = {
            "id": row[0],
            "merchant_id": merchant,
            "amount_cents": amount,
            "currency": currency,
            "status": "accepted",
        }
        payment["receipt"] = receipts.receipt_line(payment)
        self.redis.set(f"payment:{payment['id']}", json.dumps(payment), ex=3600)
        self.sqs.send_message(QueueUrl=self.cfg.queue_url, MessageBody=json.dumps(payment))
        self.notify(payment)
        return payment

    def notify(self, payment: dict) -> None:
        data = json.dumps({"payment_id": payment["id"], "template": "receipt"}).encode()
        req = urllib.request.Request(
            f"{self.cfg.notify_url}/notify", data=data, headers={"Content-Type": "application/json"}
        )
        try:
            for attempt in range(self.cfg.notify_retries + 1):
                try:
                    with urllib.request.urlopen(req, timeout=3) as resp:
                        resp.read()
                    break
                except urllib.error.HTTPError as exc:
                    # retried at once, Retry-After ignored: a retry storm under a rate limit
                    if exc.code != 429 or attempt == self.cfg.notify_retries:
                        raise
                    exc.read()
        except OSError as exc:
            body = exc.read().decode(errors="replace")[:2000] if hasattr(exc, "read") else ""
            log.error("notification-svc failed for payment %s: %s %s", payment["id"], exc, body)
            raise Rejected(502, f"notification-svc failed: {exc}") from exc

    def get(self, payment_id: int) -> dict | None:
        cached = self.redis.get(f"payment:{payment_id}")
        if cached:
            return json.loads(cached)
        with db.connect(self.cfg.pg_dsn) as conn:
            row = conn.execute(
                "SELECT id, merchant_id, amount_cents, currency, status "
                "FROM payments WHERE id = %s",
                (payment_id,),
            ).fetchone()
        if row is None:
            return None
        keys = ("id", "merchant_id", "amount_cents", "currency", "status")
        return dict(zip(keys, row, strict=True))


def _endpoint() -> str | None:
    import os

    return os.environ.get("AWS_ENDPOINT_URL") or None
