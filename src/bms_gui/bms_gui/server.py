"""The GUI's web application (starlette): pages, the live WebSocket, login, commands, runs.

No ROS imports: the node hands in a :class:`Backend` (the live view, the service calls, the audit
topic). The same app with a test backend would serve without ROS, but the tests run it with the
real node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from bms_gui.auth import Authenticator, UsersFileError
from bms_gui.runs import RunError, RunIndex, list_runs, resolve_run
from bms_gui.view import SERIES_FIELDS, PackView

MAX_BODY_BYTES = 16 * 1024
MAX_WS_MESSAGE_BYTES = 4 * 1024
COOKIE = "bms_session"
STATES = ("STANDBY", "DRIVE", "CHARGE")
CLOSING_STATES = ("DRIVE", "CHARGE")  # these close the contactors: confirm first
COMMANDS = ("request_state", "reset_faults")
OPEN_RUNS = 2  # run indexes kept in memory
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class Backend(Protocol):
    """What the web app needs from the node."""

    def snapshot(self) -> tuple[int, dict, bytes]: ...  # (version, status, grid)
    def live(self) -> tuple[PackView, float]: ...  # the view (under the caller's care) and now
    async def call(self, command: str, argument: str) -> tuple[bool, str]: ...
    def audit(self, record: dict) -> None: ...


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _error(message: str, status: int, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status, headers=SECURITY_HEADERS)


def _ok(body: Any) -> JSONResponse:
    return JSONResponse(body, headers=SECURITY_HEADERS)


def origin_ok(headers: Any, scheme: str) -> bool:
    """A browser's Origin must be this server (Host header); non-browser clients send none."""
    origin = headers.get("origin")
    if origin is None:
        return True
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    return origin == f"{scheme}://{headers.get('host', '')}"


async def read_json(request: Request) -> dict:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise BadRequest(f"request body over {MAX_BODY_BYTES} bytes", 413)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise BadRequest(f"request body over {MAX_BODY_BYTES} bytes", 413)
    try:
        data = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest(f"request body is not JSON: {error}") from error
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    return data


@dataclass(eq=False)
class Client:
    socket: WebSocket
    wake: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class GuiApp:
    backend: Backend
    auth: Authenticator
    runs_dir: Path
    audit_log: Path | None
    display_hz: float = 5.0
    tls: bool = False
    clients: set[Client] = field(default_factory=set)
    frame: tuple[str, bytes] | None = None
    runs: OrderedDict[str, RunIndex] = field(default_factory=OrderedDict)

    # --- frames to every browser at the display rate, whatever the data rate ---------------
    async def broadcast(self) -> None:
        period = 1.0 / self.display_hz
        while True:
            await asyncio.sleep(period)
            if not self.clients:
                continue
            _, status, grid = self.backend.snapshot()
            self.frame = (json.dumps(status, separators=(",", ":")), grid)
            for client in self.clients:
                client.wake.set()  # a slow browser gets the latest frame, not a queue

    async def websocket(self, socket: WebSocket) -> None:
        await socket.accept()
        if not origin_ok(socket.headers, socket.url.scheme):
            await socket.send_json({"type": "error", "error": f"origin {socket.headers.get('origin')!r} not allowed"})
            await socket.close(1008)
            return
        client = Client(socket)
        view, _ = self.backend.live()
        await socket.send_json({"type": "hello", "display_hz": self.display_hz,
                                "series_fields": SERIES_FIELDS, "series": list(view.series)})
        self.clients.add(client)
        sender = asyncio.create_task(self._send_frames(client))
        try:
            while True:
                message = await socket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                await socket.send_json(self._answer(message))
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self.clients.discard(client)
            sender.cancel()

    async def _send_frames(self, client: Client) -> None:
        try:
            while True:
                await client.wake.wait()
                client.wake.clear()
                if self.frame:
                    await client.socket.send_text(self.frame[0])
                    await client.socket.send_bytes(self.frame[1])
        except Exception:  # noqa: BLE001 - the browser went away; the receive loop ends the client
            return

    def _answer(self, message: dict) -> dict:
        text = message.get("text")
        if text is None:
            return {"type": "error", "error": "binary frames are not accepted; send JSON text"}
        if len(text) > MAX_WS_MESSAGE_BYTES:
            return {"type": "error", "error": f"message over {MAX_WS_MESSAGE_BYTES} bytes"}
        try:
            request = json.loads(text)
        except ValueError as error:
            return {"type": "error", "error": f"malformed frame (not JSON): {error}"}
        if not isinstance(request, dict):
            return {"type": "error", "error": "malformed frame: expected a JSON object"}
        kind = request.get("type")
        if kind == "ping":
            return {"type": "pong"}
        if kind == "history":
            module, cell = request.get("module"), request.get("cell")
            if not (isinstance(module, int) and isinstance(cell, int) and module >= 0 and cell >= 0):
                return {"type": "error", "error": "history needs integer module >= 0 and cell >= 0"}
            view, _ = self.backend.live()
            return {"type": "history", "module": module, "cell": cell, "points": view.history_of(module, cell)}
        return {"type": "error", "error": f"unknown message type {kind!r}: ping, history"}

    # --- login and commands ----------------------------------------------------------------
    def _record(self, request: Request, user: str, command: str, argument: str, success: bool, answer: str) -> None:
        record = {"time": time.time(), "origin": "gui", "user": user,
                  "peer": request.client.host if request.client else "", "command": command,
                  "argument": argument, "success": success, "answer": answer}
        if self.audit_log:
            self.audit_log.parent.mkdir(parents=True, exist_ok=True)
            with self.audit_log.open("a") as log:
                log.write(json.dumps(record) + "\n")
        self.backend.audit(record)

    def _session(self, request: Request):
        return self.auth.session(request.cookies.get(COOKIE))

    async def session_info(self, request: Request) -> Response:
        session = self._session(request)
        return _ok({"user": session.user if session else None, "csrf": session.csrf if session else None,
                    "accounts": self.auth.accounts_exist()})

    async def login(self, request: Request) -> Response:
        peer = request.client.host if request.client else ""
        try:
            if not origin_ok(request.headers, request.url.scheme):
                raise BadRequest(f"origin {request.headers.get('origin')!r} not allowed", 403)
            body = await read_json(request)
            user, password = body.get("user"), body.get("password")
            if not isinstance(user, str) or not isinstance(password, str):
                raise BadRequest("login needs a user and a password (strings)")
            wait = self.auth.wait_s(user, peer)
            if wait > 0:
                raise BadRequest(f"too many failed logins: try again in {math.ceil(wait)} s", 429)
            session = await asyncio.to_thread(self.auth.login, user, password, peer)
        except BadRequest as error:
            self._record(request, "", "login", "", False, str(error))
            return _error(str(error), error.status)
        except UsersFileError as error:
            self._record(request, "", "login", "", False, str(error))
            return _error(str(error), 500)
        if session is None:
            self._record(request, user, "login", "", False, "wrong user or password")
            return _error("wrong user or password", 401)
        self._record(request, user, "login", "", True, "logged in")
        response = _ok({"user": session.user, "csrf": session.csrf})
        response.set_cookie(COOKIE, self.auth.token_of(session), httponly=True, samesite="strict",
                            secure=self.tls, path="/")
        return response

    async def logout(self, request: Request) -> Response:
        self.auth.logout(request.cookies.get(COOKIE))
        response = _ok({"user": None})
        response.delete_cookie(COOKIE, path="/")
        return response

    async def command(self, request: Request) -> Response:
        session = self._session(request)
        user = session.user if session else ""
        command = argument = ""
        try:
            body = await read_json(request)
            command, argument = str(body.get("command", ""))[:64], str(body.get("argument", ""))[:64]
            if not origin_ok(request.headers, request.url.scheme):
                raise BadRequest(f"origin {request.headers.get('origin')!r} not allowed", 403)
            if not self.auth.accounts_exist():
                raise BadRequest("read-only: no operator accounts (add one with `bms gui user add NAME`)", 403)
            if session is None:
                raise BadRequest("log in to send commands", 401)
            if not self.auth.csrf_ok(session, request.headers.get("x-csrf-token")):
                raise BadRequest("missing or wrong CSRF token (reload the page)", 403)
            if command not in COMMANDS:
                raise BadRequest(f"unknown command {command!r}: {', '.join(COMMANDS)}")
            if command == "request_state" and argument not in STATES:
                raise BadRequest(f"request_state needs one of {', '.join(STATES)}, got {argument!r}")
            if argument in CLOSING_STATES and body.get("confirm") is not True:
                raise BadRequest(f"{argument} closes the contactors: confirm to send", 409)
        except BadRequest as error:
            self._record(request, user, command or "?", argument, False, str(error))
            return _error(str(error), error.status, confirm=error.status == 409)
        success, answer = await self.backend.call(command, argument)
        self._record(request, user, command, argument, success, answer)
        return _ok({"success": success, "answer": answer})

    # --- recorded runs ---------------------------------------------------------------------
    async def _run(self, name: str) -> RunIndex:
        if name in self.runs:
            self.runs.move_to_end(name)
            return self.runs[name]
        path = resolve_run(self.runs_dir, name)
        index = await asyncio.to_thread(RunIndex.open, path)
        self.runs[name] = index
        while len(self.runs) > OPEN_RUNS:
            self.runs.popitem(last=False)
        return index

    @staticmethod
    def _time(request: Request) -> float:
        try:
            t = float(request.query_params.get("t", "0"))
        except ValueError as error:
            raise RunError("t must be a number of seconds", 400) from error
        if math.isnan(t):
            raise RunError("t must be a number of seconds", 400)
        return t

    async def run_list(self, _: Request) -> Response:
        return _ok({"runs_dir": str(self.runs_dir), "runs": list_runs(self.runs_dir)})

    async def run_open(self, request: Request) -> Response:
        try:
            index = await self._run(request.path_params["name"])
        except RunError as error:
            return _error(str(error), error.status)
        return _ok({"name": index.name, "duration_s": index.duration_s, "series_fields": SERIES_FIELDS,
                    "series": index.series})

    async def run_status(self, request: Request) -> Response:
        try:
            index, t = await self._run(request.path_params["name"]), self._time(request)
        except RunError as error:
            return _error(str(error), error.status)
        return _ok(index.view_at(t).status(t))

    async def run_grid(self, request: Request) -> Response:
        try:
            index, t = await self._run(request.path_params["name"]), self._time(request)
        except RunError as error:
            return _error(str(error), error.status)
        return Response(index.view_at(t).grid(t), media_type="application/octet-stream", headers=SECURITY_HEADERS)

    async def run_cell(self, request: Request) -> Response:
        try:
            index, t = await self._run(request.path_params["name"]), self._time(request)
            module, cell = int(request.query_params["module"]), int(request.query_params["cell"])
        except RunError as error:
            return _error(str(error), error.status)
        except (KeyError, ValueError):
            return _error("module and cell must be integers", 400)
        return _ok({"module": module, "cell": cell, "points": index.cell_history(module, cell, t)})

    async def page(self, _: Request) -> Response:
        return FileResponse(str(resources.files("bms_gui") / "static" / "index.html"), headers=SECURITY_HEADERS)


def make_app(gui: GuiApp) -> Starlette:
    static = StaticFiles(directory=str(resources.files("bms_gui") / "static"))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette):
        task = asyncio.create_task(gui.broadcast())
        yield
        task.cancel()

    app = Starlette(routes=[
        Route("/", gui.page),
        Route("/runs", gui.page),
        Route("/api/session", gui.session_info),
        Route("/api/login", gui.login, methods=["POST"]),
        Route("/api/logout", gui.logout, methods=["POST"]),
        Route("/api/command", gui.command, methods=["POST"]),
        Route("/api/runs", gui.run_list),
        Route("/api/runs/{name}", gui.run_open),
        Route("/api/runs/{name}/status", gui.run_status),
        Route("/api/runs/{name}/grid", gui.run_grid),
        Route("/api/runs/{name}/cell", gui.run_cell),
        WebSocketRoute("/ws", gui.websocket),
        Mount("/static", static),
    ], lifespan=lifespan)
    return app
