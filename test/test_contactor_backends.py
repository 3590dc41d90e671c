"""Contactor backends are plug-ins found by name in the entry point group
bms_master.contactor_backends; an unknown name fails configure naming the installed ones."""

from __future__ import annotations

from pathlib import Path

from bms_common.testing import params, start_node, wait_for


def test_an_unknown_contactor_backend_names_the_installed_ones(tmp_path: Path) -> None:
    node = start_node(tmp_path, "bms_master", "contactor", *params(backend="relay_board", autostart=True))
    try:
        wait_for(lambda: "no contactor backend" in node.output(), 60, "the contactor node's configure error")
    finally:
        node.stop()
    assert ("no contactor backend 'relay_board' in entry point group bms_master.contactor_backends "
            "(installed: can, sim)") in node.output()
