"""Dynamics models for imle_mpc: analytic Numba models (heavier backends come as extras)."""

from dynamics.cartpole import CartPole
from dynamics.pendulum import Pendulum
from dynamics.point_mass import PointMass2D
from dynamics.two_link_arm import TwoLinkArm, end_effector_position
from dynamics.unicycle import Unicycle

__all__ = [
    "CartPole",
    "Pendulum",
    "PointMass2D",
    "TwoLinkArm",
    "Unicycle",
    "end_effector_position",
]
