"""A Fast DDS profile for a replay's processes: fast acknowledgements.

The lockstep replay waits, at every clock step, until the fresh nodes' readers have acknowledged
the inputs (``wait_for_all_acked``). With the project's profile (config/dds/fastdds.xml: 100 ms
writer heartbeat) and Fast DDS's default 5 ms reader response delay, that wait took about 45 ms
per step, most of the replay's time. The replay profile is the same file with a 2 ms heartbeat on
the writers and no reader response delay: about 1 ms, with the same outputs (the ack still
gates every step). It is built from the profile in use, so transports and
buffers stay whatever the user configured.
"""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

NS = "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"
HEARTBEAT_NS = 2_000_000
ENV = "FASTRTPS_DEFAULT_PROFILES_FILE"


def _q(tag: str, ns: str = NS) -> str:
    return f"{{{ns}}}{tag}" if ns else tag


def _duration(parent: ET.Element, tag: str, nanosec: int, ns: str) -> None:
    times = parent.find(_q("times", ns))
    if times is None:
        times = ET.SubElement(parent, _q("times", ns))
    element = times.find(_q(tag, ns))
    if element is not None:
        times.remove(element)
    element = ET.SubElement(times, _q(tag, ns))
    ET.SubElement(element, _q("sec", ns)).text = "0"
    ET.SubElement(element, _q("nanosec", ns)).text = str(nanosec)


def _default(profiles: ET.Element, kind: str, name: str, ns: str) -> ET.Element:
    for element in profiles.findall(_q(kind, ns)):
        if element.get("is_default_profile") == "true":
            return element
    return ET.SubElement(profiles, _q(kind, ns), {"profile_name": name, "is_default_profile": "true"})


def replay_profile(base: Path | None) -> str:
    """The XML text of ``base`` (or of an empty profile set) with fast acknowledgements. Fast DDS
    accepts a ``<dds><profiles>`` or a bare ``<profiles>`` root, with or without the namespace;
    the result keeps the file's form."""
    ET.register_namespace("", NS)
    if base is not None and base.is_file():
        root = ET.parse(base).getroot()
    else:
        root = ET.Element(_q("dds"))
    ns = root.tag[1:].split("}")[0] if root.tag.startswith("{") else ""
    local = root.tag.split("}")[-1]
    if local == "profiles":
        profiles = root
    else:
        profiles = root.find(_q("profiles", ns))
        if profiles is None:
            profiles = ET.SubElement(root, _q("profiles", ns))
    _duration(_default(profiles, "data_writer", "bms_replay_writer", ns), "heartbeatPeriod", HEARTBEAT_NS, ns)
    _duration(_default(profiles, "data_reader", "bms_replay_reader", ns), "heartbeatResponseDelay", 0, ns)
    return ET.tostring(root, encoding="unicode")


def write_replay_profile(directory: Path) -> Path:
    """Write the replay profile next to the replay's logs; returns its path."""
    base = os.environ.get(ENV)
    handle, name = tempfile.mkstemp(prefix="fastdds-replay-", suffix=".xml", dir=directory)
    os.close(handle)
    path = Path(name)
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n' + replay_profile(Path(base) if base else None))
    return path
