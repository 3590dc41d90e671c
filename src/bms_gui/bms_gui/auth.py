"""Operator accounts, login sessions, CSRF tokens and login throttling; no ROS imports.

The users file holds one line per operator, ``name:scrypt:N:r:p:SALT_HEX:HASH_HEX`` (hashlib's
scrypt, a slow key-derivation function); ``bms gui user add`` writes it. Without a users file,
or with an empty one, the GUI is read-only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
SESSION_S = 8 * 3600
FREE_FAILURES = 3  # failed logins per user and peer before the wait starts
MAX_WAIT_S = 60.0


class UsersFileError(Exception):
    pass


def hash_password(password: str, salt: bytes | None = None, n: int = SCRYPT_N, r: int = SCRYPT_R,
                  p: int = SCRYPT_P) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt:{n}:{r}:{p}:{salt.hex()}:{digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    _, n, r, p, salt, digest = stored.split(":")
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                               p=int(p), dklen=len(bytes.fromhex(digest)))
    return hmac.compare_digest(candidate, bytes.fromhex(digest))


def load_users(path: Path) -> dict[str, str]:
    """name -> stored hash; a missing file is no users."""
    if not path.exists():
        return {}
    users: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        name, _, stored = line.partition(":")
        parts = stored.split(":")
        if not NAME_RE.match(name) or len(parts) != 6 or parts[0] != "scrypt":
            raise UsersFileError(f"{path}:{number}: expected name:scrypt:N:r:p:salt:hash "
                                 "(write it with `bms gui user add NAME`)")
        users[name] = stored
    return users


def save_users(path: Path, users: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{name}:{stored}\n" for name, stored in sorted(users.items())))
    tmp.chmod(0o600)
    tmp.replace(path)


@dataclass
class Session:
    user: str
    csrf: str
    expires: float


@dataclass
class Authenticator:
    users_file: Path
    sessions: dict[str, Session] = field(default_factory=dict)
    failures: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)
    _dummy: str = field(default_factory=lambda: hash_password(secrets.token_hex(8)))

    def accounts_exist(self) -> bool:
        try:
            return bool(load_users(self.users_file))
        except UsersFileError:
            return False

    def wait_s(self, user: str, peer: str, now: float | None = None) -> float:
        """Seconds before this user may try again from this peer (0: now)."""
        count, last = self.failures.get((user, peer), (0, 0.0))
        if count < FREE_FAILURES:
            return 0.0
        wait = min(MAX_WAIT_S, 2.0 ** (count - FREE_FAILURES + 1))
        return max(0.0, last + wait - (now if now is not None else time.monotonic()))

    def login(self, user: str, password: str, peer: str) -> Session | None:
        """A new session, or None. The hash is computed for unknown users too (same timing)."""
        users = load_users(self.users_file)
        stored = users.get(user, self._dummy)
        ok = verify_password(password, stored) and user in users
        if not ok:
            count, _ = self.failures.get((user, peer), (0, 0.0))
            self.failures[(user, peer)] = (count + 1, time.monotonic())
            return None
        self.failures.pop((user, peer), None)
        session = Session(user, secrets.token_urlsafe(24), time.monotonic() + SESSION_S)
        self.sessions[secrets.token_urlsafe(32)] = session
        return session

    def token_of(self, session: Session) -> str:
        return next(token for token, s in self.sessions.items() if s is session)

    def session(self, token: str | None) -> Session | None:
        session = self.sessions.get(token or "")
        if session is None:
            return None
        if session.expires < time.monotonic():
            self.sessions.pop(token or "", None)
            return None
        return session

    def logout(self, token: str | None) -> None:
        self.sessions.pop(token or "", None)

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return hmac.compare_digest(session.csrf.encode(), (token or "").encode())
