# shellcheck shell=bash
# The GUI's browser tests drive Debian's chromium headless (playwright with executable_path set
# to the system browser; playwright never downloads one). Sourced by scripts/setup.sh.
if ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium
fi
