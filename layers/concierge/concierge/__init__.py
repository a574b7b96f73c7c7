"""Concierge: a serverless RAG chat backend. The shared package of every Lambda step."""

__version__ = "0.1.0"
