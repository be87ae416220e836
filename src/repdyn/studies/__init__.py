"""One module per reproduced paper; found by `repdyn.registry`."""
