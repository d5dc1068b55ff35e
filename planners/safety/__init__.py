"""What stands between a planner and the robot: the guard, the offset estimate, a CBF filter."""
