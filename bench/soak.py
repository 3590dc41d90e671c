"""The no-false-positive soak at full length: the 16 x 12 pack driven, rested and charged for an
hour of simulated time (or --duration), asked to run at 20x; prints the achieved speed and the
worst safety level. The test suite runs ten minutes of the same (test_safety_soak.py).

    source env.sh && python bench/soak.py --duration 3600 --speed 20
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "test" / "helpers"))
from soak import PACK, SPEED, assert_nothing_above_warning, soak  # noqa: E402

from bms_common.testing import isolate_dds  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=3600.0, help="simulated seconds (3600)")
    parser.add_argument("--speed", type=float, default=SPEED, help=f"asked speed-up ({SPEED:g})")
    parser.add_argument("--pack", default=PACK, help=f"pack configuration ({PACK})")
    args = parser.parse_args()
    isolate_dds()
    with tempfile.TemporaryDirectory(prefix="bms-soak-") as tmp:
        wall_start = time.monotonic()
        result = soak(Path(tmp), args.duration, args.speed, args.pack)
        wall_s = time.monotonic() - wall_start
    print(f"soak pack={args.pack} simulated_s={result.simulated_s:.0f} asked={args.speed:g}x "
          f"achieved={result.speed:.1f}x wall_s={wall_s:.0f} statuses={result.statuses} "
          f"worst_level={result.worst_level}")
    try:
        assert_nothing_above_warning(result, args.duration)
    except AssertionError as exc:
        print(f"FAILED: {exc}")
        return 1
    print("no false positive")
    return 0


if __name__ == "__main__":
    sys.exit(main())
