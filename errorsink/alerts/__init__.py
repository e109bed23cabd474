"""Alerts: rules, their evaluation, and the deliveries a firing sends."""
