"""Churn model: point-in-time features, training, a verified model registry and nightly scoring (issue: churn)."""
