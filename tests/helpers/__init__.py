"""Subprocess entry points and small shared pieces for the runner/training-loop tests."""
