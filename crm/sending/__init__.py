"""Sending: the outbox, channel providers and exactly-once dispatch with delivery reports (issue: sending)."""
