"""Dynamics models for imle_mpc: analytic Numba models (heavier backends come as extras)."""

from dynamics.pendulum import Pendulum
from dynamics.point_mass import PointMass2D

__all__ = ["Pendulum", "PointMass2D"]
