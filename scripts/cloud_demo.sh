#!/usr/bin/env bash
# One command: the simulated system with its data going to a local broker and database.
# Starts mosquitto and PostgreSQL (data in runs/cloud unless BMS_CLOUD_DIR says otherwise),
# the cloud sink, and `bms launch sim cloud:=true` with your launch arguments; Ctrl-C (or the
# run's duration) stops everything it started. Then query, e.g.:
#   psql -h 127.0.0.1 -p 19432 -U postgres bms -c 'SELECT count(*) FROM cell_frames'
#   scripts/cloud_demo.sh speed:=10 duration:=120 gui:=false
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck disable=SC1091
source env.sh
dir=$(realpath -m "${BMS_CLOUD_DIR:-runs/cloud}")
mkdir -p "$dir"
chmod o+x "$dir"
mqtt_port=${BMS_MQTT_PORT:-19883} mqtts_port=${BMS_MQTTS_PORT:-19884} pg_port=${BMS_PG_PORT:-19432}
python -m bms_bridge.servers start "$dir" --mqtt-port "$mqtt_port" --mqtts-port "$mqtts_port" --pg-port "$pg_port"
sink_pid=
cleanup() {
  [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null && wait "$sink_pid" 2>/dev/null
  python -m bms_bridge.servers stop "$dir"
}
trap cleanup EXIT
BMS_MQTT_PASSWORD=sink-secret python -m bms_bridge.sink --dsn "host=127.0.0.1 port=$pg_port dbname=bms user=postgres" \
  --broker-port "$mqtt_port" --username sink &
sink_pid=$!
echo "[cloud] broker mqtts://127.0.0.1:$mqtts_port (CA $dir/mosquitto/certs/ca.crt), database port $pg_port"
BMS_MQTT_PASSWORD=bridge-secret bms launch sim cloud:=true cloud_site:=local cloud_port:="$mqtts_port" cloud_tls:=true \
  cloud_ca_file:="$dir/mosquitto/certs/ca.crt" "$@"
