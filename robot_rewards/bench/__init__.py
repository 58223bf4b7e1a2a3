"""Benchmarks behind `robot-rewards bench <name>`: they print tables and write metrics.json."""
