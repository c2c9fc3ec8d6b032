"""SNS intake against real HTTPS servers on loopback, with a private test CA.

One server plays SNS (serves the signing certificate, answers SubscribeURL);
another plays an attacker's host and records every request it gets. The
allow-list is configured to the first; the tests prove the second is never
contacted, whatever a message names.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient

from rootloop.serve.admission import Ticket
from rootloop.serve.assemble import build
from rootloop.serve.config import ServeConfig
from rootloop.serve.sources.sns import SnsMessage, canonical_string
from rootloop.serve.testing import write_map

TOPIC = "arn:aws:sns:eu-west-1:123456789012:alarms"


def _cert(
    subject: str, key: rsa.RSAPrivateKey, issuer: x509.Name | None, signer, *, ca: bool = False
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(signer, hashes.SHA256())


def _pem(obj) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass
class Https:
    port: int
    hits: list[str] = field(default_factory=list)


@dataclass
class World:
    sns: Https
    foreign: Https
    ca_file: Path
    signing_key: rsa.RSAPrivateKey


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("sns")
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = _cert("rootloop test CA", ca_key, None, ca_key, ca=True)
    (tmp / "ca.pem").write_bytes(_pem(ca))
    tls_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tls = _cert("127.0.0.1", tls_key, ca.subject, ca_key)
    (tmp / "tls.pem").write_bytes(_pem(tls))
    (tmp / "tls.key").write_bytes(_pem(tls_key))
    signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signing_cert = _pem(_cert("sns.amazonaws.com", signing_key, None, signing_key))

    servers: list[ThreadingHTTPServer] = []

    def start() -> Https:
        record = Https(port=0)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                record.hits.append(self.path)
                body = signing_cert if self.path.endswith(".pem") else b"<ConfirmSubscription/>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tmp / "tls.pem", tmp / "tls.key")
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        record.port = server.server_address[1]
        return record

    yield World(start(), start(), tmp / "ca.pem", signing_key)
    for server in servers:
        server.shutdown()
        server.server_close()


def client_for(world: World, tmp: Path, **sns: object) -> tuple[TestClient, list[Ticket]]:
    write_map(tmp / "api.yaml", "api", "staging")
    host = rf"127\.0\.0\.1:{world.sns.port}"
    settings = {
        "topic_arns": [TOPIC],
        "cert_hosts": [host],
        "subscribe_hosts": [host],
        "ca_bundle": str(world.ca_file),
        **sns,
    }
    config = ServeConfig.model_validate(
        {
            "state_dir": str(tmp / "state"),
            "routes": [{"name": "api", "map": str(tmp / "api.yaml")}],
            "sources": {"sns": settings},
        }
    )
    tickets: list[Ticket] = []
    return TestClient(build(config, enqueue=tickets.append)), tickets


def signed(world: World, message: dict[str, str], cert_host_port: int) -> dict[str, str]:
    message = {
        "SignatureVersion": "2",
        "SigningCertURL": f"https://127.0.0.1:{cert_host_port}/SimpleNotificationService-t.pem",
        "Timestamp": dt.datetime.now(dt.UTC).isoformat(),
        **message,
    }
    model = SnsMessage.model_validate({**message, "Signature": "x"})
    sig = world.signing_key.sign(canonical_string(model), padding.PKCS1v15(), hashes.SHA256())
    return {**message, "Signature": base64.b64encode(sig).decode()}


def alarm(world: World, port: int, message_id: str = "m-1") -> dict[str, str]:
    inner = {
        "AlarmName": "api-5xx",
        "AlarmArn": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:api-5xx",
        "NewStateValue": "ALARM",
        "AWSAccountId": "123456789012",
    }
    return signed(
        world,
        {
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": TOPIC,
            "Subject": "ALARM",
            "Message": json.dumps(inner),
        },
        port,
    )


def subscription(world: World, topic: str, subscribe_port: int) -> dict[str, str]:
    return signed(
        world,
        {
            "Type": "SubscriptionConfirmation",
            "MessageId": "sub-1",
            "TopicArn": topic,
            "Token": "token-1",
            "Message": "You have chosen to subscribe",
            "SubscribeURL": f"https://127.0.0.1:{subscribe_port}/?Action=ConfirmSubscription",
        },
        world.sns.port,
    )


def test_signed_alarm_is_verified_with_a_fetched_and_cached_certificate(
    world: World, tmp_path: Path
) -> None:
    client, tickets = client_for(world, tmp_path)
    before = len(world.sns.hits)
    r = client.post("/hooks/sns", json=alarm(world, world.sns.port, "m-1"))
    assert r.status_code == 202, r.text
    assert r.json()["decisions"][0]["verdict"] == "started"
    r = client.post("/hooks/sns", json=alarm(world, world.sns.port, "m-2"))
    assert r.json()["decisions"][0]["verdict"] == "attached"
    assert len(world.sns.hits) - before == 1  # fetched once, then cached
    assert len(tickets) == 1


def test_cert_url_on_a_foreign_host_is_refused_without_any_request_to_it(
    world: World, tmp_path: Path
) -> None:
    client, tickets = client_for(world, tmp_path)
    r = client.post("/hooks/sns", json=alarm(world, world.foreign.port))
    assert r.status_code == 401
    assert "allow-listed" in r.json()["reason"]
    assert world.foreign.hits == []
    assert tickets == []


def test_subscribe_url_of_a_foreign_topic_is_never_fetched(world: World, tmp_path: Path) -> None:
    client, _ = client_for(world, tmp_path)
    before = len(world.sns.hits)  # the servers are the module's: earlier tests' hits stay
    other_topic = "arn:aws:sns:eu-west-1:999999999999:not-ours"
    r = client.post("/hooks/sns", json=subscription(world, other_topic, world.foreign.port))
    assert r.status_code == 403
    r = client.post("/hooks/sns", json=subscription(world, other_topic, world.sns.port))
    assert r.status_code == 403
    assert world.foreign.hits == []
    assert not any("ConfirmSubscription" in h for h in world.sns.hits[before:])


def test_subscribe_url_on_a_foreign_host_is_never_fetched_even_for_our_topic(
    world: World, tmp_path: Path
) -> None:
    client, _ = client_for(world, tmp_path)
    r = client.post("/hooks/sns", json=subscription(world, TOPIC, world.foreign.port))
    assert r.status_code == 403
    assert world.foreign.hits == []


def test_allow_listed_subscription_is_confirmed(world: World, tmp_path: Path) -> None:
    client, _ = client_for(world, tmp_path)
    before = len(world.sns.hits)
    r = client.post("/hooks/sns", json=subscription(world, TOPIC, world.sns.port))
    assert r.status_code == 200 and r.json() == {"subscription": "confirmed"}
    assert any("ConfirmSubscription" in h for h in world.sns.hits[before:])


def test_default_allow_list_refuses_a_loopback_certificate_without_fetching(
    world: World, tmp_path: Path
) -> None:
    client, _ = client_for(
        world,
        tmp_path,
        cert_hosts=ServeConfig().sources.sns.cert_hosts,
        subscribe_hosts=ServeConfig().sources.sns.subscribe_hosts,
    )
    before = len(world.sns.hits)
    r = client.post("/hooks/sns", json=alarm(world, world.sns.port))
    assert r.status_code == 401
    assert len(world.sns.hits) == before


def test_certificate_from_a_server_the_ca_does_not_vouch_for_is_refused(
    world: World, tmp_path: Path
) -> None:
    # Without the test CA in the bundle, TLS verification fails: no certificate, 401.
    client, _ = client_for(world, tmp_path, ca_bundle=None)
    r = client.post("/hooks/sns", json=alarm(world, world.sns.port, "m-9"))
    assert r.status_code == 401
    assert "could not be fetched" in r.json()["reason"]
