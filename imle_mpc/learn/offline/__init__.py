"""Offline actor-critic (TD3+BC) on a fixed dataset, in the raw action box or a flow's latent box.

``Transitions`` is the dataset (NumPy), ``RawBox`` and ``FlowLatent`` the two action
spaces the agent can act in (both [-1, 1]^d), ``TD3BC`` the agent (torch), and
``save_agent`` / ``load_agent`` its model file (with its action space referenced). The flow's
latent box is the CNF paper's use of a flow (Akimov et al., 2022): every action the
agent can emit decodes into the support of the data.
"""

from imle_mpc.learn.config import OfflineRLConfig
from imle_mpc.learn.offline.checkpoint import OFFLINE_AGENT_KIND, load_agent, save_agent
from imle_mpc.learn.offline.spaces import ActionSpace, FlowLatent, RawBox
from imle_mpc.learn.offline.td3bc import TD3BC, OfflineHistory
from imle_mpc.learn.offline.transitions import Transitions

__all__ = [
    "OFFLINE_AGENT_KIND",
    "TD3BC",
    "ActionSpace",
    "FlowLatent",
    "OfflineHistory",
    "OfflineRLConfig",
    "RawBox",
    "Transitions",
    "load_agent",
    "save_agent",
]
