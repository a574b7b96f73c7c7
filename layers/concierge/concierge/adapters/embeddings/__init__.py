"""The embedding port and its adapters (the semantic tier of the answer cache).

Import-light on purpose: `registry.embedder_for("offline")` loads neither boto3 nor botocore;
only a `bedrock:` spec imports the Bedrock adapter.
"""
