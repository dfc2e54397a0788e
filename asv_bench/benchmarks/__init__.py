"""asv benchmarks for cyprop (one module per area; shared builders in common.py)."""
