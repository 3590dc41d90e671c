"""High-voltage circuit between the cells and the load: contactors, precharge, DC link,
insulation and the HV interlock loop (HVIL).

The DC link is a capacitor with a discharge (bleed) resistor across it. With main- and the
precharge contactor closed it charges through the precharge resistor; with main+ and main- closed
it follows the pack voltage. A DC-link short is a resistance across the capacitor, so precharge
settles at a divider voltage and never reaches the pack voltage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .sim_config import SimConfig

CONTACTOR_NAMES = ("main_plus", "main_minus", "precharge")


@dataclass(frozen=True)
class ContactorStates:
    main_plus: bool = False
    main_minus: bool = False
    precharge: bool = False


class HvCircuit:
    def __init__(self, sim: SimConfig) -> None:
        self.precharge_resistance_ohm = sim.precharge_resistance_ohm
        self.dc_link_capacitance_f = sim.dc_link_capacitance_f
        self.dc_link_bleed_ohm = sim.dc_link_bleed_ohm
        self.nominal_insulation_resistance_ohm = sim.insulation_resistance_ohm
        self.insulation_resistance_ohm = sim.insulation_resistance_ohm
        self.hvil_closed = True
        # Resistance across the DC link; inf = no short.
        self.dc_link_short_ohm = math.inf
        self.dc_link_voltage_v = 0.0
        self.commanded = ContactorStates()
        self.welded: set[str] = set()

    def command_contactors(self, main_plus: bool, main_minus: bool, precharge: bool) -> None:
        """What a contactor driver sets: coil energised (True) or not."""
        self.commanded = ContactorStates(main_plus, main_minus, precharge)

    def feedback(self) -> ContactorStates:
        """Auxiliary-contact readback: a welded contactor stays closed whatever its coil does."""
        c = self.commanded
        return ContactorStates(
            main_plus=c.main_plus or "main_plus" in self.welded,
            main_minus=c.main_minus or "main_minus" in self.welded,
            precharge=c.precharge or "precharge" in self.welded,
        )

    def set_welded(self, contactor: str, welded: bool) -> None:
        if contactor not in CONTACTOR_NAMES:
            raise ValueError(f"unknown contactor {contactor!r} (known: {', '.join(CONTACTOR_NAMES)})")
        if welded:
            self.welded.add(contactor)
        else:
            self.welded.discard(contactor)

    @property
    def load_connected(self) -> bool:
        """Both main contactors closed: the load and charger see the pack."""
        f = self.feedback()
        return f.main_plus and f.main_minus

    def step(self, pack_voltage_v: float, load_current_a: float, dt_s: float) -> float:
        """Advance the DC link by dt_s; return the pack current it draws (positive = charging).

        ``load_current_a`` is what the load or charger asks for while the mains are closed.
        """
        closed = self.feedback()
        short_siemens = 0.0 if math.isinf(self.dc_link_short_ohm) else 1.0 / self.dc_link_short_ohm
        if closed.main_plus and closed.main_minus:
            self.dc_link_voltage_v = pack_voltage_v
            return load_current_a - pack_voltage_v * short_siemens
        leak_siemens = 1.0 / self.dc_link_bleed_ohm + short_siemens
        charge_siemens = 1.0 / self.precharge_resistance_ohm if closed.precharge and closed.main_minus else 0.0
        # C dV/dt = g_charge (Vpack - V) - g_leak V, solved exactly for a constant pack voltage.
        total = charge_siemens + leak_siemens
        settle_v = charge_siemens * pack_voltage_v / total
        before_v = self.dc_link_voltage_v
        self.dc_link_voltage_v = settle_v + (before_v - settle_v) * math.exp(
            -total * dt_s / self.dc_link_capacitance_f)
        if charge_siemens == 0.0:
            return 0.0
        mean_v = 0.5 * (before_v + self.dc_link_voltage_v)
        return -charge_siemens * (pack_voltage_v - mean_v)
