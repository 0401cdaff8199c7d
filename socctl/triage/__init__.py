"""Alerts and their lifecycle: grouping, suppression, triage, audit trail, statistics."""
