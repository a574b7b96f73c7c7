"""The `concierge` command and what only it uses: ingestion, the local runtime, admin commands.

Not part of the Lambda layer: nothing under layers/ imports this package.
"""
