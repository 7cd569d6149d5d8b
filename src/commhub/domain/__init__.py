"""Pure logic, no I/O: the rules of the contact base."""
