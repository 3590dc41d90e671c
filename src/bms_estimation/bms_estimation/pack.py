"""Pack-level SOC and SOH of a series string from the per-cell estimates.

In a series string every cell carries the same charge, so the pack can discharge until its
emptiest cell (in Ah) is empty and charge until its fullest is full::

    dischargeable_ah = min_i(soc_i * C_i)
    chargeable_ah    = min_i((1 - soc_i) * C_i)
    pack_soc = dischargeable_ah / (dischargeable_ah + chargeable_ah)

The denominator is the pack's usable capacity now (it shrinks as cells drift apart), so pack
SOC reaches 0 and 1 exactly when the first cell reaches its limit. Pack SOH is the weakest
cell's capacity over the nominal capacity: the capacity a full charge can deliver, at best.
"""

from __future__ import annotations

import numpy as np


def pack_soc(soc: np.ndarray, capacity_ah: np.ndarray) -> float:
    soc = np.clip(soc, 0.0, 1.0)
    dischargeable_ah = float(np.min(soc * capacity_ah))
    chargeable_ah = float(np.min((1.0 - soc) * capacity_ah))
    usable_ah = dischargeable_ah + chargeable_ah
    return dischargeable_ah / usable_ah if usable_ah > 0.0 else float("nan")


def pack_soh(capacity_ah: np.ndarray, nominal_capacity_ah: float) -> float:
    return float(np.min(capacity_ah)) / nominal_capacity_ah
