"""Replay for debugging: ``bms replay-check`` (docs/replay.md)."""
