"""Assembled models built from `repdyn.nn`."""
