"""The bridge's plain cores without ROS or servers: outbox budgets and sequence, record encoding,
command checks, ack ranges."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from bms_bridge import commands, records
from bms_bridge.forwarder import parse_ack, ranges_of
from bms_bridge.outbox import Outbox


def test_outbox_numbers_across_reopening_and_drops_only_telemetry_oldest_first(tmp_path):
    path = tmp_path / "outbox.sqlite"
    box = Outbox(path, max_telemetry=3)
    seqs = [box.append("cells", False, "t", lambda s: b"%d" % s) for _ in range(2)]
    seqs.append(box.append("event", True, "e", lambda s: b"%d" % s))
    seqs += [box.append("cells", False, "t", lambda s: b"%d" % s) for _ in range(3)]
    assert seqs == [1, 2, 3, 4, 5, 6]
    drops = box.take_drops()
    assert (drops.count, drops.first_seq, drops.last_seq) == (2, 1, 2)
    assert box.take_drops() is None
    assert [r.seq for r in box.pending(0, 10)] == [3, 4, 5, 6]
    assert [r.seq for r in box.pending(0, 10, event=True)] == [3]
    assert box.delete([3, 4]) == 2 and box.counts() == (0, 2)
    box.close()
    again = Outbox(path, max_telemetry=3)
    assert again.append("cells", False, "t", lambda s: b"x") == 7  # the sequence continues
    assert again.dropped_total == 2 and again.counts() == (0, 3)


def test_outbox_rejects_a_budget_below_one(tmp_path):
    with pytest.raises(ValueError, match="max_telemetry must be >= 1"):
        Outbox(tmp_path / "o.sqlite", max_telemetry=0)


def test_cell_frames_quantise_and_decode_with_nan_as_null():
    stamp = SimpleNamespace(sec=10, nanosec=500_000_000)
    sample = SimpleNamespace(cell_voltages_v=[3.7012, math.nan], temperatures_degc=[25.25], header=SimpleNamespace(stamp=stamp),
                             sequence=7, module_flags=0)
    body = records.cell_frame({1: sample}, modules=2, cells=2, sensors=1)
    assert body["v_01mv"] == [None, None, 37012, None] and body["module_seq"] == [-1, 7]
    record = records.parse(records.envelope("s", "p", 1, "cells", 10.5, body))
    volts, temps = records.decoded_cell_frame(record["body"])
    assert volts[2] == pytest.approx(3.7012) and math.isnan(volts[3]) and temps[1] == pytest.approx(25.25)


@pytest.mark.parametrize(("payload", "why"), [
    (b"{", "not JSON"), (b"[]", "not a JSON object"), (b'{"v": 2}', "format version"),
    (json.dumps({"v": 1, "site": "s", "pack": "p", "seq": 1, "kind": "x", "wall": "w", "body": {}}).encode(),
     "unknown kind"),
])
def test_bad_records_say_what_is_wrong(payload, why):
    with pytest.raises(records.RecordError, match=why):
        records.parse(payload)


def test_topic_levels_must_be_plain():
    with pytest.raises(ValueError, match="site id"):
        records.pack_topic("a/b", "p", "x")


NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
ROOT = "bms/v1/s/p/cmd"


def _check(command="request_state", body=None, user="operator", **kw):
    body = {"argument": "DRIVE", "issued_utc": NOW.isoformat()} if body is None else body
    args = {"retained": False, "expiry_s": 30} | kw
    return commands.check(f"{ROOT}/{user}/{command}", ROOT, json.dumps(body).encode(), args["retained"],
                          args["expiry_s"], ("operator",), 10.0, NOW)


def test_command_checks():
    assert _check().accepted
    assert "retained" in _check(retained=True).answer
    assert "Expiry" in _check(expiry_s=None).answer
    assert "may not command" in _check(user="viewer").answer
    assert "unknown command" in _check(command="open").answer
    assert "stale" in _check(body={"argument": "DRIVE", "issued_utc": (NOW - timedelta(seconds=11)).isoformat()}).answer
    assert "future" in _check(body={"argument": "DRIVE", "issued_utc": (NOW + timedelta(seconds=6)).isoformat()}).answer
    assert "expired" in _check(body={"argument": "DRIVE", "issued_utc": NOW.isoformat(),
                                     "expires_utc": (NOW - timedelta(seconds=1)).isoformat()}).answer
    assert "malformed" in _check(body={"argument": "DRIVE"}).answer
    assert "not one of" in _check(body={"argument": "FLY", "issued_utc": NOW.isoformat()}).answer
    assert _check(command="reset_faults", body={"issued_utc": NOW.isoformat()}).accepted


def test_ack_ranges_round_trip_and_bad_ranges_are_refused():
    assert ranges_of([5, 1, 2, 3, 7, 8]) == [[1, 3], [5, 5], [7, 8]]
    assert parse_ack(json.dumps({"ranges": [[1, 3], [7, 8]]}).encode()) == [1, 2, 3, 7, 8]
    with pytest.raises(ValueError, match="bad ack range"):
        parse_ack(b'{"ranges": [[5, 1]]}')
