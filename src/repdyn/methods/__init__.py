"""Training procedures and interventions."""
