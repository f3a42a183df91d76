"""Helpers shared by the tests: small flows, autodiff Jacobians, bijector checks."""
