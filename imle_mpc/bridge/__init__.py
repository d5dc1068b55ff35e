"""The robot bridge: the controller as its own process, the robot over a socket.

``schema`` (the versioned messages), ``transport`` (ZeroMQ sockets, loopback by default,
CURVE keys for anything else), ``watchdog`` (time since the last good message),
``controller`` (the guarded planner at a fixed rate), ``robot_client`` (what a robot
driver wraps), ``sim_robot`` (a task's plant as a robot). See "Robot
bridge" in docs/guides/control.md.
"""
