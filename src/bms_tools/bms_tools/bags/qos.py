"""QoS conversions between rclpy profiles and the profiles stored in rosbag2 metadata."""

from __future__ import annotations

from collections.abc import Sequence

from rclpy.duration import Duration
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    LivelinessPolicy,
    QoSProfile,
    ReliabilityPolicy,
)
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)

# A latched topic such as ``components`` has one sample per writer: keep them all.
LATCHED_DEPTH = 1000
# A recorder that falls behind (a fast simulation on a small machine) must not lose samples:
# raw CDR messages are small, so 5000 per topic costs about a megabyte each.
RECORD_DEPTH = 5000
INFINITE_NS = 2**63 - 1


def _time(duration: Duration) -> QosTime:
    sec, nsec = divmod(duration.nanoseconds, 1_000_000_000)
    return QosTime(sec, nsec)


def _duration(time: QosTime) -> Duration:
    """Discovery reports "infinite" as INT64_MAX ns; rclpy spells it 0 (use the default).

    Integer arithmetic on purpose: Duration(seconds=...) goes through a float and turns INT64_MAX
    into a negative lifespan, after which every message expires before delivery.
    """
    total = time.sec * 1_000_000_000 + time.nsec
    return Duration(nanoseconds=0 if total >= INFINITE_NS else total)


def to_bag_qos(profile: QoSProfile) -> Qos:
    return Qos(
        history=QosHistory(int(profile.history)),
        depth=profile.depth,
        reliability=QosReliability(int(profile.reliability)),
        durability=QosDurability(int(profile.durability)),
        deadline=_time(profile.deadline),
        lifespan=_time(profile.lifespan),
        liveliness=QosLiveliness(int(profile.liveliness)),
        liveliness_lease_duration=_time(profile.liveliness_lease_duration),
        avoid_ros_namespace_conventions=profile.avoid_ros_namespace_conventions,
    )


def from_bag_qos(qos: Qos) -> QoSProfile:
    """The publisher profile for replay; discovery reports depth 0, so give it a usable depth."""
    history = HistoryPolicy(qos.history.value) if qos.history.value in (1, 2) else HistoryPolicy.KEEP_LAST
    reliability = ReliabilityPolicy(qos.reliability.value)
    if reliability not in (ReliabilityPolicy.RELIABLE, ReliabilityPolicy.BEST_EFFORT):
        reliability = ReliabilityPolicy.RELIABLE
    durability = DurabilityPolicy(qos.durability.value)
    if durability not in (DurabilityPolicy.VOLATILE, DurabilityPolicy.TRANSIENT_LOCAL):
        durability = DurabilityPolicy.VOLATILE
    liveliness = LivelinessPolicy(qos.liveliness.value)
    if liveliness not in (LivelinessPolicy.AUTOMATIC, LivelinessPolicy.MANUAL_BY_TOPIC):
        liveliness = LivelinessPolicy.AUTOMATIC
    depth = qos.depth if qos.depth > 0 else 10
    return QoSProfile(
        history=history, depth=depth, reliability=reliability, durability=durability,
        liveliness=liveliness, deadline=_duration(qos.deadline), lifespan=_duration(qos.lifespan),
        liveliness_lease_duration=_duration(qos.liveliness_lease_duration),
    )


def subscription_qos(offered: Sequence[QoSProfile]) -> QoSProfile:
    """A profile compatible with every offered one that still gets latched samples.

    Reliable only if every publisher is reliable (a reliable reader does not match a best-effort
    writer); transient local only if every publisher is (same rule for durability).
    """
    reliable = bool(offered) and all(p.reliability == ReliabilityPolicy.RELIABLE for p in offered)
    latched = bool(offered) and all(p.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in offered)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=LATCHED_DEPTH if latched else RECORD_DEPTH,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )
