"""See what the planner does: episode recordings and a browser view (viser).

* ``recording``: ``Recorder`` (an episode observer for ``run_episode``) and the
  versioned recording file (``write_recording`` / ``read_recording``): states, actions,
  the proposals of every step rolled out, their costs and feasibility, the chosen plan,
  the guard's events.
* ``geometry``: what a task looks like, as plain data: its obstacles and robot (the
  MJCF's geoms for a MuJoCo task, the kinematic chain of a Pinocchio robot, the planar
  primitives of a ``cost.Scene``) and the point a trajectory is drawn by.
* ``scene``: one step (a ``Frame``) drawn into a viser scene.
* ``server``: the viser server: a replay with a time slider, or a live episode.

Only ``scene`` and ``server`` import viser (the ``view`` extra).
"""
