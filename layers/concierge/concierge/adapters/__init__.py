"""Adapters: everything that talks to AWS, HTTP or a model. Nothing above this touches boto3."""
