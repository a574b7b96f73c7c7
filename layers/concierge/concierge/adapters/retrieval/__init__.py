"""The retriever port and its backends."""
