"""Data and environments: generated tasks, bundled datasets, readers for user-given files."""
