#!/usr/bin/env bash
# Start or stop the cloud bridge's local servers (docs/cloud.md): mosquitto (MQTT 5, password
# file, ACL, TLS listener with locally made certificates) and PostgreSQL 15, both on 127.0.0.1,
# with their data in DIR. No systemd needed.
#   scripts/cloud_servers.sh start DIR [--mqtt-port N] [--mqtts-port N] [--pg-port N]
#   scripts/cloud_servers.sh stop DIR
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck disable=SC1091
source env.sh
exec python -m bms_bridge.servers "$@"
