"""The contracts: the HTTP body, the state passed between steps, and what models return."""
