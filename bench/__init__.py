"""Benchmarks for Concierge: `make bench` (never part of `make test`); BENCHMARKS.md has the
method and the figures."""
