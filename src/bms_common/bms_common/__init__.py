"""Shared runtime pieces of the open BMS: topic names and QoS of the contract, component info, pack configuration, lifecycle helper and lifecycle manager."""
