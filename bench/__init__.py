"""Benchmarks for Concierge: `make bench` (never part of `make test`).

`bench.run` measures the local chain's latency (cache miss, follow-up, cache hit), the cold
import time of every Lambda handler, and a replay of scripted conversations against the naive
chain (calls, cost, follow-up latency), and prints one Markdown report.
"""
