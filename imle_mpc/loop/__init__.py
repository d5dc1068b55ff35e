"""The closed loop: the robot side (``Robot``, plants, Gymnasium envs), the runner, faults."""
