"""Simulated time that waits for the BMS nodes it drives (docs/simulation.md, "Pacing").

A simulation runs faster than real time on a machine that may not keep up. A BMS node that is
starved of CPU then processes ``/clock`` and its inputs late, and every timeout it measures on
simulated time grows by its delivery delay times the speed: a system that is only slow would
trip as if hardware had failed. A simulation may run slower than asked, a BMS may not trip on
its own lag, so the plant follows the stamps of the nodes' periodic outputs and holds simulated
time while one of them is more than ``max_lag_s`` behind it.

Some nodes are fed by the plant itself over DDS: a module or a current sensor hosted on a board
of its own gets its inputs on /sim and answers with its sample. For those the plant knows which
stamp must come (``expect``) and holds simulated time until it has, so the other nodes see the
sample before the clock moves past its instant, wherever the board runs: a run with a board
replays like one without (``bms replay-check``), instead of depending on how fast one process
hop was. A node that misses an expected sample for ``max_hold_s`` is followed by its lag alone
from then on.

A node that stays behind and publishes nothing newer for ``max_hold_s`` of wall time is stopped or
dead rather than slow: simulated time goes on without it (its silence is something the system
must detect) until its outputs catch up again. A slow node that still makes progress is waited
for as long as it takes. No ROS imports: the plant node feeds it stamps and asks it each step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STAMP_EPSILON_S = 1e-6  # stamps travel as integer nanoseconds


@dataclass
class Followed:
    """One node output the plant follows, keyed by topic."""

    name: str
    period_s: float = 0.0  # a node slower than 10 Hz is this much further behind between outputs
    stamp_s: float | None = None  # newest output stamp (simulated time); None until heard
    checked_stamp_s: float | None = None  # stamp_s when the plant last looked
    behind_since_wall_s: float | None = None  # behind, with no newer output, since then
    given_up: bool = False
    held_wall_s: float = 0.0  # wall time simulated time waited for this node, in all
    expected_s: float | None = None  # the newest stamp the plant fed it inputs for (``expect``)
    lockstep: bool = True  # expectations are waited for (until it once missed one)


@dataclass(frozen=True)
class PaceEvent:
    """Something the plant should log: a node given up on, or one that caught up again."""

    name: str
    kind: str  # "given_up" or "caught_up"
    lag_s: float


@dataclass
class Pacer:
    max_lag_s: float
    max_hold_s: float
    followed: dict[str, Followed] = field(default_factory=dict)
    held_wall_s: float = 0.0  # wall time simulated time stood still, in all
    _last_wall_s: float | None = None
    _holding: Followed | None = None

    def __post_init__(self) -> None:
        if self.max_lag_s < 0 or self.max_hold_s < 0:
            raise ValueError(f"pacing: max_lag_s and max_hold_s must be >= 0, got {self.max_lag_s}, "
                             f"{self.max_hold_s}")

    @property
    def enabled(self) -> bool:
        return self.max_lag_s > 0

    def heard(self, name: str, stamp_s: float, period_s: float = 0.0) -> None:
        """An output of ``name`` stamped ``stamp_s``; ``period_s``: how often it comes, when that
        is slower than ``max_lag_s`` allows for (an AFE sampling every 0.5 s)."""
        node = self.followed.setdefault(name, Followed(name, period_s))
        if node.stamp_s is None or stamp_s > node.stamp_s:
            node.stamp_s = stamp_s

    def expect(self, name: str, stamp_s: float, period_s: float = 0.0) -> None:
        """The plant just gave ``name`` the inputs of its sample stamped ``stamp_s``: simulated
        time holds until that sample is heard."""
        node = self.followed.setdefault(name, Followed(name, period_s))
        if node.expected_s is None or stamp_s > node.expected_s:
            node.expected_s = stamp_s

    def _behind(self, node: Followed, sim_now_s: float) -> bool:
        if node.lockstep and node.expected_s is not None:
            if node.stamp_s is None or node.stamp_s < node.expected_s - STAMP_EPSILON_S:
                return True
        return node.stamp_s is not None and sim_now_s - node.stamp_s > self.max_lag_s + node.period_s

    def may_advance(self, sim_now_s: float, wall_s: float) -> tuple[bool, list[PaceEvent]]:
        """Whether simulated time may step now, and the events to report."""
        if self._holding is not None and self._last_wall_s is not None:
            waited = wall_s - self._last_wall_s
            self.held_wall_s += waited
            self._holding.held_wall_s += waited
        self._last_wall_s = wall_s
        self._holding = None
        events: list[PaceEvent] = []
        if not self.enabled:
            return True, events
        for node in self.followed.values():
            if node.stamp_s is None and node.expected_s is None:
                continue
            progressed = node.stamp_s != node.checked_stamp_s
            node.checked_stamp_s = node.stamp_s
            lag_s = sim_now_s - (node.stamp_s if node.stamp_s is not None else 0.0)
            if not self._behind(node, sim_now_s):
                node.behind_since_wall_s = None
                if node.given_up:
                    node.given_up = False
                    events.append(PaceEvent(node.name, "caught_up", lag_s))
                continue
            if node.given_up:
                continue
            if node.behind_since_wall_s is None or progressed:
                node.behind_since_wall_s = wall_s
            if wall_s - node.behind_since_wall_s > self.max_hold_s:
                node.given_up = True
                node.lockstep = False  # it missed an expected sample: from now on its lag alone
                events.append(PaceEvent(node.name, "given_up", lag_s))
            elif self._holding is None:
                self._holding = node
        return self._holding is None, events

    def lagging(self) -> str | None:
        """The node simulated time waits for now, if any."""
        return None if self._holding is None else self._holding.name

    def waiting_for(self, sim_now_s: float) -> str:
        """What simulated time waits for now, in words: 'module_2 (its sample of 12.387 s)' or
        'power_limits (0.45 s behind, allowed 0.3 s)'; empty when nothing."""
        node = self._holding
        if node is None:
            return ""
        if node.lockstep and node.expected_s is not None and (node.stamp_s is None or
                                                               node.stamp_s < node.expected_s - STAMP_EPSILON_S):
            return f"{node.name} (its sample of {node.expected_s:.3f} s)"
        lag_s = sim_now_s - (node.stamp_s or 0.0)
        return f"{node.name} ({lag_s:.2f} s behind, allowed {self.max_lag_s + node.period_s:g} s)"

    def summary(self) -> str:
        """Where the waiting went: 'estimator 1.2 s, safety_status 0.1 s' (largest first)."""
        waits = sorted((n for n in self.followed.values() if n.held_wall_s > 0.0005),
                       key=lambda n: -n.held_wall_s)
        return ", ".join(f"{n.name} {n.held_wall_s:.1f} s" for n in waits) or "none"
