"""`bms launch sim cloud:=true`: the simulated system's data reaches PostgreSQL through the cloud
bridge over TLS, a real mosquitto and the sink (docs/cloud.md, Quick start), including a fault
the supervisor raises, with its freeze frame from /bms/fault_log."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import psycopg

from bms_bridge.sink import apply_schema
from bms_common import topics
from bms_common.testing import NodeProcess, RosHarness, wait_for
from bms_interfaces.msg import PackState
from bms_interfaces.srv import InjectFault

sys.path.insert(0, str(Path(__file__).resolve().parent / "helpers"))
from cloud_rig import query, start_servers, start_sink, stored_events  # noqa: E402


def bms() -> str:
    return shutil.which("bms") or f"{sys.prefix}/bin/bms"


def test_the_simulated_system_reaches_the_database(ros: RosHarness, tmp_path: Path):
    states = ros.collect(PackState, topics.PACK_STATE.name, topics.PACK_STATE.qos)
    root = Path(tempfile.mkdtemp(prefix="bms-cloud-sim-"))
    root.chmod(0o755)
    servers = start_servers(root)
    servers.site = "sim"
    try:
        with psycopg.connect(servers.database.dsn) as conn:
            apply_schema(conn)
        sink = start_sink(servers, tmp_path)
        launcher = NodeProcess(
            [bms(), "launch", "sim", "gui:=false", "record:=false", "speed:=2", "duration:=24", "cloud:=true",
             "cloud_site:=sim", f"cloud_port:={servers.broker.tls_port}", "cloud_tls:=true",
             f"cloud_ca_file:={servers.broker.ca}", f"state_dir:={tmp_path / 'state'}"],
            tmp_path / "launch.log", env={"BMS_MQTT_PASSWORD": servers.broker.users["bridge"]})
        try:
            wait_for(lambda: any(m.operating_state == PackState.STATE_DRIVE for m in list(states)), 150, "DRIVE")
            answer = ros.call(InjectFault, "/bms/plant/inject_fault", InjectFault.Request(fault="hvil_open"))
            assert answer.success, answer.message
            wait_for(lambda: not launcher.alive(), 200, "the simulated run to end")
            log = launcher.output()
            assert launcher.proc.returncode == 0, log[-3000:]
            wait_for(lambda: "DRIVE" in [e["state"] for e in stored_events(servers, "operating_state")], 60,
                     "the master's DRIVE in the database")
            wait_for(lambda: stored_events(servers, "birth"), 30, "the birth message")
            wait_for(lambda: any(e["code"] == "HVIL_OPEN" for e in stored_events(servers, "fault_raised")), 30,
                     "the supervisor's HVIL_OPEN in the database")
        finally:
            launcher.stop()
            sink.stop()
        assert "cloud_bridge" in log and "bridging pack 'demo' of site 'sim' to mqtts://" in log
        kinds = {c["kind"] for b in stored_events(servers, "birth") for c in b["components"]}
        assert {"master", "safety", "estimator"} <= kinds, kinds
        frames = query(servers, "SELECT voltages_v FROM cell_frames WHERE site = 'sim'")
        assert len(frames) >= 3 and all(len(v) == 48 for (v,) in frames)
        assert all(3.0 < x < 4.3 for (v,) in frames for x in v if x == x)  # plausible NMC cells, NaN skipped
        assert query(servers, "SELECT count(*) FROM pack_summaries WHERE site = 'sim'")[0][0] >= 3
        assert stored_events(servers, "safety_level")[0]["level"] in ("OK", "WARNING")
        raised = [e for e in stored_events(servers, "fault_raised") if e["code"] == "HVIL_OPEN"]
        assert raised and raised[0]["level"] == "FAULT", stored_events(servers, "fault_raised")
        assert raised[0]["last_frame"]["hvil_closed"] is False
        assert "ERROR" in [e["state"] for e in stored_events(servers, "operating_state")]
    finally:
        servers.stop()
        shutil.rmtree(root, ignore_errors=True)
