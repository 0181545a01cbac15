"""The fleet's benchmark: `bench/run [--quick]` (see README, "Benchmarks")."""
