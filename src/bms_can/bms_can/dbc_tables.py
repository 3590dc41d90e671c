"""Markdown frame tables generated from the DBC files (docs/can.md holds this output; a test
checks that it is current): ``python -m bms_can.dbc_tables``."""

from __future__ import annotations

import cantools

from .protocol import DBC_DIR

FILES = ("bms.dbc", "ivt_s_little_endian.dbc")


def _signal_row(signal: cantools.database.can.Signal) -> str:
    order = "big-endian" if signal.byte_order == "big_endian" else "little-endian"
    kind = "signed" if signal.is_signed else "unsigned"
    scale = f"{signal.scale:g}" + (f" + {signal.offset:g}" if signal.offset else "")
    return (f"| {signal.name} | {signal.start} | {signal.length} | {order} | {kind} | {scale} "
            f"| {signal.unit or ''} |")


def tables() -> str:
    out: list[str] = []
    for name in FILES:
        db = cantools.database.load_file(str(DBC_DIR / name))
        out.append(f"### `{name}`\n")
        for message in sorted(db.messages, key=lambda m: m.frame_id):
            out.append(f"#### 0x{message.frame_id:03X} {message.name} ({message.length} bytes, "
                       f"from {', '.join(message.senders) or '-'})\n")
            if message.comment:
                out.append(f"{message.comment}\n")
            out.append("| signal | start bit | bits | byte order | type | scale | unit |")
            out.append("|---|---|---|---|---|---|---|")
            out.extend(_signal_row(signal) for signal in message.signals)
            out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(tables())
