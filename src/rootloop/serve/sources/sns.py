"""Amazon SNS over HTTP(S): every message's signature verified, no request forgery.

The order of checks is the defence:

1. The ``SigningCertURL`` must be ``https://<allow-listed host>/….pem`` — no
   user-info, no port unless the allow-list names one, nothing but that. A URL
   that fails is refused before any request is made, so a forged message cannot
   make rootloop fetch an internal address.
2. The certificate is fetched from that URL (TLS verified, no redirects, a
   small size cap) and cached by URL.
3. The signature over SNS's canonical string is checked with the certificate's
   key: SignatureVersion 1 is RSA-SHA1, 2 is RSA-SHA256 (PKCS#1 v1.5).
4. Only then: the topic must be allow-listed (403 otherwise), the timestamp
   recent, and a ``SubscribeURL`` is fetched only for an allow-listed topic and
   only when it too points at an allow-listed SNS host.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import ssl
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import BaseModel, ConfigDict, Field

from rootloop.serve.alerts import Alert, clean_labels
from rootloop.serve.config import SnsSource
from rootloop.serve.signing import BadPayload, Forbidden, Unauthorized
from rootloop.serve.sources.cloudwatch import from_sns_message

SOURCE = "sns"
MAX_CERT_BYTES = 64 * 1024

MessageType = Literal["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"]

_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_SIGNED_FIELDS["UnsubscribeConfirmation"] = _SIGNED_FIELDS["SubscriptionConfirmation"]
_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}


class SnsMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    Type: MessageType
    MessageId: str = Field(min_length=1, max_length=128)
    TopicArn: str = Field(min_length=1, max_length=1024)
    Message: str
    Timestamp: str
    SignatureVersion: Literal["1", "2"]
    Signature: str = Field(min_length=1)
    SigningCertURL: str = Field(min_length=1, max_length=2048)
    Subject: str | None = None
    Token: str | None = None
    SubscribeURL: str | None = None


def allowed_url(url: str, host_patterns: list[str], *, pem: bool) -> bool:
    """https, an allow-listed ``host[:port]``, no user-info; ``.pem`` path for certificates."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return False
    if parts.scheme != "https" or not parts.hostname or "@" in parts.netloc:
        return False
    if pem and (not parts.path.endswith(".pem") or parts.query or parts.fragment):
        return False
    netloc = parts.netloc.lower()
    return any(re.fullmatch(p, netloc) for p in host_patterns)


def canonical_string(message: SnsMessage) -> bytes:
    """SNS's string to sign: ``Key\\nValue\\n`` for each signed field present, in order."""
    data = message.model_dump()
    out = []
    for key in _SIGNED_FIELDS[message.Type]:
        value = data.get(key)
        if value is None:
            if key in ("Subject",):
                continue
            raise BadPayload(f"{message.Type} lacks {key}")
        out.append(f"{key}\n{value}\n")
    return "".join(out).encode()


CertFetcher = Callable[[str], bytes]


class HttpCertFetcher:
    """GETs a certificate: TLS verified (optionally against a private CA), no redirects."""

    def __init__(self, ca_bundle: str | None = None, timeout: float = 5.0) -> None:
        verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
        )
        self._client = httpx.Client(verify=verify, follow_redirects=False, timeout=timeout)

    def __call__(self, url: str) -> bytes:
        try:
            response = self._client.get(url)
        except httpx.HTTPError as exc:
            reason = f"signing certificate could not be fetched ({type(exc).__name__})"
            raise Unauthorized(reason) from None
        if response.status_code != 200 or len(response.content) > MAX_CERT_BYTES:
            raise Unauthorized(f"signing certificate not served (HTTP {response.status_code})")
        return response.content

    def get(self, url: str) -> int:
        """Confirm a subscription: one GET, the status code back."""
        try:
            return self._client.get(url).status_code
        except httpx.HTTPError:
            return 0


class SnsVerifier:
    def __init__(
        self,
        config: SnsSource,
        fetch: CertFetcher | None = None,
        confirm: Callable[[str], int] | None = None,
    ) -> None:
        self.config = config
        http = HttpCertFetcher(str(config.ca_bundle) if config.ca_bundle else None)
        self._fetch = fetch or http
        self._confirm = confirm or http.get
        self._cache: OrderedDict[str, rsa.RSAPublicKey] = OrderedDict()
        self._lock = threading.Lock()

    def parse(self, body: bytes) -> SnsMessage:
        try:
            raw = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise BadPayload("body is not JSON") from None
        if not isinstance(raw, dict):
            raise BadPayload("body is not a JSON object")
        if "Signature" not in raw or "SigningCertURL" not in raw:
            raise Unauthorized("SNS message is not signed")
        return SnsMessage.model_validate(raw)

    def verify(self, message: SnsMessage, now: datetime | None = None) -> None:
        if not allowed_url(message.SigningCertURL, self.config.cert_hosts, pem=True):
            raise Unauthorized("SigningCertURL is not on an allow-listed SNS host")
        key = self._public_key(message.SigningCertURL)
        try:
            signature = base64.b64decode(message.Signature, validate=True)
        except (binascii.Error, ValueError):
            raise Unauthorized("Signature is not base64") from None
        try:
            key.verify(
                signature,
                canonical_string(message),
                padding.PKCS1v15(),
                _HASHES[message.SignatureVersion](),
            )
        except InvalidSignature:
            raise Unauthorized("signature does not match") from None
        if message.TopicArn not in self.config.topic_arns:
            raise Forbidden("topic is not allow-listed")
        try:
            sent = datetime.fromisoformat(message.Timestamp.replace("Z", "+00:00"))
        except ValueError:
            raise BadPayload("Timestamp is not ISO 8601") from None
        if sent.tzinfo is None:
            raise BadPayload("Timestamp has no time zone")
        age = ((now or datetime.now(UTC)) - sent).total_seconds()
        if age > self.config.max_age_seconds or age < -300:
            raise Unauthorized("message timestamp outside the accepted window (replayed?)")

    def confirm_subscription(self, message: SnsMessage) -> int:
        """GET the SubscribeURL of a verified, allow-listed topic — never any other URL."""
        if message.TopicArn not in self.config.topic_arns:
            raise Forbidden("topic is not allow-listed")
        url = message.SubscribeURL or ""
        if not allowed_url(url, self.config.subscribe_hosts, pem=False):
            raise Forbidden("SubscribeURL is not on an allow-listed SNS host")
        return self._confirm(url)

    def _public_key(self, url: str) -> rsa.RSAPublicKey:
        with self._lock:
            if url in self._cache:
                self._cache.move_to_end(url)
                return self._cache[url]
        pem = self._fetch(url)
        try:
            cert = x509.load_pem_x509_certificate(pem)
        except ValueError:
            raise Unauthorized("signing certificate is not a PEM certificate") from None
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise Unauthorized("signing certificate does not hold an RSA key")
        with self._lock:
            self._cache[url] = key
            while len(self._cache) > 64:
                self._cache.popitem(last=False)
        return key


def to_alerts(message: SnsMessage) -> list[Alert]:
    try:
        inner = json.loads(message.Message)
    except ValueError:
        inner = None
    if isinstance(inner, dict):
        alarm = from_sns_message(inner)
        if alarm is not None:
            return [alarm]
    labels = clean_labels(
        {"alertname": message.Subject or "sns-notification", "topic": message.TopicArn}
    )
    return [
        Alert(
            source=SOURCE,
            fingerprint=f"{SOURCE}:{message.TopicArn}:{message.Subject or ''}",
            status="firing",
            labels=labels,
            annotations=clean_labels(
                {"summary": message.Subject, "message": message.Message[:2000]}
            ),
        )
    ]
