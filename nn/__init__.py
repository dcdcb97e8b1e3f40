"""nn: the MXNet-compatible Symbol API and executor (issue 4)."""
