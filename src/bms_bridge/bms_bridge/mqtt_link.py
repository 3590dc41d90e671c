"""One MQTT 5 connection (paho-mqtt 2.x) that keeps reconnecting and says clearly why it cannot.

The network loop runs in a thread of its own. Every failure becomes one sentence in
:attr:`MqttLink.error` that names the broker and the cause: the login refused (wrong user name
or password), the TLS certificate not trusted by the configured CA, the port closed, or a
listener that never answers the MQTT handshake. Reconnection backs off from 0.5 s to 10 s.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions


@dataclass(frozen=True)
class BrokerSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    tls: bool = False
    ca_file: str = ""  # CA that signed the broker's certificate ("" = the system's CAs)
    client_cert: str = ""  # optional client certificate and key (mutual TLS)
    client_key: str = ""
    username: str = ""
    password: str = ""
    keepalive_s: int = 10
    connect_timeout_s: float = 5.0

    @property
    def where(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def describe_failure(settings: BrokerSettings, exc: BaseException) -> str:
    where = settings.where
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"{where}: TLS: the broker's certificate is not trusted ({exc.verify_message}); check ca_file "
                f"{settings.ca_file or '(system CAs)'} and that the certificate names {settings.host}")
    if isinstance(exc, ssl.SSLError):
        return f"{where}: TLS handshake failed: {exc.reason or exc} (is this the TLS port? client certificate?)"
    if isinstance(exc, ConnectionRefusedError):
        return f"{where}: connection refused: no broker listens on that port"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"{where}: no answer within {settings.connect_timeout_s:g} s (broker down or port filtered)"
    return f"{where}: cannot connect: {type(exc).__name__}: {exc}"


class MqttLink:
    def __init__(self, settings: BrokerSettings, client_id: str, *, clean_start: bool,
                 session_expiry_s: int = 0, will: tuple[str, bytes] | None = None,
                 subscriptions: tuple[str, ...] = (),
                 on_message: Callable[[mqtt.MQTTMessage], None] | None = None,
                 on_connected: Callable[[], None] | None = None,
                 on_state: Callable[[str], None] | None = None,
                 on_subscribed: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.error = "not connected yet"
        self.connected = threading.Event()
        self._subscriptions = subscriptions
        self._on_connected = on_connected
        self._on_subscribed = on_subscribed
        self._on_state = on_state or (lambda _text: None)
        self._clean_start = clean_start
        self._session_expiry_s = session_expiry_s
        self._stop = threading.Event()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        client.max_inflight_messages_set(200)
        client.max_queued_messages_set(0)
        if settings.username:
            client.username_pw_set(settings.username, settings.password)
        if settings.tls:
            client.tls_set(ca_certs=settings.ca_file or None, certfile=settings.client_cert or None,
                           keyfile=settings.client_key or None, cert_reqs=ssl.CERT_REQUIRED)
        if will:
            client.will_set(will[0], will[1], qos=1, retain=True)
        # Publishes from other threads only queue (paho wakes this link's loop to write them):
        # writing from two threads at once corrupts a TLS stream.
        client.on_socket_register_write = lambda *_: None
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        client.on_subscribe = self._subscribed
        if on_message:
            client.on_message = lambda _c, _u, msg: on_message(msg)
        self.client = client
        self._thread = threading.Thread(target=self._run, name=f"mqtt-{client_id}", daemon=True)
        self._thread.start()

    def _report(self, text: str) -> None:
        if text != self.error:
            self.error = text
            self._on_state(text)

    def _connected(self, client, _userdata, _flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            hint = " (check username and password)" if reason_code.value in (134, 135) else ""
            self._report(f"{self.settings.where}: the broker refused the connection: {reason_code}{hint}")
            return
        # Retain as published: a retained message (a stale command) stays recognisable as one.
        for topic in self._subscriptions:
            client.subscribe(topic, options=SubscribeOptions(qos=1, retainAsPublished=True))
        self.connected.set()
        self._report("")
        if self._on_connected:
            self._on_connected()

    def _subscribed(self, _client, _userdata, _mid, reason_codes, _properties) -> None:
        refused = [code for code in reason_codes if code.is_failure]
        for code in refused:
            self._report(f"{self.settings.where}: subscription refused: {code} (broker ACL)")
        if not refused and self._on_subscribed:
            self._on_subscribed()

    def _disconnected(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        if self.connected.is_set():
            self.connected.clear()
            self._report(f"{self.settings.where}: connection lost ({reason_code})")

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self._session_expiry_s
        return props

    def _run(self) -> None:
        backoff_s = 0.5
        while not self._stop.is_set():
            try:
                self.client.connect(self.settings.host, self.settings.port, self.settings.keepalive_s,
                                    clean_start=self._clean_start, properties=self._connect_properties())
            except Exception as exc:  # noqa: BLE001 - every cause becomes a sentence and a retry
                self._report(describe_failure(self.settings, exc))
                self._stop.wait(backoff_s)
                backoff_s = min(10.0, backoff_s * 2)
                continue
            opened = time.monotonic()
            while not self._stop.is_set():
                rc = self.client.loop(timeout=0.25)  # publishes from other threads wake it at once
                if rc != mqtt.MQTT_ERR_SUCCESS:
                    break
                if not self.connected.is_set() and time.monotonic() - opened > self.settings.connect_timeout_s:
                    if "refused" not in self.error:
                        self._report(f"{self.settings.where}: the port answers but no MQTT handshake "
                                     f"within {self.settings.connect_timeout_s:g} s (not an MQTT broker?)")
                    break
            if self.connected.is_set():
                backoff_s = 0.5
            self.connected.clear()
            try:
                self.client.disconnect()
                self.client.loop(timeout=0.05)
            except Exception:  # noqa: BLE001, S110 - the socket is gone already
                pass
            self._stop.wait(backoff_s)
            backoff_s = min(10.0, backoff_s * 2)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                properties: Properties | None = None) -> mqtt.MQTTMessageInfo | None:
        if not self.connected.is_set():
            return None
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        return info if info.rc == mqtt.MQTT_ERR_SUCCESS else None

    def close(self, goodbye: tuple[str, bytes] | None = None) -> None:
        if goodbye and self.connected.is_set():
            info = self.client.publish(goodbye[0], goodbye[1], qos=1, retain=True)
            deadline = time.monotonic() + 2.0
            while not info.is_published() and time.monotonic() < deadline:
                time.sleep(0.02)
        self._stop.set()
        self._thread.join(5)
