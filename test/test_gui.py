"""The web GUI in a real browser (Debian's chromium, headless, no network) against the real gui
node over real DDS: a small publisher of the contract topics stands in for the pack, and hosts
the master's and the supervisor's services. One node, one browser, one publisher for the module.

Screenshots go to docs/gui/ (docs/gui.md shows them)."""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from rclpy.serialization import serialize_message

from bms_common import topics
from bms_common.testing import NodeProcess, RosHarness, executable, params, wait_for
from bms_interfaces.msg import (
    CellMeasurements,
    CommandAudit,
    ComponentInfo,
    CurrentLimits,
    Fault,
    FaultLog,
    FaultLogEntry,
    PackMeasurement,
    PackState,
    SafetyStatus,
)
from bms_interfaces.srv import InjectFault, RequestState, ResetFaults

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "docs" / "gui"
MODULES, CELLS = 3, 4
NAN_CELL = (1, 2)
SILENT_MODULE = 2
PASSWORD = "correct horse battery"
REFUSAL = "refused by the test master: DRIVE needs a charged pack"
BROWSER_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-default-apps",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]


def cell_voltage(module: int, cell: int) -> float:
    return 3.6 + 0.01 * module + 0.001 * cell + (0.002 if module == 0 and cell == 3 else 0.0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cells_msg(module: int, sequence: int, stamp=None) -> CellMeasurements:
    msg = CellMeasurements()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = f"module_{module}"
    msg.module_id, msg.sequence = module, sequence
    volts = [cell_voltage(module, c) for c in range(CELLS)]
    if module == NAN_CELL[0]:
        volts[NAN_CELL[1]] = math.nan
    msg.cell_voltages_v = volts
    msg.temperatures_degc = [25.0, 26.0]
    msg.balancing = [c == 1 for c in range(CELLS)]
    return msg


class Pack:
    """Publishes the contract topics at 10 Hz (every module until one is silenced) and answers
    request_state (refusing DRIVE with REFUSAL) and reset_faults."""

    def __init__(self) -> None:
        self.ros = RosHarness("gui_test_pack")
        node = self.ros.node
        self.cells = node.create_publisher(CellMeasurements, topics.CELL_MEASUREMENTS.name, topics.PER_MODULE)
        self.pack = node.create_publisher(PackMeasurement, topics.PACK_MEASUREMENT.name, topics.RELIABLE)
        self.state = node.create_publisher(PackState, topics.PACK_STATE.name, topics.RELIABLE)
        self.limits = node.create_publisher(CurrentLimits, topics.CURRENT_LIMITS.name, topics.RELIABLE)
        self.safety = node.create_publisher(SafetyStatus, topics.SAFETY_STATUS.name, topics.LATCHED)
        self.fault_log = node.create_publisher(FaultLog, topics.FAULT_LOG.name, topics.LATCHED)
        self.audits = self.ros.collect(CommandAudit, topics.COMMAND_AUDIT.name, topics.RELIABLE_EVENTS)
        self.faults: list[Fault] = []
        self.silent: set[int] = set()
        # a peer of another interface major version, as a supplier's old node would announce
        foreign = ComponentInfo(node_name="/bms/old_estimator", kind=ComponentInfo.KIND_ESTIMATOR,
                                vendor="supplier-b", implementation="legacy.estimator", version="0.9.0",
                                interface_version="1.4.0", host="bench")
        self.components = node.create_publisher(ComponentInfo, topics.COMPONENTS.name, topics.LATCHED)
        self.components.publish(foreign)
        self.sequence = 0
        node.create_service(RequestState, topics.REQUEST_STATE, self._request_state)
        node.create_service(ResetFaults, topics.RESET_FAULTS, self._reset)
        self._publish()
        node.create_timer(0.1, self._publish)

    def _request_state(self, request, response):
        response.accepted = request.state == PackState.STATE_STANDBY
        response.reason = "STANDBY already" if response.accepted else REFUSAL
        return response

    def _reset(self, _, response):
        response.success, response.reason = True, "no latched fault remains"
        return response

    def _publish(self) -> None:
        self.sequence += 1
        stamp = self.ros.node.get_clock().now().to_msg()
        for module in range(MODULES):
            if module not in self.silent:
                self.cells.publish(cells_msg(module, self.sequence, stamp))
        pack = PackMeasurement(current_a=-12.5, pack_voltage_v=43.25, dc_link_voltage_v=43.0,
                               insulation_resistance_ohm=5e6, hvil_closed=True, sequence=self.sequence)
        pack.header.stamp = stamp
        self.pack.publish(pack)
        state = PackState(operating_state=PackState.STATE_DRIVE, state_reason="test pack",
                          pack_voltage_v=43.25, pack_current_a=-12.5, module_status=[1] * MODULES,
                          min_cell_voltage_v=3.6, max_cell_voltage_v=3.623, max_temperature_degc=26.0)
        state.header.stamp = stamp
        self.state.publish(state)
        limits = CurrentLimits(max_charge_current_a=20.0, max_discharge_current_a=80.0,
                               charge_reason=CurrentLimits.REASON_STATE_OF_POWER)
        limits.header.stamp = stamp
        self.limits.publish(limits)
        safety = SafetyStatus(level=max([f.level for f in self.faults], default=0), sequence=self.sequence,
                              contactors_allowed=not self.faults, faults=self.faults)
        safety.header.stamp = stamp
        self.safety.publish(safety)

    def inject_fault(self) -> None:
        stamp = self.ros.node.get_clock().now().to_msg()
        fault = Fault(code="CELL_OV", level=SafetyStatus.LEVEL_FAULT, module_id=0, cell=3, value=4.31,
                      limit=4.25, since=stamp, latched=True, description="cell voltage 4.310 V over 4.25 V")
        self.faults = [fault]
        entry = FaultLogEntry(key="CELL_OV/0/3", code="CELL_OV", max_level=SafetyStatus.LEVEL_FAULT,
                              module_id=0, cell=3, first=stamp, last=stamp, count=1,
                              description=fault.description)
        for frame in (entry.first_frame, entry.last_frame):
            frame.pack_current_a, frame.pack_voltage_v, frame.dc_link_voltage_v = -12.5, 43.25, 43.0
            frame.insulation_resistance_ohm, frame.hvil_closed, frame.module_id = 5e6, True, 0
            frame.cell_voltages_v = [3.6, 3.601, 3.602, 4.31]
            frame.temperatures_degc = [25.0, math.nan]
        log = FaultLog(sequence=1, latched=[fault], entries=[entry])
        log.header.stamp = stamp
        self.fault_log.publish(log)


def write_run(path: Path, speed: float = 4.0, seconds: float = 40.0) -> None:
    """A bag of module 0 and pack measurements stamped on a simulated clock that runs `speed`
    times faster than the recorder's receive time; cell 0 reads 3.5 V + 0.01 V per run second."""
    from bms_tools.bags.typestore import TypeLibrary
    from bms_tools.bags.writer import SplitWriter, TopicSpec

    types = TypeLibrary()
    writer = SplitWriter(path)
    for topic in (topics.CELL_MEASUREMENTS, topics.PACK_MEASUREMENT):
        writer.add_topic(TopicSpec(topic.absolute, topic.type_name, *types.definition(topic.type_name)))
    receive0 = 1_700_000_000 * 10**9
    for step in range(int(seconds * 2) + 1):
        t = step / 2
        stamp_ns = 1000 * 10**9 + int(t * 1e9)
        cells = cells_msg(0, step)
        cells.header.stamp.sec, cells.header.stamp.nanosec = divmod(stamp_ns, 10**9)
        cells.cell_voltages_v = [3.5 + 0.01 * t] + [3.6] * (CELLS - 1)
        pack = PackMeasurement(current_a=-t, pack_voltage_v=14.0, sequence=step)
        pack.header.stamp = cells.header.stamp
        receive_ns = receive0 + int(t / speed * 1e9)
        writer.write(topics.CELL_MEASUREMENTS.absolute, receive_ns, serialize_message(cells))
        writer.write(topics.PACK_MEASUREMENT.absolute, receive_ns, serialize_message(pack))
    writer.close()


def http(url: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            status, data = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, data = error.code, error.read()
    try:
        return status, json.loads(data or b"{}")
    except ValueError:
        return status, {"text": data.decode(errors="replace")}


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gui")
    users = tmp / "gui_users"
    add = subprocess.run([shutil.which("bms") or f"{sys.prefix}/bin/bms", "gui", "user", "add", "op",
                          "--password-stdin", "--file", str(users)], input=PASSWORD + "\n",
                         capture_output=True, text=True, timeout=60)
    assert add.returncode == 0, add.stderr
    write_run(tmp / "runs" / "run-speed4")
    pack = Pack()
    port, foxglove_port = free_port(), free_port()
    gui = NodeProcess([executable("bms_gui", "gui"), "--ros-args", "-r", "__ns:=/bms",
                       *params(port=port, runs_dir=str(tmp / "runs"), users_file=str(users),
                               audit_log=str(tmp / "audit.log"), display_hz=5.0,
                               foxglove_port=foxglove_port)], tmp / "gui.log")
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return http(f"{url}/api/session")[0] == 200
        except OSError:
            return False

    try:
        wait_for(answers, 60, f"the GUI to answer on {url} (log: {tmp / 'gui.log'})", poll_s=0.2)
        yield {"url": url, "pack": pack, "gui": gui, "tmp": tmp, "port": port, "foxglove_port": foxglove_port}
    finally:
        code = gui.stop()
        pack.ros.close()
    assert code == 0, f"the GUI did not end in order on SIGINT (exit {code}): {tmp / 'gui.log'}"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        message = "Debian's chromium is not installed: `make setup` installs it (scripts/setup.d/gui.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium, args=BROWSER_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser, system):
    # bypass_csp: playwright evaluates test expressions as strings, which the page's CSP forbids
    context = browser.new_context(viewport={"width": 1280, "height": 1500}, bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"script errors on the page: {errors}"


def hover_text(page, module: int, cell: int) -> str:
    point = page.evaluate(f"bms.cellCenter({module}, {cell})")
    page.mouse.move(point["x"], point["y"])
    return page.text_content("#tooltip") or ""


def test_gui_in_the_simulated_system(browser, ros, tmp_path):
    """`bms launch sim gui:=true`: the page shows the master's operating state and a voltage the
    slave node published, and the components table lists the running components. First in the
    module: the `system` fixture's test publisher must not be running in the domain yet."""
    ros.collect(CellMeasurements, topics.CELL_MEASUREMENTS.name, topics.PER_MODULE)
    port = free_port()
    launcher = NodeProcess([shutil.which("bms") or f"{sys.prefix}/bin/bms", "launch", "sim", "speed:=1",
                            "record:=false", f"state_dir:={tmp_path / 'state'}", f"gui_port:={port}"],
                           tmp_path / "launch.log")
    url = f"http://127.0.0.1:{port}"

    def serving() -> bool:
        try:
            return http(f"{url}/api/session")[0] == 200
        except OSError:
            return False

    context = browser.new_context(viewport={"width": 1280, "height": 1500}, bypass_csp=True)
    try:
        wait_for(serving, 120, f"the GUI of the launched system on {url}", poll_s=0.5)
        page = context.new_page()
        page.goto(url)
        page.wait_for_function("document.getElementById('op-state').textContent === 'DRIVE'", timeout=120000)
        page.wait_for_function("bms.grid && bms.grid.modules === 4", timeout=60000)
        shown = hover_text(page, 1, 5)
        assert shown.startswith("module 1 cell 5: ") and shown.endswith(" V"), shown
        value = float(shown.split(": ")[1].split()[0])
        published = [m.cell_voltages_v[5] for m in ros.snapshot(topics.CELL_MEASUREMENTS.name) if m.module_id == 1]
        assert published and min(abs(v - value) for v in published) < 0.0006, (value, published[-5:])
        kinds = ["master", "safety", "estimator", "slave", "contactor", "current_sensor", "simulation", "gui"]
        page.wait_for_function(f"{kinds}.every(k => bms.status.components.some(c => c.kind === k))", timeout=60000)
        for kind in kinds:
            assert page.locator("#components td", has_text=kind).count() > 0, kind
        page.mouse.click(*page.evaluate("[bms.cellCenter(1, 5).x, bms.cellCenter(1, 5).y]"))
        page.wait_for_function("bms.cellHistory.length > 0", timeout=30000)
        page.mouse.move(*page.evaluate("[bms.cellCenter(1, 5).x, bms.cellCenter(1, 5).y]"))
        page.screenshot(path=str(SHOTS / "live-sim.png"), full_page=True)
        # the supervisor's own fault log: an open HVIL appears with its level and freeze frame
        answer = ros.call(InjectFault, "/bms/plant/inject_fault", InjectFault.Request(fault="hvil_open"))
        assert answer.success, answer.message
        entry = page.locator("#fault-log details", has_text="HVIL")
        entry.wait_for(timeout=60000)
        assert "FAULT" in entry.locator("summary").text_content()
        assert "HVIL open" in entry.locator(".frame").first.text_content()
    finally:
        context.close()
        launcher.stop(timeout_s=30)
    assert "gui: exited with code 0" in launcher.output()  # SIGINT from the launcher: an orderly end


def test_live_page_shows_published_values_unknown_and_stale_cells(page, system):
    page.goto(system["url"])
    page.wait_for_function("document.getElementById('op-state').textContent === 'DRIVE'", timeout=60000)
    page.wait_for_function("bms.grid && bms.grid.modules === 3", timeout=30000)
    assert page.text_content("#pack-voltage") == "43.25 V"
    assert page.text_content("#charge-limit") == "20.0 A (state of power)"
    assert hover_text(page, 0, 3) == "module 0 cell 3: 3.605 V"
    assert hover_text(page, 0, 1) == "module 0 cell 1: 3.601 V (balancing)"
    assert hover_text(page, *NAN_CELL).startswith("module 1 cell 2: unknown")
    assert hover_text(page, SILENT_MODULE, 0) == "module 2 cell 0: 3.620 V"
    system["pack"].silent.add(SILENT_MODULE)
    page.wait_for_function("document.getElementById('stale-modules').textContent.includes('2')", timeout=30000)
    assert hover_text(page, SILENT_MODULE, 0) == "module 2 cell 0: 3.620 V (stale)"
    assert "stale" not in hover_text(page, 0, 0)
    page.wait_for_selector("#components td:text-is('/bms/gui')", timeout=30000)
    assert page.locator("#components tr", has_text="/bms/gui").locator("td").nth(1).text_content() == "gui"
    page.wait_for_selector("#components tr.incompatible:has-text('/bms/old_estimator')", timeout=30000)
    assert page.locator("#components tr.incompatible").count() == 1  # only the 1.x peer is marked
    point = page.evaluate("bms.cellCenter(0, 3)")
    page.mouse.click(point["x"], point["y"])
    page.wait_for_function("bms.cellHistory.length > 0 && bms.cellHistory.every(p => Math.abs(p[1] - 3.605) < 1e-6)",
                           timeout=30000)
    page.mouse.move(point["x"], point["y"])
    page.screenshot(path=str(SHOTS / "live.png"), full_page=True)


def test_injected_fault_shows_level_and_freeze_frame(page, system):
    page.goto(system["url"])
    page.wait_for_function("document.getElementById('op-state').textContent === 'DRIVE'", timeout=60000)
    system["pack"].inject_fault()
    row = page.locator("#active-faults tr.fault-row", has_text="CELL_OV")
    row.wait_for(timeout=30000)
    assert row.locator("td").nth(1).text_content() == "FAULT"
    assert page.text_content("#safety-level") == "FAULT"
    entry = page.locator("#fault-log details", has_text="CELL_OV")
    entry.locator("summary").click()
    frame = entry.locator(".frame").first.text_content()
    assert "module 0 cells [V]: 3.600 3.601 3.602 4.310" in frame and "temperatures [°C]: 25.0 unknown" in frame
    assert "LATCHED" in entry.locator("summary").text_content()
    page.screenshot(path=str(SHOTS / "fault.png"), full_page=True)


def test_commands_need_login_confirm_closing_and_are_audited(page, system):
    url = system["url"]
    body = json.dumps({"command": "reset_faults"}).encode()
    assert http(f"{url}/api/command", body, {"Content-Type": "application/json"})[0] == 401
    page.goto(url)
    assert page.evaluate("""async () => (await fetch('/api/command', {method: 'POST',
        body: JSON.stringify({command: 'reset_faults'})})).status""") == 401
    page.fill("#login-user", "op")
    page.fill("#login-password", PASSWORD)
    page.click("#login-form button")
    page.wait_for_selector("#logged-in:not([hidden])", timeout=30000)
    page.click("button[data-command=reset_faults]")
    page.wait_for_function("document.getElementById('command-answer').textContent.includes('accepted')", timeout=30000)
    assert page.text_content("#command-answer") == "reset_faults accepted: no latched fault remains"
    page.click("button[data-argument=DRIVE]")
    page.wait_for_selector("#confirm:not([hidden])", timeout=30000)
    assert "DRIVE closes the contactors" in page.text_content("#confirm-text")
    page.click("#confirm-yes")
    page.wait_for_function("document.getElementById('command-answer').textContent.includes('DRIVE refused')", timeout=30000)
    assert page.text_content("#command-answer") == f"request_state DRIVE refused: {REFUSAL}"
    # a wrong CSRF token is refused even with the session cookie
    status = page.evaluate("""async () => (await fetch('/api/command', {method: 'POST', headers: {'X-CSRF-Token': 'x'},
        body: JSON.stringify({command: 'reset_faults'})})).status""")
    assert status == 403
    audits = system["pack"].audits
    wait_for(lambda: any(a.command == "request_state" and a.argument == "DRIVE" and a.answer == REFUSAL
                         for a in system["pack"].ros.snapshot(topics.COMMAND_AUDIT.name)), 30, "the DRIVE audit")
    records = [json.loads(line) for line in (system["tmp"] / "audit.log").read_text().splitlines()]
    assert {"user": "op", "command": "reset_faults", "success": True} .items() <= next(
        r for r in records if r["command"] == "reset_faults" and r["success"]).items()
    assert any(r["command"] == "reset_faults" and r["user"] == "" and not r["success"] for r in records)
    assert any(a.origin == "gui" and a.user == "op" and a.command == "login" and a.success for a in audits)


def test_failed_logins_are_throttled(system):
    url, body = system["url"], json.dumps({"user": "mallory", "password": "guess"}).encode()
    codes = [http(f"{url}/api/login", body, {"Content-Type": "application/json"})[0] for _ in range(4)]
    assert codes[:3] == [401, 401, 401] and codes[3] == 429, codes


def test_bad_input_gets_an_error_and_the_node_keeps_serving(system):
    from websockets.sync.client import connect

    url, ws_url = system["url"], system["url"].replace("http", "ws") + "/ws"
    status, answer = http(f"{url}/api/login", b"x" * 20000, {"Content-Type": "application/json"})
    assert status == 413 and "over" in answer["error"]
    status, answer = http(f"{url}/api/command", b"{not json", {"Content-Type": "application/json"})
    assert status == 400 and "not JSON" in answer["error"]
    status, answer = http(f"{url}/api/login", json.dumps({"user": "op", "password": PASSWORD}).encode(),
                          {"Content-Type": "application/json", "Origin": "http://evil.example"})
    assert status == 403 and "origin" in answer["error"]
    assert http(f"{url}/api/runs/..%2F..%2Fetc")[0] in (400, 404)
    status, answer = http(f"{url}/api/runs/..")
    assert status == 400 and "invalid run name" in answer["error"]
    status, answer = http(f"{url}/api/runs/no-such-run")
    assert status == 404 and "no run 'no-such-run'" in answer["error"]

    def next_json(ws, *kinds: str) -> dict:
        while True:  # status and grid frames stream in between
            reply = ws.recv(timeout=20)
            if isinstance(reply, str) and json.loads(reply)["type"] in kinds:
                return json.loads(reply)

    with connect(ws_url, origin="http://evil.example") as ws:
        replies = [json.loads(ws.recv(timeout=20))]
    with connect(ws_url) as ws:
        for frame in ("not json", b"\x00\x01", json.dumps({"type": "launch_missiles"}), "[1, 2]",
                      json.dumps({"type": "history", "module": "x"})):
            ws.send(frame)
            replies.append(next_json(ws, "error"))
        ws.send(json.dumps({"type": "ping"}))
        next_json(ws, "pong")
        replies.append(next_json(ws, "status"))
    assert "origin" in replies[0]["error"]
    assert "not JSON" in replies[1]["error"] and "binary" in replies[2]["error"]
    assert "unknown message type 'launch_missiles'" in replies[3]["error"]
    assert "JSON object" in replies[4]["error"] and "integer" in replies[5]["error"]
    assert replies[-1]["state"]["state"] == "DRIVE"  # still serving live data
    # a message the view cannot take (module id far beyond any pack) is logged and dropped
    system["pack"].cells.publish(cells_msg(5000, 1))
    wait_for(lambda: "dropped a CellMeasurements the GUI cannot show" in system["gui"].output(), 30,
             "the GUI to log the dropped message")
    assert "module_id 5000" in system["gui"].output()
    assert system["gui"].alive()
    with connect(ws_url) as ws:
        assert next_json(ws, "status")["stale_modules"] == sorted(system["pack"].silent)  # no module 5000


def test_recorded_run_scrubs_on_the_runs_own_clock(page, system):
    page.goto(system["url"] + "/runs")
    page.wait_for_selector("#run-select option[value=run-speed4]", state="attached", timeout=30000)
    page.select_option("#run-select", "run-speed4")
    page.wait_for_function("document.getElementById('run-answer').textContent.includes('40.0 s of run time')",
                           timeout=60000)
    page.eval_on_selector("#timeline", "e => { e.value = '20'; e.dispatchEvent(new Event('input')); }")
    page.wait_for_function("document.getElementById('timeline').dataset.shown === '20'", timeout=30000)
    assert hover_text(page, 0, 0) == "module 0 cell 0: 3.700 V"
    assert page.text_content("#pack-current") == "-20.00 A"
    page.eval_on_selector("#timeline", "e => { e.value = '35.5'; e.dispatchEvent(new Event('input')); }")
    page.wait_for_function("document.getElementById('timeline').dataset.shown === '35.5'", timeout=30000)
    assert hover_text(page, 0, 0) == "module 0 cell 0: 3.855 V"
    page.screenshot(path=str(SHOTS / "run.png"), full_page=True)


def test_bag_plot_uses_the_runs_clock(system):
    from bms_tools.bags.plot import _collect

    t, _ = _collect(system["tmp"] / "runs" / "run-speed4")["pack_current"].columns()
    assert t[-1] == pytest.approx(40.0), "a 40 s run at speed 4 spans 40 s, not its 10 s of receive time"


def test_a_port_in_use_ends_only_the_gui_with_a_reason(system, tmp_path):
    second = NodeProcess([executable("bms_gui", "gui"), "--ros-args", "-r", "__ns:=/bms", "-r", "__node:=gui2",
                          *params(port=system["port"])], tmp_path / "gui2.log")
    try:
        wait_for(lambda: not second.alive(), 60, "the second GUI to give up its busy port", poll_s=0.2)
    finally:
        second.stop()
    assert second.proc.returncode == 1
    assert f"cannot serve the GUI on 127.0.0.1:{system['port']}" in second.output()
    assert system["gui"].alive() and http(f"{system['url']}/api/session")[0] == 200


def test_tls_when_certificate_and_key_are_configured(system, tmp_path):
    import ssl

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    port = free_port()
    tls = NodeProcess([executable("bms_gui", "gui"), "--ros-args", "-r", "__ns:=/bms", "-r", "__node:=gui_tls",
                       *params(port=port, tls_cert=str(cert), tls_key=str(key),
                               users_file=str(system["tmp"] / "gui_users"), audit_log=str(tmp_path / "audit.log"))],
                      tmp_path / "gui_tls.log")
    context = ssl.create_default_context(cafile=str(cert))

    def login() -> tuple[int, str]:
        request = urllib.request.Request(f"https://127.0.0.1:{port}/api/login", method="POST",
                                         data=json.dumps({"user": "op", "password": PASSWORD}).encode())
        with urllib.request.urlopen(request, timeout=20, context=context) as response:
            return response.status, response.headers.get("set-cookie", "")

    try:
        status, cookie = wait_for(lambda: _try(login), 60, "the GUI to answer over HTTPS", poll_s=0.3)
        assert status == 200 and "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/session", timeout=10).read()
    finally:
        tls.stop()


def _try(call):
    try:
        return call()
    except (OSError, urllib.error.URLError):
        return None


def test_foxglove_endpoint_streams_the_pack(system):
    """With foxglove_port set, a Foxglove WebSocket client gets the advertised channels and, once
    subscribed, the pack as JSON (opcode 1: subscription id, timestamp, payload)."""
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{system['foxglove_port']}", subprotocols=["foxglove.sdk.v1", "foxglove.websocket.v1"],
                 open_timeout=20) as ws:
        channels = {}
        while "/bms/gui/pack" not in channels:
            message = json.loads(ws.recv(timeout=20))
            if message["op"] == "advertise":
                channels.update({c["topic"]: c["id"] for c in message["channels"]})
        ws.send(json.dumps({"op": "subscribe", "subscriptions": [{"id": 7, "channelId": channels["/bms/gui/pack"]}]}))
        while True:
            frame = ws.recv(timeout=20)
            if isinstance(frame, bytes) and frame[0] == 1 and int.from_bytes(frame[1:5], "little") == 7:
                break
    pack = json.loads(frame[13:])
    assert pack["state"] == "DRIVE" and pack["pack_voltage_v"] == 43.25
