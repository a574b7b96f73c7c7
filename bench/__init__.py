"""Benchmarks for Concierge: `make bench` (never part of `make test`).

`bench.run` measures the local chain's latency (cache miss, follow-up, cache hit) and the cold
import time of every Lambda handler, and prints one Markdown report.
"""
