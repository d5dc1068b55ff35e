"""The learned residual of Policy Decorator: its network and file (torch), its SAC training.

``ResidualActor`` (``act(observation) -> r``), ``save_residual`` and
``load_residual`` need torch only; the online training,
``imle_mpc.learn.residual.sac.train_residual``, also needs stable-baselines3
(``pip install -e ".[rl]"``) and is imported from there.
"""

from imle_mpc.learn.config import ResidualSACConfig
from imle_mpc.learn.residual.actor import (
    RESIDUAL_FILE,
    RESIDUAL_KIND,
    ResidualActor,
    ResidualNetwork,
    load_residual,
    save_residual,
)

__all__ = [
    "RESIDUAL_FILE",
    "RESIDUAL_KIND",
    "ResidualActor",
    "ResidualNetwork",
    "ResidualSACConfig",
    "load_residual",
    "save_residual",
]
