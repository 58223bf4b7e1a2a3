"""Primitive -> Cartesian waypoints -> IK -> timed joint trajectories, and the checks before execution."""
