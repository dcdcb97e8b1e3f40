"""``mx.builtin_symbols``: the GraphLab-era networks and MXNet's example networks (issue 6)."""
