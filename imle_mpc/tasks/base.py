"""What a task is: a model, a cost, constraints, a start, a success test and its hooks.

A task is data; any planner can be pointed at it. One module per task family
builds them (``classic``, ``navigation``, ``arm``, ``panda``); ``registry`` names them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imle_mpc.core.errors import InputError
from imle_mpc.core.protocols import Constraint, Dynamics
from imle_mpc.core.validation import FloatArray
from imle_mpc.learn.demos import DemoDataset
from imle_mpc.loop.faults import FaultConfig
from imle_mpc.loop.plant import Plant

DATA_DIR = Path(__file__).resolve().parent / "data"
"""Where the shipped demonstrations and generators live."""


def wrap_angle(angle: FloatArray | float) -> Any:
    """Wrap angles to [-pi, pi)."""
    return (np.asarray(angle) + np.pi) % (2.0 * np.pi) - np.pi


@dataclass(frozen=True)
class PlannerHints:
    """Planner settings known to work for a task (a starting point, not a limit).

    Attributes:
        num_samples, horizon, noise_sigma, temperature: for the sampling planners.
        policy_lookahead: for IMLE-MPC, steps of the generator's own continuation
            past each candidate whose cost is added (``IMLEMPCConfig.cost_to_go_steps``;
            0 = none). Tasks whose greedy goal cost has a dead end need it.
    """

    num_samples: int = 256
    horizon: int = 30
    noise_sigma: float | tuple[float, ...] = 1.0
    temperature: float = 1.0
    policy_lookahead: int = 0


@dataclass(frozen=True)
class Routes:
    """The distinct correct ways (modes) of a task, and how to tell which one a path took.

    Attributes:
        names: the route labels.
        classify: ``fn(states Shape=(T, nx)) -> label``; a label outside ``names``
            (e.g. ``none``, ``through``) says the path took none of them.
    """

    names: tuple[str, ...]
    classify: Callable[[FloatArray], str]


@dataclass(frozen=True)
class Demonstrations:
    """How a task's demonstrations are made, and the files shipped for it.

    Attributes:
        generate: the recipe, ``fn(task, num_demos, seed) -> DemoDataset`` (a
            scripted expert, ``imle_mpc.tasks.experts.ScriptedDemos``, or an optimiser).
        num_demos: demonstrations in the shipped dataset.
        seed: seed of the shipped dataset.
        dataset_file: the shipped dataset's file name in ``DATA_DIR`` (None: none shipped).
        generator_file: the shipped generator's file name in ``DATA_DIR`` (None: none shipped).
        rebuild: the command that rebuilds the shipped files (named in error messages).
        quick: the recipe runs in seconds (``write_default_datasets`` reruns only these;
            an optimiser's takes minutes and has its own command).
    """

    generate: Callable[[Task, int, int], DemoDataset]
    num_demos: int
    seed: int = 0
    dataset_file: str | None = None
    generator_file: str | None = None
    rebuild: str = "python -m imle_mpc.tasks.shipped"
    quick: bool = True


@dataclass(frozen=True)
class Refinement:
    """A setting where a frozen base controller is short of the task: residual refinement's.

    The plant differs from the demonstrations (``faults``: a heavier block, more
    friction) or the task asks for more than they show (``success``: a tighter
    tolerance). ``imle-mpc refine`` learns a residual in it and ``imle-mpc eval
    --setting NAME`` measures the base alone in it.

    Attributes:
        name: the setting's name (``--setting``).
        description: what differs, in a sentence.
        faults: the plant's faults in this setting (all off: the nominal plant).
        success: a stricter success test, ``fn(states Shape=(T+1, nx)) -> bool``
            (None: the task's).
    """

    name: str
    description: str
    faults: FaultConfig = field(default_factory=FaultConfig)
    success: Callable[[FloatArray], bool] | None = None

    def apply(self, task: Task) -> Task:
        """``task`` judged by this setting's success test (the plant's faults are separate)."""
        return task if self.success is None else dataclasses.replace(task, success=self.success)


@dataclass(frozen=True)
class Task:
    """A control problem.

    Attributes:
        name: registry name.
        dynamics: the planner's model (and, by default, the simulated plant).
        cost: ``CostSum`` or ``fn(X, U) -> (K,)``.
        constraints: hard constraints (violation > 0 rejects a sample).
        initial_state: start state, Shape=(nx,).
        steps: episode length in control steps.
        success: ``fn(states Shape=(T+1, nx)) -> bool``.
        hints: planner settings that work.
        scene: obstacles, for plots and collision counts (``cost.Scene`` or None).
        goal: goal position in the plane, for plots (None if not planar).
        safety_constraints: the limits the robot must never cross, judged on the
            executed trajectory (e.g. obstacles with zero margin). ``None``:
            the planner's ``constraints``. The planner's margins are the buffer
            between the two.
        velocity_dims: state entries that are velocities (for the guard's brake).
        faults: the fault magnitudes the guard is meant to keep this task safe
            under (``imle_mpc.loop.faults.FaultConfig``; ``None``: not stated).
        routes: the task's modes and their classifier (``Routes``; None: one way).
        clearance: ``fn(states Shape=(T, nx)) -> float``, the smallest signed
            distance of a trajectory to the obstacles, over its states and the
            straight path between consecutive ones. None: from ``scene``
            (``Scene.path_distances``), if any.
        demos: how demonstrations are made and what ships (``Demonstrations``;
            None: no learned planner for this task without your own generator).
        plant: ``fn() -> Plant``, the plant an episode runs on (``run_episode`` makes
            one per episode and resets it with the episode's seed, so the start comes
            from the plant); None: ``DynamicsEnv(dynamics, initial_state)``, the model
            itself. A Gymnasium task's plant is the environment
            (``imle_mpc.loop.plant.MujocoEnvPlant``); its ``terminated`` fails the episode.
        refinements: settings where a frozen base is short and a residual is learned
            (``Refinement``; the first is the default one).
    """

    name: str
    dynamics: Dynamics
    cost: Any
    constraints: Sequence[Constraint]
    initial_state: FloatArray
    steps: int
    success: Callable[[FloatArray], bool]
    hints: PlannerHints = field(default_factory=PlannerHints)
    scene: Any = None
    goal: tuple[float, float] | None = None
    safety_constraints: Sequence[Constraint] | None = None
    velocity_dims: tuple[int, ...] = ()
    faults: FaultConfig | None = None
    routes: Routes | None = None
    clearance: Callable[[FloatArray], float] | None = None
    demos: Demonstrations | None = None
    plant: Callable[[], Plant] | None = None
    refinements: tuple[Refinement, ...] = ()

    @property
    def safety(self) -> Sequence[Constraint]:
        """The constraints an executed trajectory is judged by (see ``safety_constraints``)."""
        return self.constraints if self.safety_constraints is None else self.safety_constraints

    @property
    def route_names(self) -> tuple[str, ...]:
        """The route labels (empty for a task with one way)."""
        return () if self.routes is None else self.routes.names

    def route_of(self, states: FloatArray) -> str:
        """The route a trajectory took, Shape=(T, nx) -> label.

        Raises:
            InputError: the task has no routes.
        """
        if self.routes is None:
            raise InputError(f"task {self.name!r} has no routes (Task.routes is None).")
        return self.routes.classify(np.asarray(states, dtype=np.float64))

    def min_clearance(self, states: FloatArray) -> float:
        """Smallest signed distance of a trajectory Shape=(T, nx) to the obstacles (nan: none).

        Over the states and the straight path between consecutive ones (the swept path).
        """
        s = np.asarray(states, dtype=np.float64)
        if self.clearance is not None:
            return float(self.clearance(s))
        if self.scene is not None:
            return float(self.scene.path_distances(s[None])[0])
        return float("nan")

    def refinement(self, name: str | None = None) -> Refinement:
        """The refinement setting ``name`` (None: the task's first).

        Raises:
            InputError: the task has none, or none of that name (the message lists them).
        """
        names = [r.name for r in self.refinements]
        if not names:
            raise InputError(
                f"task {self.name!r} states no refinement setting (Task.refinements is empty); "
                "add a Refinement with the plant's faults or a stricter success test."
            )
        if name is None:
            return self.refinements[0]
        if name not in names:
            raise InputError(
                f"task {self.name!r} has no refinement setting {name!r}; it has {names}."
            )
        return self.refinements[names.index(name)]

    def _demos(self) -> Demonstrations:
        if self.demos is None:
            raise InputError(
                f"task {self.name!r} has no demonstrations (Task.demos is None); train a "
                "generator on your own with `imle-mpc train --data your.npz`."
            )
        return self.demos

    def generate_demonstrations(
        self, num_demos: int | None = None, seed: int | None = None
    ) -> DemoDataset:
        """Demonstrations from the task's recipe (default: the shipped size and seed)."""
        demos = self._demos()
        n = demos.num_demos if num_demos is None else num_demos
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"num_demos must be an integer >= 1, got {n!r}.")
        return demos.generate(self, int(n), demos.seed if seed is None else int(seed))

    @property
    def dataset_path(self) -> Path:
        """The shipped demonstrations' file (it may be absent)."""
        demos = self._demos()
        if demos.dataset_file is None:
            raise InputError(f"no shipped dataset for task {self.name!r}.")
        return DATA_DIR / demos.dataset_file

    @property
    def generator_path(self) -> Path:
        """The shipped generator's file (it may be absent)."""
        demos = self._demos()
        if demos.generator_file is None:
            raise InputError(f"no shipped generator for task {self.name!r}.")
        return DATA_DIR / demos.generator_file

    def load_demonstrations(self) -> DemoDataset:
        """The shipped demonstrations."""
        return DemoDataset.load(self.dataset_path)

    def load_generator(self, path: str | Path | None = None) -> Any:
        """The task's shipped generator, or the one at ``path`` (``imle-mpc train --out``).

        Raises:
            FileNotFoundError: no such file, with the command that trains one.
            InputError: the task ships none, or the generator was trained for another
                model (dt, observation size or actuator box differ from ``dynamics``).
        """
        # torch is imported only when a generator is asked for.
        from imle_mpc.learn.imle import load_generator

        if path is None and (self.demos is None or self.demos.generator_file is None):
            raise InputError(
                f"task {self.name!r} ships no generator; train one with `imle-mpc train "
                "--data your_demos.npz --out DIR` and pass --generator DIR."
            )
        file = Path(path) if path is not None else self.generator_path
        if file.is_dir():
            file = file / "generator.safetensors"
        if not file.is_file():
            raise FileNotFoundError(
                f"no generator for task {self.name!r} at {file}. Train one with "
                f"`imle-mpc train --task {self.name} --out DIR` and pass --generator DIR."
            )
        generator = load_generator(file)
        # A generator trained at another dt, on other observations or another actuator
        # box proposes nonsense for this model: refuse it here, naming both values.
        generator.check_fits(self.dynamics, where=f"the generator {file}")
        return generator

    def load_flow(self, path: str | Path) -> Any:
        """The flow at ``path`` (``imle-mpc train --model flow --out DIR``), checked against
        this task's model.

        Raises:
            CheckpointError: no readable flow there (the message says how to train one).
            InputError: the flow was trained for another model (dt, observation size or
                actuator box differ from ``dynamics``), naming both values.
        """
        # torch and zuko are imported only when a flow is asked for.
        from imle_mpc.learn.flow import load_flow

        flow = load_flow(path)
        flow.check_fits(self.dynamics, where=f"the flow {path}")
        return flow
