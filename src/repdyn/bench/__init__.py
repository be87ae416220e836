"""The lab bench: run store, configs, seeding, checkpoints, progress, reports, sweeps."""
