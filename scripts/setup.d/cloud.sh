# Sourced by scripts/setup.sh: the servers of the cloud bridge (docs/cloud.md) and its tests.
# mosquitto (MQTT broker, Debian package), PostgreSQL 15 (Debian) and openssl for local
# certificates. None of them is started here: scripts/cloud_servers.sh starts them on demand.
cloud_missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || cloud_missing+=(mosquitto)
command -v mosquitto_passwd >/dev/null 2>&1 || cloud_missing+=(mosquitto-clients)
[ -x /usr/lib/postgresql/15/bin/postgres ] || cloud_missing+=(postgresql-15)
command -v openssl >/dev/null 2>&1 || cloud_missing+=(openssl)
[ ${#cloud_missing[@]} -eq 0 ] || apt_install "${cloud_missing[@]}"
unset cloud_missing
