# Source this file (bash): `source env.sh`. It activates .venv, sources the colcon install,
# makes the venv's ROS packages findable through AMENT_PREFIX_PATH and keeps DDS on loopback
# unless you set the variables yourself (see README, "Multi-host deployment").
_bms_root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ ! -f "$_bms_root/install/setup.bash" ]; then
  echo "env.sh: no build found; run 'make setup' first" >&2
  return 1 2>/dev/null || exit 1
fi
# The colcon and venv scripts read unset variables: tolerate them even under `set -u`.
case $- in *u*) _bms_nounset=1; set +u ;; *) _bms_nounset= ;; esac
# shellcheck disable=SC1091
source "$_bms_root/.venv/bin/activate"
# shellcheck disable=SC1091
source "$_bms_root/install/setup.bash"
[ -n "$_bms_nounset" ] && set -u
unset _bms_nounset
case ":${AMENT_PREFIX_PATH:-}:" in
  *":$_bms_root/.venv:"*) ;;
  *) export AMENT_PREFIX_PATH="${AMENT_PREFIX_PATH:+$AMENT_PREFIX_PATH:}$_bms_root/.venv" ;;
esac
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export FASTDDS_BUILTIN_TRANSPORTS="${FASTDDS_BUILTIN_TRANSPORTS:-UDPv4}"
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-42}"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
# Larger socket buffers and a fast heartbeat: see the comment in the file.
export FASTRTPS_DEFAULT_PROFILES_FILE="${FASTRTPS_DEFAULT_PROFILES_FILE:-$_bms_root/config/dds/fastdds.xml}"
export BMS_ROOT="$_bms_root"
unset _bms_root
