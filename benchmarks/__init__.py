"""The benchmark suite: ``make bench`` (full) and ``python -m benchmarks --smoke`` (tiny)."""
