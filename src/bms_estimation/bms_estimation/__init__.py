"""Batched per-cell state estimation (SOC, SOH, SOP) and the estimator node."""
