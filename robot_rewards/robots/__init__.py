"""Robots: the `Robot` interface (observe, execute a primitive, home, jog) and arm descriptions."""
