"""Benchmarks of tfp_tnaf (not part of the test suite)."""
