"""Outcome models: what the task's measures will read on the cloud after a candidate, learned from
the robot's own executed transitions (no labels, no sim state); see docs/rewards.md."""
