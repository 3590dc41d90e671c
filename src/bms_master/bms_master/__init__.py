"""Master node (aggregation, operating state machine, current limits, balancing) and contactor node."""
