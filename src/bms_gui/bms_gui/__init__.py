"""Web GUI of the open BMS: live dashboard, recorded-run viewer, operator commands."""
