"""Background jobs: the same functions run in-process or on arq workers."""
