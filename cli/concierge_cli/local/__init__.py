"""The offline runtime: the same state machine file, run in-process against emulated AWS.

Only `concierge serve`, `concierge ask` and the tests import this package; Lambda never does.
"""
