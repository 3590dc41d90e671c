# Sourced by scripts/setup.sh: the servers of the cloud bridge (docs/cloud.md) and its tests:
# mosquitto (MQTT broker, with mosquitto_passwd), PostgreSQL 15 and openssl for the local
# certificates. Nothing is started here: scripts/cloud_servers.sh starts them on demand.
cloud_missing=()
{ command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; } || cloud_missing+=(mosquitto)
[ -x /usr/lib/postgresql/15/bin/postgres ] || cloud_missing+=(postgresql-15)
command -v openssl >/dev/null 2>&1 || cloud_missing+=(openssl)
[ ${#cloud_missing[@]} -eq 0 ] || apt_install "${cloud_missing[@]}"
unset cloud_missing
