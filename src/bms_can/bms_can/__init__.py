"""CAN backend: python-can interface over Unix sockets, DBC protocol, drivers, board emulator."""
