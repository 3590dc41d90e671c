"""``bms gui``: manage the GUI's operator accounts (a file of scrypt password hashes).

    bms gui user add NAME [--file state/gui_users]     asks for the password twice
    bms gui user remove NAME
    bms gui user list
With --password-stdin the password is read from one line of standard input (scripts, tests).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from bms_gui.auth import NAME_RE, UsersFileError, hash_password, load_users, save_users

DEFAULT_FILE = "state/gui_users"
MIN_PASSWORD = 8


def _password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        print("bms gui: the passwords differ; nothing changed", file=sys.stderr)
        return None
    return first


def _user(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        users = load_users(path)
    except UsersFileError as error:
        print(f"bms gui: {error}", file=sys.stderr)
        return 1
    if args.action == "list":
        print("\n".join(sorted(users)) if users else f"no operator accounts in {path} (the GUI is read-only)")
        return 0
    if not args.name or not NAME_RE.match(args.name):
        print("bms gui: a user name of 1-32 letters, digits, '_', '.', '-' is needed", file=sys.stderr)
        return 2
    if args.action == "remove":
        if users.pop(args.name, None) is None:
            print(f"bms gui: no user {args.name!r} in {path}", file=sys.stderr)
            return 1
        save_users(path, users)
        print(f"removed {args.name} from {path}")
        return 0
    password = _password(args)
    if password is None:
        return 1
    if len(password) < MIN_PASSWORD:
        print(f"bms gui: a password needs at least {MIN_PASSWORD} characters; nothing changed", file=sys.stderr)
        return 2
    verb = "updated" if args.name in users else "added"
    users[args.name] = hash_password(password)
    save_users(path, users)
    print(f"{verb} {args.name} in {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    gui = sub.add_parser("gui", help="the web GUI's operator accounts (docs/gui.md)")
    gui_sub = gui.add_subparsers(dest="gui_command", metavar="SUBCOMMAND", required=True)
    user = gui_sub.add_parser("user", help="add, remove or list operator accounts")
    user.add_argument("action", choices=("add", "remove", "list"))
    user.add_argument("name", nargs="?", default="")
    user.add_argument("--file", default=DEFAULT_FILE, help=f"the users file (default {DEFAULT_FILE}, "
                      "the GUI node's users_file parameter)")
    user.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    user.set_defaults(handler=_user)
