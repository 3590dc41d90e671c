"""Cell chemistries for the simulated pack: OCV tables and lumped electrical/thermal parameters.

Each chemistry is data: an open-circuit voltage table at 25 degC over a uniform SOC grid, an
entropic coefficient table dOCV/dT on the same grid, and scalar parameters. Resistances are given
normalised to capacity (ohm * Ah) because a cell's resistance scales roughly inversely with its
capacity; the pack's nominal capacity turns them into ohms. To add a chemistry, add an entry to
``CHEMISTRY_MODELS`` (see docs/simulation.md, "How to add a chemistry").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REFERENCE_TEMPERATURE_DEGC = 25.0
GAS_CONSTANT_J_PER_MOL_K = 8.314
KELVIN_OFFSET = 273.15
# Points beyond 0 and 1 SOC continue the end slopes so an over- or over-discharged cell keeps
# moving its voltage instead of sticking at the table end (an overcharge fault must show).
_EXTRAPOLATION_SOC = 0.5


@dataclass(frozen=True)
class OcvTable:
    """OCV(SOC, T) = ocv_25_v(SOC) + docv_dt_v_per_k(SOC) * (T - 25 degC), linear in SOC."""

    soc: np.ndarray
    ocv_25_v: np.ndarray
    docv_dt_v_per_k: np.ndarray

    @classmethod
    def from_uniform(cls, ocv_25_v: list[float], docv_dt_mv_per_k: list[float]) -> OcvTable:
        if len(ocv_25_v) != len(docv_dt_mv_per_k) or len(ocv_25_v) < 3:
            raise ValueError("OCV and entropic tables need the same length (at least 3 points)")
        soc = np.linspace(0.0, 1.0, len(ocv_25_v))
        ocv = np.asarray(ocv_25_v, dtype=float)
        if np.any(np.diff(ocv) <= 0.0):
            raise ValueError("OCV table must rise strictly with SOC")
        entropic = np.asarray(docv_dt_mv_per_k, dtype=float) * 1e-3
        low_slope = (ocv[1] - ocv[0]) / (soc[1] - soc[0])
        high_slope = (ocv[-1] - ocv[-2]) / (soc[-1] - soc[-2])
        e = _EXTRAPOLATION_SOC
        return cls(
            soc=np.concatenate(([-e], soc, [1.0 + e])),
            ocv_25_v=np.concatenate(([ocv[0] - e * low_slope], ocv, [ocv[-1] + e * high_slope])),
            docv_dt_v_per_k=np.concatenate(([entropic[0]], entropic, [entropic[-1]])),
        )

    def ocv_v(self, soc: np.ndarray, temperature_degc: np.ndarray) -> np.ndarray:
        ocv = np.interp(soc, self.soc, self.ocv_25_v)
        ocv += np.interp(soc, self.soc, self.docv_dt_v_per_k) * (temperature_degc - REFERENCE_TEMPERATURE_DEGC)
        return ocv


@dataclass(frozen=True)
class ChemistryModel:
    name: str
    ocv: OcvTable
    # Half the gap between the charge and discharge OCV branches; 0 disables the hysteresis state.
    hysteresis_v: float
    # How fast the hysteresis state swings between branches, per unit of SOC moved.
    hysteresis_rate_per_soc: float
    r0_ohm_ah: float
    r1_ohm_ah: float
    r2_ohm_ah: float
    tau1_s: float
    tau2_s: float
    # Arrhenius activation energy of the resistances: R(T) = R25 * exp(Ea/Rg (1/T - 1/T25)).
    activation_energy_j_per_mol: float
    coulombic_efficiency: float
    self_discharge_per_month: float
    mass_kg_per_ah: float
    specific_heat_j_per_kg_k: float
    # Voltage the default CC-CV charger holds a cell at.
    charge_voltage_v: float


NMC = ChemistryModel(
    name="NMC",
    ocv=OcvTable.from_uniform(
        [3.000, 3.400, 3.500, 3.560, 3.600, 3.630, 3.660, 3.690, 3.720, 3.750, 3.780,
         3.820, 3.860, 3.900, 3.940, 3.980, 4.020, 4.060, 4.100, 4.150, 4.200],
        [0.20, 0.15, 0.10, 0.05, 0.00, -0.05, -0.08, -0.10, -0.10, -0.08, -0.05,
         -0.03, 0.00, 0.02, 0.03, 0.04, 0.05, 0.05, 0.05, 0.05, 0.05],
    ),
    hysteresis_v=0.0,
    hysteresis_rate_per_soc=0.0,
    r0_ohm_ah=0.060,
    r1_ohm_ah=0.025,
    r2_ohm_ah=0.030,
    tau1_s=8.0,
    tau2_s=150.0,
    activation_energy_j_per_mol=25_000.0,
    coulombic_efficiency=0.999,
    self_discharge_per_month=0.02,
    mass_kg_per_ah=0.017,
    specific_heat_j_per_kg_k=1000.0,
    charge_voltage_v=4.15,
)

LFP = ChemistryModel(
    name="LFP",
    ocv=OcvTable.from_uniform(
        [2.500, 3.100, 3.200, 3.240, 3.260, 3.270, 3.280, 3.285, 3.290, 3.295, 3.300,
         3.305, 3.310, 3.320, 3.325, 3.330, 3.335, 3.340, 3.350, 3.380, 3.550],
        [0.10, 0.08, 0.05, 0.02, 0.00, -0.02, -0.03, -0.03, -0.02, -0.01, 0.00,
         0.00, 0.01, 0.01, 0.01, 0.00, -0.01, -0.02, -0.02, -0.03, -0.03],
    ),
    hysteresis_v=0.012,
    hysteresis_rate_per_soc=30.0,
    r0_ohm_ah=0.080,
    r1_ohm_ah=0.030,
    r2_ohm_ah=0.040,
    tau1_s=10.0,
    tau2_s=300.0,
    activation_energy_j_per_mol=30_000.0,
    coulombic_efficiency=0.9995,
    self_discharge_per_month=0.015,
    mass_kg_per_ah=0.020,
    specific_heat_j_per_kg_k=1100.0,
    charge_voltage_v=3.60,
)

CHEMISTRY_MODELS: dict[str, ChemistryModel] = {model.name: model for model in (NMC, LFP)}


def chemistry_model(name: str) -> ChemistryModel:
    try:
        return CHEMISTRY_MODELS[name]
    except KeyError:
        raise ValueError(
            f"no simulation model for chemistry {name!r} (known: {', '.join(CHEMISTRY_MODELS)}); "
            "add one to bms_slave/chemistry.py"
        ) from None


def arrhenius_factor(temperature_degc: np.ndarray, activation_energy_j_per_mol: float) -> np.ndarray:
    """Resistance multiplier relative to 25 degC."""
    inverse_kelvin = 1.0 / (temperature_degc + KELVIN_OFFSET)
    reference = 1.0 / (REFERENCE_TEMPERATURE_DEGC + KELVIN_OFFSET)
    return np.exp((activation_energy_j_per_mol / GAS_CONSTANT_J_PER_MOL_K) * (inverse_kelvin - reference))
