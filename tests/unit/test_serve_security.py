"""Sender authentication: SNS signatures without request forgery, HMACs, replay windows."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from rootloop.serve.config import (
    EventBridgeSource,
    GenericSource,
    PagerDutySource,
    SnsSource,
)
from rootloop.serve.signing import BadPayload, Forbidden, Unauthorized
from rootloop.serve.sources import eventbridge, generic, pagerduty, sns
from rootloop.serve.testing import pagerduty_signature

TOPIC = "arn:aws:sns:eu-west-1:123456789012:alarms"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem"
SUBSCRIBE_URL = "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + TOPIC
SECRET = "s3cr3t-for-tests-0123456789"


def _key_and_cert() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


KEY, CERT = _key_and_cert()


def signed(message: dict[str, str], version: str = "2", key=KEY) -> dict[str, str]:
    message = {"SignatureVersion": version, "SigningCertURL": CERT_URL, **message}
    model = sns.SnsMessage.model_validate({**message, "Signature": "x"})
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    sig = key.sign(sns.canonical_string(model), padding.PKCS1v15(), digest)
    return {**message, "Signature": base64.b64encode(sig).decode()}


def notification(**over: str) -> dict[str, str]:
    base = {
        "Type": "Notification",
        "MessageId": "m-1",
        "TopicArn": TOPIC,
        "Subject": "ALARM: high-errors",
        "Message": json.dumps(
            {
                "AlarmName": "high-errors",
                "AlarmArn": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:high-errors",
                "NewStateValue": "ALARM",
                "NewStateReason": "Threshold crossed",
                "AWSAccountId": "123456789012",
                "Region": "EU (Ireland)",
                "Trigger": {
                    "MetricName": "5XXError",
                    "Namespace": "AWS/ApiGateway",
                    "Dimensions": [{"name": "ApiName", "value": "payments"}],
                },
            }
        ),
        "Timestamp": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
    }
    return {**base, **over}


class Recorder:
    def __init__(self, payload: bytes = CERT) -> None:
        self.urls: list[str] = []
        self.payload = payload

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        return self.payload


def verifier(
    topics: tuple[str, ...] = (TOPIC,),
) -> tuple[sns.SnsVerifier, Recorder, list[str]]:
    fetched = Recorder()
    confirmed: list[str] = []

    def confirm(url: str) -> int:
        confirmed.append(url)
        return 200

    v = sns.SnsVerifier(SnsSource(topic_arns=list(topics)), fetch=fetched, confirm=confirm)
    return v, fetched, confirmed


def subscription(subscribe_url: str, topic: str = TOPIC) -> dict[str, str]:
    return signed(
        {
            "Type": "SubscriptionConfirmation",
            "MessageId": "m-sub",
            "TopicArn": topic,
            "Token": "tok",
            "Message": "You have chosen to subscribe",
            "SubscribeURL": subscribe_url,
            "Timestamp": notification()["Timestamp"],
        }
    )


def parse(v: sns.SnsVerifier, message: dict[str, str]) -> sns.SnsMessage:
    return v.parse(json.dumps(message).encode())


@pytest.mark.parametrize("version", ["1", "2"])
def test_sns_valid_signature_both_versions_becomes_an_alarm_alert(version: str) -> None:
    v, fetched, _ = verifier()
    msg = parse(v, signed(notification(), version))
    v.verify(msg)
    assert fetched.urls == [CERT_URL]
    (alert,) = sns.to_alerts(msg)
    assert alert.status == "firing"
    assert alert.fingerprint.endswith("alarm:high-errors")
    assert alert.labels["dimension_ApiName"] == "payments"


def test_sns_bad_signature_is_refused() -> None:
    v, _, _ = verifier()
    message = signed(notification())
    message["Message"] = message["Message"].replace("ALARM", "OK")
    with pytest.raises(Unauthorized, match="signature"):
        v.verify(parse(v, message))


def test_sns_signature_by_another_key_is_refused() -> None:
    other, _ = _key_and_cert()
    v, _, _ = verifier()
    with pytest.raises(Unauthorized):
        v.verify(parse(v, signed(notification(), key=other)))


def test_sns_unsigned_message_is_refused() -> None:
    v, _, _ = verifier()
    with pytest.raises(Unauthorized, match="not signed"):
        v.parse(json.dumps(notification()).encode())


@pytest.mark.parametrize(
    "url",
    [
        "https://attacker.example/cert.pem",
        "http://sns.eu-west-1.amazonaws.com/cert.pem",
        "https://sns.eu-west-1.amazonaws.com.attacker.example/cert.pem",
        "https://user@sns.eu-west-1.amazonaws.com/cert.pem",
        "https://sns.eu-west-1.amazonaws.com:8443/cert.pem",
        "https://sns.eu-west-1.amazonaws.com/cert.txt",
        "https://sns.eu-west-1.amazonaws.com/cert.pem?x=1",
        "https://169.254.169.254/latest/meta-data/cert.pem",
        "https://127.0.0.1/cert.pem",
        "file:///etc/passwd.pem",
        "https://[::1/cert.pem",
    ],
)
def test_sns_foreign_cert_url_is_refused_without_fetching(url: str) -> None:
    v, fetched, _ = verifier()
    message = signed(notification())
    message["SigningCertURL"] = url
    with pytest.raises(Unauthorized, match="allow-listed"):
        v.verify(parse(v, message))
    assert fetched.urls == []


def test_sns_foreign_topic_is_forbidden_and_its_subscribe_url_never_fetched() -> None:
    v, _, confirmed = verifier(topics=("arn:aws:sns:eu-west-1:123456789012:other",))
    message = subscription(SUBSCRIBE_URL)
    msg = parse(v, message)
    with pytest.raises(Forbidden):
        v.verify(msg)
    with pytest.raises(Forbidden):
        v.confirm_subscription(msg)
    assert confirmed == []


def test_sns_subscribe_url_on_a_foreign_host_is_never_fetched() -> None:
    v, _, confirmed = verifier()
    message = subscription("https://169.254.169.254/latest/meta-data/")
    msg = parse(v, message)
    v.verify(msg)  # authentic, allow-listed topic…
    with pytest.raises(Forbidden, match="SubscribeURL"):
        v.confirm_subscription(msg)  # …but the URL it names is not SNS
    assert confirmed == []


def test_sns_allow_listed_subscription_is_confirmed_once() -> None:
    v, _, confirmed = verifier()
    message = subscription(SUBSCRIBE_URL)
    msg = parse(v, message)
    v.verify(msg)
    assert v.confirm_subscription(msg) == 200
    assert confirmed == [SUBSCRIBE_URL]


def test_sns_old_message_is_a_replay() -> None:
    v, _, _ = verifier()
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)).isoformat()
    with pytest.raises(Unauthorized, match="window"):
        v.verify(parse(v, signed(notification(Timestamp=old))))


def test_sns_certificate_is_cached() -> None:
    v, fetched, _ = verifier()
    for i in range(3):
        v.verify(parse(v, signed(notification(MessageId=f"m-{i}"))))
    assert fetched.urls == [CERT_URL]


def test_sns_non_json_is_malformed() -> None:
    v, _, _ = verifier()
    with pytest.raises(BadPayload):
        v.parse(b"<xml/>")


def test_default_sns_allow_list_is_aws_only() -> None:
    hosts = SnsSource().cert_hosts
    assert sns.allowed_url(CERT_URL, hosts, pem=True)
    assert not sns.allowed_url("https://127.0.0.1/x.pem", hosts, pem=True)
    assert not sns.allowed_url("https://localhost/x.pem", hosts, pem=True)


# -- PagerDuty -----------------------------------------------------------------------


def pd_config(*secrets: str) -> PagerDutySource:
    return PagerDutySource(secrets=list(secrets))


def test_pagerduty_right_hmac_passes_and_any_of_several_signatures_counts() -> None:
    body = b'{"event": {}}'
    pagerduty.authenticate(body, pagerduty_signature([SECRET], body), pd_config(SECRET))
    both = pagerduty_signature(["an-old-secret-0123456789", SECRET], body)
    pagerduty.authenticate(body, both, pd_config(SECRET))


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "v1=",
        "v0=abcdef",
        "sha256=abc",
        "v1=" + "0" * 64,
    ],
)
def test_pagerduty_missing_or_wrong_signature_is_refused(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        pagerduty.authenticate(b"{}", header, pd_config(SECRET))


def test_pagerduty_hmac_of_another_body_is_refused() -> None:
    sig = pagerduty_signature([SECRET], b'{"event": 1}')
    with pytest.raises(Unauthorized, match="does not match"):
        pagerduty.authenticate(b'{"event": 2}', sig, pd_config(SECRET))


def test_pagerduty_with_no_secret_configured_accepts_nothing() -> None:
    body = b"{}"
    with pytest.raises(Unauthorized, match="no secret"):
        pagerduty.authenticate(body, pagerduty_signature([SECRET], body), PagerDutySource())


def test_short_secrets_are_refused_in_config() -> None:
    with pytest.raises(ValueError, match="16 characters"):
        PagerDutySource(secrets=["short"])


# -- generic HMAC webhook ------------------------------------------------------------


def test_generic_signed_now_passes() -> None:
    body = b'{"alerts": []}'
    now = int(time.time())
    generic.authenticate(
        body, str(now), generic.sign(SECRET, now, body), GenericSource(secrets=[SECRET])
    )


def test_generic_replayed_old_timestamp_is_refused_even_with_a_valid_signature() -> None:
    body = b'{"alerts": []}'
    old = int(time.time()) - 3600
    with pytest.raises(Unauthorized, match="window"):
        generic.authenticate(
            body, str(old), generic.sign(SECRET, old, body), GenericSource(secrets=[SECRET])
        )


def test_generic_fresh_timestamp_on_an_old_signature_is_refused() -> None:
    body = b'{"alerts": []}'
    old = int(time.time()) - 3600
    with pytest.raises(Unauthorized, match="does not match"):
        generic.authenticate(
            body,
            str(int(time.time())),
            generic.sign(SECRET, old, body),
            GenericSource(secrets=[SECRET]),
        )


@pytest.mark.parametrize("stamp", [None, "", "yesterday", "1e9"])
def test_generic_bad_timestamp_is_refused(stamp: str | None) -> None:
    with pytest.raises(Unauthorized):
        generic.authenticate(b"{}", stamp, "sha256=00", GenericSource(secrets=[SECRET]))


# -- EventBridge bearer key ----------------------------------------------------------


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Basic " + SECRET, "Bearer wrong-key-0123456789"]
)
def test_eventbridge_wrong_or_missing_key_is_refused(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        eventbridge.authenticate(header, EventBridgeSource(keys=[SECRET]))


def test_eventbridge_right_key_passes() -> None:
    eventbridge.authenticate(f"Bearer {SECRET}", EventBridgeSource(keys=[SECRET]))


def test_secrets_never_show_in_the_config_repr() -> None:
    shown = repr(EventBridgeSource(keys=[SECRET])) + str(GenericSource(secrets=[SECRET]))
    assert SECRET not in shown
    assert isinstance(EventBridgeSource(keys=[SECRET]).keys[0], SecretStr)


def test_eventbridge_key_in_a_header_of_its_own() -> None:
    config = EventBridgeSource(keys=[SECRET], header="X-Api-Key")
    eventbridge.authenticate(SECRET, config)
    with pytest.raises(Unauthorized):
        eventbridge.authenticate("Bearer " + SECRET, config)


def test_pagerduty_ping_is_ignored_not_refused() -> None:
    ping = pagerduty.PdWebhook.model_validate(
        {
            "event": {
                "id": "01ABC",
                "event_type": "pagey.ping",
                "resource_type": "pagey",
                "data": {"message": "Hello from your friend Pagey!", "type": "ping"},
            }
        }
    )
    (alert,) = pagerduty.to_alerts(ping)
    assert alert.status == "ignored"
    trigger = ping.model_copy(deep=True)
    trigger.event.event_type = "incident.triggered"
    with pytest.raises(BadPayload, match="incident's id"):
        pagerduty.to_alerts(trigger)
