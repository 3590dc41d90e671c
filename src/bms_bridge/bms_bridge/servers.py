"""Local mosquitto and PostgreSQL servers for the bridge, its tests and the one-command demo.

There is no systemd here, so both servers are started directly, on 127.0.0.1 only, each with a
data directory of its own:

* mosquitto (MQTT 5 capable broker): a plain listener and a TLS listener (certificates made
  here with openssl, subject alternative name IP 127.0.0.1), a password file and an ACL
  (docs/cloud.md, Security). Started as root it drops to the ``mosquitto`` user, so its data
  directory must belong to that user or it silently persists nothing. ``autosave_interval 1``
  keeps what a killed broker loses to about a second, and ``max_queued_messages`` is raised far
  above the default 1000, which would silently drop the rest of a backlog.
* PostgreSQL 15: ``initdb`` and ``postgres`` refuse to run as root, so they run through
  ``runuser -u postgres`` with a data directory that user owns.

``cloud_servers start DIR`` starts both and prints the settings (also written to
``DIR/servers.json``); ``cloud_servers stop DIR`` stops them by the PIDs it recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
BROKER_USERS = {  # user -> password: the bridge, the sink, an operator allowed to command, a viewer
    "bridge": "bridge-secret",
    "sink": "sink-secret",
    "operator": "operator-secret",
    "viewer": "viewer-secret",
}
ACL = """\
# Broker ACL (mosquitto acl_file syntax), written by bms_bridge.servers; see docs/cloud.md.
# The bridge publishes records, presence and replies and reads acks and commands.
user bridge
topic write bms/v1/#
topic read bms/v1/+/+/ack
topic read bms/v1/+/+/cmd/#
# The sink reads every pack's records and acknowledges them.
user sink
topic read bms/v1/#
topic write bms/v1/+/+/ack
# Operators and viewers read records; operators command, under their own user name only.
user operator
topic read bms/v1/#
user viewer
topic read bms/v1/#
# %u is the authenticated user: nobody can send a command in someone else's name.
pattern write bms/v1/+/+/cmd/%u/#
"""


class ServerError(RuntimeError):
    """A server could not be set up or started; the message says which and why."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(argv: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, **kwargs)
    except FileNotFoundError as exc:
        raise ServerError(f"{what}: {argv[0]} not found (run 'make setup': scripts/setup.d/cloud.sh)") from exc
    if done.returncode != 0:
        raise ServerError(f"{what} failed ({' '.join(argv)}): {done.stderr.strip() or done.stdout.strip()}")
    return done


def _chown(path: Path, user: str) -> None:
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def _check_reachable(directory: Path, user: str) -> None:
    """The server drops to ``user``: every parent directory must let others through (o+x)."""
    if os.geteuid() != 0:
        return
    for parent in directory.resolve().parents:
        if not parent.stat().st_mode & 0o001:
            raise ServerError(f"{directory}: {parent} is not searchable by other users (mode "
                              f"{parent.stat().st_mode & 0o777:o}), so the {user} user the server runs as cannot "
                              f"reach its data; use a directory under a searchable path (e.g. /tmp) or chmod o+x")


def _wait_port(port: int, proc: subprocess.Popen, what: str, log: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"{what} exited with status {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise ServerError(f"{what} did not listen on 127.0.0.1:{port} within {timeout_s:g} s ({log})")


def make_certificates(directory: Path) -> dict[str, Path]:
    """A local CA, a server certificate for IP 127.0.0.1 and a client certificate (openssl)."""
    directory.mkdir(parents=True, exist_ok=True)
    p = {name: directory / name for name in
         ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt", "client.key", "client.csr",
          "client.crt", "san.cnf")}
    if p["server.crt"].exists() and p["client.crt"].exists():
        return p
    _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-subj", "/CN=bms-local-ca",
          "-keyout", str(p["ca.key"]), "-out", str(p["ca.crt"])], "making the local CA")
    p["san.cnf"].write_text("subjectAltName=IP:127.0.0.1\n")
    for role, cn in (("server", "127.0.0.1"), ("client", "bridge")):
        _run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
              "-keyout", str(p[f"{role}.key"]), "-out", str(p[f"{role}.csr"])], f"making the {role} key")
        sign = ["openssl", "x509", "-req", "-in", str(p[f"{role}.csr"]), "-CA", str(p["ca.crt"]),
                "-CAkey", str(p["ca.key"]), "-CAcreateserial", "-days", "3650", "-out", str(p[f"{role}.crt"])]
        if role == "server":
            sign += ["-extfile", str(p["san.cnf"])]
        _run(sign, f"signing the {role} certificate")
    for key in ("server.key", "client.key", "ca.key"):
        p[key].chmod(0o640)
    return p


@dataclass
class BrokerInfo:
    port: int
    tls_port: int
    data_dir: str
    ca: str
    client_cert: str
    client_key: str
    users: dict[str, str] = field(default_factory=lambda: dict(BROKER_USERS))
    pid: int = 0


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if not found:
        raise ServerError("mosquitto is not installed (run 'make setup': scripts/setup.d/cloud.sh installs it)")
    return found


def start_broker(directory: Path, port: int = 0, tls_port: int = 0) -> tuple[subprocess.Popen, BrokerInfo]:
    """Configure (first time) and start mosquitto in ``directory``; returns the process and settings."""
    binary = mosquitto_binary()
    directory = directory.resolve()
    _check_reachable(directory, "mosquitto")
    data = directory / "data"
    data.mkdir(parents=True, exist_ok=True)
    certs = make_certificates(directory / "certs")
    passwords = directory / "passwords"
    if not passwords.exists():
        passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
        passwords.write_text("")
        for user, secret in BROKER_USERS.items():
            _run([passwd, "-b", str(passwords), user, secret], "writing the broker password file")
    (directory / "acl").write_text(ACL)
    info = BrokerInfo(port=port or free_port(), tls_port=tls_port or free_port(), data_dir=str(directory),
                      ca=str(certs["ca.crt"]), client_cert=str(certs["client.crt"]),
                      client_key=str(certs["client.key"]))
    conf = directory / "mosquitto.conf"
    conf.write_text(f"""\
# Written by bms_bridge.servers (docs/cloud.md). Loopback only.
per_listener_settings false
allow_anonymous false
password_file {passwords}
acl_file {directory / 'acl'}
persistence true
persistence_location {data}/
autosave_interval 1
autosave_on_changes false
max_queued_messages 1000000
max_queued_bytes 0
max_inflight_messages 100
persistent_client_expiration 7d
log_dest stdout
log_type error
log_type warning
log_type notice
log_type information
connection_messages true

listener {info.port} 127.0.0.1
protocol mqtt

listener {info.tls_port} 127.0.0.1
protocol mqtt
cafile {certs['ca.crt']}
certfile {certs['server.crt']}
keyfile {certs['server.key']}
require_certificate false
""")
    # Started as root mosquitto drops to its own user: everything it must read or write is its.
    _chown(directory, "mosquitto")
    log = directory / "mosquitto.log"
    handle = open(log, "a")  # noqa: SIM115 - the server's stdout for its lifetime
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=handle, stderr=subprocess.STDOUT,
                            start_new_session=True)
    _wait_port(info.port, proc, "mosquitto", log)
    _wait_port(info.tls_port, proc, "mosquitto (TLS listener)", log)
    info.pid = proc.pid
    return proc, info


@dataclass
class DatabaseInfo:
    port: int
    data_dir: str
    dbname: str = "bms"
    user: str = "postgres"
    pid: int = 0

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} dbname={self.dbname} user={self.user}"


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def start_database(directory: Path, port: int = 0) -> tuple[subprocess.Popen, DatabaseInfo]:
    """initdb (first time) and start PostgreSQL 15 in ``directory``; creates database ``bms``."""
    if not (PG_BIN / "postgres").exists():
        raise ServerError(f"PostgreSQL 15 not found in {PG_BIN} (run 'make setup': scripts/setup.d/cloud.sh)")
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    _check_reachable(directory, "postgres")
    data = directory / "pgdata"
    _chown(directory, "postgres")
    if not (data / "PG_VERSION").exists():
        _run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                           "--no-sync", "-E", "UTF8"]), "initdb")
    info = DatabaseInfo(port=port or free_port(), data_dir=str(directory))
    log = directory / "postgres.log"
    _chown(directory, "postgres")
    handle = open(log, "a")  # noqa: SIM115 - the server's stdout for its lifetime
    proc = subprocess.Popen(
        _as_postgres([str(PG_BIN / "postgres"), "-D", str(data), "-p", str(info.port), "-c", "listen_addresses=127.0.0.1",
                      "-c", f"unix_socket_directories={directory}", "-c", "fsync=on"]),
        stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    _wait_port(info.port, proc, "postgres", log)
    info.pid = proc.pid
    _create_database(info)
    return proc, info


def _create_database(info: DatabaseInfo) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(f"host=127.0.0.1 port={info.port} dbname=postgres user=postgres",
                                 autocommit=True) as conn:
                if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (info.dbname,)).fetchone():
                    conn.execute(f'CREATE DATABASE "{info.dbname}"')
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def stop_process(proc: subprocess.Popen | int, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> None:
    """End one server by its PID (its own process group, which holds only it and its children)."""
    pid = proc if isinstance(proc, int) else proc.pid
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    if isinstance(proc, subprocess.Popen):
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(pid, signal.SIGKILL)
            proc.wait(5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cloud_servers", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("directory", type=Path, help="data directory of both servers")
    parser.add_argument("--mqtt-port", type=int, default=0, help="plain MQTT port (0 = a free one)")
    parser.add_argument("--mqtts-port", type=int, default=0, help="MQTT over TLS port (0 = a free one)")
    parser.add_argument("--pg-port", type=int, default=0, help="PostgreSQL port (0 = a free one)")
    args = parser.parse_args(argv)
    state = args.directory / "servers.json"
    if args.action == "stop":
        if not state.exists():
            print(f"cloud_servers: nothing recorded in {state}", file=sys.stderr)
            return 1
        recorded = json.loads(state.read_text())
        stop_process(int(recorded["broker"]["pid"]))
        stop_process(int(recorded["database"]["pid"]), signal.SIGINT)  # PostgreSQL's fast shutdown
        print(f"stopped the servers of {args.directory}")
        return 0
    try:
        _, broker = start_broker(args.directory / "mosquitto", args.mqtt_port, args.mqtts_port)
        _, database = start_database(args.directory / "postgres", args.pg_port)
    except ServerError as exc:
        print(f"cloud_servers: {exc}", file=sys.stderr)
        return 1
    state.write_text(json.dumps({"broker": asdict(broker), "database": asdict(database) | {"dsn": database.dsn}},
                                indent=2))
    print(f"mosquitto pid {broker.pid}: mqtt://127.0.0.1:{broker.port}, mqtts://127.0.0.1:{broker.tls_port} "
          f"(CA {broker.ca})")
    print(f"postgres pid {database.pid}: {database.dsn}")
    print(f"settings: {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
