#!/usr/bin/env bash
# The main job: the simulated pack with every component (launch/sim.launch.xml), until Ctrl-C.
# Launch arguments pass through, e.g.  scripts/run.sh speed:=10 duration:=600 pack:=nmc_16x12
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck disable=SC1091
source env.sh
gui=true gui_port=8080 gui_host=127.0.0.1
for arg in "$@"; do
  case "$arg" in
    gui:=*) gui=${arg#gui:=} ;;
    gui_port:=*) gui_port=${arg#gui_port:=} ;;
    gui_host:=*) gui_host=${arg#gui_host:=} ;;
  esac
done
if [ "$gui" = true ]; then
  echo "[run] web GUI: http://$gui_host:$gui_port/ (recorded runs: http://$gui_host:$gui_port/runs; docs/gui.md)"
fi
exec bms launch sim "$@"
