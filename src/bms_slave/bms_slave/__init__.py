"""Slave (module) nodes, AFE hardware abstraction and the simulated battery pack."""
