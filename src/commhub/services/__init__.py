"""Use cases: each takes what it needs as arguments and owns its transaction."""
