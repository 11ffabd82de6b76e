"""Example environments and helpers used by tests, learning tests and benchmarks."""
