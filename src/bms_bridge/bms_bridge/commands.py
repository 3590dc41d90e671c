"""Remote commands (off by default): the checks a command passes before the bridge relays it.

A command is an MQTT 5 message on ``bms/v1/<site>/<pack>/cmd/<user>/<command>``. The broker's
ACL lets a user publish only under its own name (``pattern write bms/v1/+/+/cmd/%u/#``), so the
user level is authenticated. The payload is JSON: ``{"argument": "DRIVE", "issued_utc":
"2026-11-30T16:07:42.123Z", "expires_utc": "..."(optional)}``. It must carry a Message Expiry
Interval and should carry a Response Topic and Correlation Data (MQTT 5 request/response).
Rejected: retained messages, no expiry interval, expired (``expires_utc`` passed), stale (issued
more than ``max_age_s`` ago or more than 5 s ahead), users not allowed, commands other than
request_state and reset_faults, arguments other than STANDBY, DRIVE, CHARGE.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

COMMANDS = ("request_state", "reset_faults")
STATES = {"STANDBY": 0, "DRIVE": 2, "CHARGE": 3}
FUTURE_TOLERANCE_S = 5.0


@dataclass
class Command:
    user: str
    command: str
    argument: str = ""
    accepted: bool = False
    answer: str = ""


def _utc(text: object, field: str) -> datetime:
    if not isinstance(text, str):
        raise ValueError(f"{field} missing or not a string")
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{field} {text!r} is not ISO 8601") from exc
    if when.tzinfo is None:
        raise ValueError(f"{field} {text!r} has no time zone (use ...Z)")
    return when


def check(topic: str, command_root: str, payload: bytes, retained: bool, expiry_s: int | None,
          allowed_users: tuple[str, ...], max_age_s: float, now: datetime | None = None) -> Command:
    """Validate one command message; ``accepted`` False with ``answer`` saying why."""
    now = now or datetime.now(timezone.utc)
    rest = topic[len(command_root):].strip("/").split("/") if topic.startswith(command_root) else []
    user = rest[0] if rest else ""
    name = rest[1] if len(rest) == 2 else "/".join(rest[1:])
    cmd = Command(user=user, command=name)

    def refuse(why: str) -> Command:
        cmd.answer = why
        return cmd

    if len(rest) != 2:
        return refuse(f"topic {topic!r} is not {command_root}/<user>/<command>")
    if retained:
        return refuse("retained command rejected: a command is acted on only when it is sent")
    if expiry_s is None:
        return refuse("no Message Expiry Interval: a command must say when it expires")
    if user not in allowed_users:
        return refuse(f"user {user!r} may not command this pack (allowed: {', '.join(allowed_users) or 'nobody'})")
    if name not in COMMANDS:
        return refuse(f"unknown command {name!r} (allowed: {', '.join(COMMANDS)})")
    try:
        body = json.loads(payload)
        if not isinstance(body, dict):
            raise ValueError("payload is not a JSON object")
        issued = _utc(body.get("issued_utc"), "issued_utc")
        expires = _utc(body["expires_utc"], "expires_utc") if "expires_utc" in body else None
        argument = body.get("argument", "")
        if not isinstance(argument, str):
            raise ValueError("argument is not a string")
    except (ValueError, UnicodeDecodeError) as exc:
        return refuse(f"malformed command: {exc}")
    cmd.argument = argument
    if expires is not None and now > expires:
        return refuse(f"expired at {expires.isoformat()}")
    age_s = (now - issued).total_seconds()
    if age_s > max_age_s:
        return refuse(f"stale: issued {age_s:.1f} s ago, more than {max_age_s:g} s")
    if age_s < -FUTURE_TOLERANCE_S:
        return refuse(f"issued {-age_s:.1f} s in the future (clock skew?)")
    if name == "request_state" and argument not in STATES:
        return refuse(f"request_state argument {argument!r} is not one of {', '.join(STATES)}")
    if name == "reset_faults" and argument:
        return refuse("reset_faults takes no argument")
    cmd.accepted = True
    return cmd
