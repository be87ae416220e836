"""Building blocks: attention variants, recurrences and scans, GNN processors, norms."""
