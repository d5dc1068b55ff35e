"""The 7-DoF Panda reaching around a ball (``panda_reach_around``).

``robot``: the model (Pinocchio), collision spheres, limits and route classifier;
``demos``: the CasADi/IPOPT demonstrations; ``task``: the ``Task`` itself.
"""

from imle_mpc.tasks.panda.task import panda_reach_around

__all__ = ["panda_reach_around"]
