"""Package and interface versions."""

from __future__ import annotations

from bms_interfaces.msg import ComponentInfo

PACKAGE_VERSION = "0.1.0"
INTERFACE_VERSION: str = ComponentInfo.INTERFACE_VERSION


def parse_semver(version: str) -> tuple[int, int, int]:
    """'1.2.3' -> (1, 2, 3); raises ValueError naming the bad string."""
    parts = version.strip().split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"not a semantic version (MAJOR.MINOR.PATCH): {version!r}")
    major, minor, patch = (int(p) for p in parts)
    return major, minor, patch


def compatible(ours: str, theirs: str) -> bool:
    """Peers interoperate when their interface MAJOR versions agree."""
    try:
        return parse_semver(ours)[0] == parse_semver(theirs)[0]
    except ValueError:
        return False
