"""On-policy fine-tuning of an exact-likelihood generative policy (GenPO).

``policy``: the invertible generative policy and its model file (torch only), and
``LatentPolicy``, what PPO needs of an exact-likelihood policy; ``flow_policy``: the
second kind, a zuko flow over one action (``learn.flow``'s network) and its file;
``bc``: their behaviour-cloning start; ``vec_env``: a ``BatchedDynamicsEnv`` as
stable-baselines3's ``VecEnv``; ``ppo``: the SB3 policy, the KL-adaptive PPO and the
resumable fine-tuning run (stable-baselines3, the ``rl`` extra); ``proposals``: the
policy rolled through the model as IMLE-MPC's proposal generator (``PolicyChunks``).
"""

from imle_mpc.learn.genpo.policy import (
    GENPO_KIND,
    POLICY_FILE,
    GenerativePolicy,
    GenPOConfig,
    entropy_estimate,
    kl_estimate,
    load_policy,
    save_policy,
)

__all__ = [
    "GENPO_KIND",
    "POLICY_FILE",
    "GenPOConfig",
    "GenerativePolicy",
    "entropy_estimate",
    "kl_estimate",
    "load_policy",
    "save_policy",
]
