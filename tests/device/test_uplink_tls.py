"""The bridge's broker link over TLS (`mqtts://`): a private Mosquitto with a TLS listener
whose certificate a CA made here signed. With that CA file the bridge connects and its batch
reaches the broker; without it (its certificate chains to nothing the system trusts) the
bridge refuses the broker. Settings refuse a CA file for a URL in the clear."""

from __future__ import annotations

import datetime as dt
import ipaddress
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError

from core.broker_roles import worker_user
from core.contract import ALL_READINGS, ReadingsBatch, shared
from core.mqtt_client import release
from core.settings import BridgeSettings, MqttEndpoint
from device.uplink import Uplink, UplinkError
from stack.local import state_dir
from stack.mosquitto import INGEST_USER, Mosquitto
from stack.proc import free_port
from tests.support import batch, readings

BRIDGE = "home-tls"
# Short: a bridge that refuses the broker's certificate never becomes ready.
REFUSAL_WAIT_S = 2.0
DELIVERY_WAIT_S = 10.0


@dataclass(frozen=True)
class Certificates:
    ca: Path
    cert: Path
    key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _issue(folder: Path) -> Certificates:
    """A CA, and a server certificate for 127.0.0.1 signed by it."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("glucobridge test CA"))
        .issuer_name(_name("glucobridge test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    found = Certificates(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    found.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    found.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    found.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    found.key.chmod(0o600)
    return found


@dataclass
class TlsMosquitto(Mosquitto):
    """The private broker with a second listener, TLS with the given certificate."""

    certificates: Certificates | None = None
    tls_port: int = 0

    def _write_config(self) -> Path:
        conf = super()._write_config()
        assert self.certificates is not None
        conf.write_text(
            conf.read_text()
            + f"listener {self.tls_port} 127.0.0.1\n"
            + f"cafile {self.certificates.ca}\n"
            + f"certfile {self.certificates.cert}\n"
            + f"keyfile {self.certificates.key}\n"
        )
        return conf


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[TlsMosquitto]:
    folder = state_dir() / "run" / f"tls-{uuid.uuid4().hex[:8]}"
    broker = TlsMosquitto(folder, certificates=_issue(tmp_path), tls_port=free_port())
    broker.start()
    broker.add_user(BRIDGE)  # provisioned on the running broker, as the API does
    yield broker
    broker.stop()


def _tls_url(broker: TlsMosquitto) -> str:
    plain = MqttEndpoint.parse(broker.url(BRIDGE))
    return f"mqtts://{plain.username}:{plain.password}@127.0.0.1:{broker.tls_port}"


def _listen(broker: TlsMosquitto, got: list[bytes], seen: threading.Event) -> mqtt.Client:
    """Ingest's side, in the clear: what reaches the readings topics."""
    endpoint = MqttEndpoint.parse(broker.url(INGEST_USER))
    user = worker_user(INGEST_USER, 0)  # ingest worker 0; its client id is bound to its name
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5)
    client.username_pw_set(user, endpoint.password)
    subscribed = threading.Event()
    client.on_subscribe = lambda *_: subscribed.set()

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        got.append(msg.payload)
        seen.set()

    client.on_message = on_message
    client.connect(endpoint.host, endpoint.port)
    client.loop_start()
    client.subscribe(shared(ALL_READINGS, "tls-test"), qos=1)  # as ingest workers do
    assert subscribed.wait(DELIVERY_WAIT_S)
    return client


def test_with_the_ca_file_the_bridge_publishes_over_tls(tls_broker: TlsMosquitto) -> None:
    got: list[bytes] = []
    seen = threading.Event()
    listener = _listen(tls_broker, got, seen)
    assert tls_broker.certificates is not None
    sent = batch(BRIDGE, "SN-TLS", readings(2))
    try:
        with Uplink(_tls_url(tls_broker), BRIDGE, ca_file=tls_broker.certificates.ca) as uplink:
            assert uplink.endpoint.tls
            uplink.publish(sent)
            assert seen.wait(DELIVERY_WAIT_S)
    finally:
        listener.disconnect()
        listener.loop_stop()
        release(listener)
    assert ReadingsBatch.model_validate_json(got[0]).batch_id == sent.batch_id


# paho (2.2, client.py `_ssl_wrap_socket`) drops, unclosed, the socket whose handshake failed;
# CPython closes it when it is collected, and says so with a ResourceWarning.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_without_the_ca_the_bridge_refuses_the_broker(tls_broker: TlsMosquitto) -> None:
    uplink = Uplink(_tls_url(tls_broker), BRIDGE)  # the system's CAs: ours is not among them
    with pytest.raises(UplinkError):
        uplink.start(timeout=REFUSAL_WAIT_S)


def test_a_ca_file_goes_with_an_mqtts_url_only(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not read here")
    with pytest.raises(ValidationError, match="mqtts"):
        BridgeSettings(mqtt_url="mqtt://home-1:x@127.0.0.1:1883", mqtt_ca_file=str(ca))
    with pytest.raises(ValidationError, match="no such file"):
        BridgeSettings(
            mqtt_url="mqtts://home-1:x@127.0.0.1", mqtt_ca_file=str(tmp_path / "missing.pem")
        )
    settings = BridgeSettings(mqtt_url="mqtts://home-1:x@broker.example", mqtt_ca_file=str(ca))
    assert MqttEndpoint.parse(settings.mqtt_url, tls_allowed=True).port == 8883
    with pytest.raises(ValueError, match="mqtt://"):
        MqttEndpoint.parse("mqtts://ingest:x@127.0.0.1")  # a process that sets up no TLS
