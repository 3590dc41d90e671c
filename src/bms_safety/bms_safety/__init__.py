"""Independent safety supervisor: limit tables, fault evaluation, fault log."""
