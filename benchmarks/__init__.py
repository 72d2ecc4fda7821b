"""Benchmarks run by hand or by `make bench`: figures for the docs, not pass/fail tests."""
