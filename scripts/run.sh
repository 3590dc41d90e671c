#!/usr/bin/env bash
# The main job: the simulated pack with every component (launch/sim.launch.xml), until Ctrl-C.
# Launch arguments pass through, e.g.  scripts/run.sh speed:=10 duration:=600 pack:=nmc_16x12
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck disable=SC1091
source env.sh
exec bms launch sim "$@"
