"""`concierge eval`: answer quality of the chain, per case and per variant (see eval/README.md)."""
