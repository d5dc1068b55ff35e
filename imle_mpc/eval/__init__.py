"""Evaluation: one episode runner, one summary, sweeps over grids, backends, reports, plots."""
