#!/usr/bin/env bash
# Idempotent set-up of the workspace: .venv with pinned requirements, the CMake path patch,
# and a colcon build of every package. Re-running after a code change only rebuilds.
#
#   scripts/setup.sh            set up (or update) and build
#   BMS_SETUP_QUIET=1 ...       print only the step headlines
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
V="$ROOT/.venv"
PYTHON=${PYTHON:-python3}
cd "$ROOT"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

apt_install() {
  # Installs Debian packages when we can (root with apt-get); otherwise tells the user what to do.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian packages: $*"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1; then
      apt-get update -qq >/dev/null 2>&1 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
        || die "apt-get install $* failed"
    fi
  else
    die "missing prerequisite(s): $* (install them, e.g. 'sudo apt-get install $*')"
  fi
}

# --- prerequisites ---------------------------------------------------------------------------
command -v "$PYTHON" >/dev/null 2>&1 || die "python3 >= 3.10 is required (not found as '$PYTHON')"
"$PYTHON" - <<'EOF' || die "python3 >= 3.10 is required, found $("$PYTHON" --version 2>&1)"
import sys
sys.exit(0 if sys.version_info >= (3, 10) else 1)
EOF
missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv

# --- servers and browser the components and their tests need --------------------------------
# Each scripts/setup.d/*.sh adds what its component needs (Debian packages through apt_install,
# npm packages); they run in name order with say, die and apt_install available.
for part in "$ROOT"/scripts/setup.d/*.sh; do
  [ -e "$part" ] || continue
  # shellcheck disable=SC1090
  source "$part"
done

# --- virtual environment and pinned requirements ---------------------------------------------
if [ ! -x "$V/bin/python" ]; then
  say "creating $V"
  "$PYTHON" -m venv "$V"
fi
stamp="$V/.requirements.sha256"
want=$(cat requirements.txt requirements.lock | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing pinned requirements (about 40 s the first time)"
  "$V/bin/python" -m pip install -q --disable-pip-version-check \
    -r requirements.txt -c requirements.lock
  "$V/bin/python" -m pip check >/dev/null || die "pip check reports inconsistent packages: run '$V/bin/pip check'"
  # The ROS wheels' generated CMake exports hard-code the wheel builder's Python paths.
  PYINC=$("$V/bin/python" -c 'import sysconfig;print(sysconfig.get_paths()["include"])')
  SITEPKG=$("$V/bin/python" -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')
  # (grep finds nothing once patched: not an error when the requirements change later)
  { grep -rl --include='*.cmake' /opt/python/cp311-cp311 "$V/share" 2>/dev/null || true; } | xargs -r sed -i \
    -e "s#/opt/python/cp311-cp311/include/python3.11#$PYINC#g" \
    -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages#$SITEPKG#g"
  echo "$want" > "$stamp"
else
  say "requirements up to date"
fi

# --- build -----------------------------------------------------------------------------------
say "colcon build"
# shellcheck disable=SC1091
source "$V/bin/activate"
export AMENT_PREFIX_PATH="$V"
unset CMAKE_PREFIX_PATH
log="$ROOT/log/setup-build.txt"
mkdir -p "$ROOT/log"
if ! colcon --log-base "$ROOT/log" build --base-paths . src --symlink-install \
    --event-handlers console_cohesion- status- summary+ \
    --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$V/bin/python" >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  die "colcon build failed (full log: $log)"
fi
tail -n 2 "$log"
say "done: 'source env.sh' to use the workspace"
