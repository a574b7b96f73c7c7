"""Safety: the local screen for injected instructions, and redaction of personal data."""
