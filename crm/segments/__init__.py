"""Segments: lifecycle states, RFM, reachability and membership history per business day (issue: segments)."""
