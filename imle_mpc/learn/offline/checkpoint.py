"""Offline-agent files: the library's model file (safetensors + JSON) of kind ``offline_agent``.

Besides the actor's and the critics' weights (the target networks and optimiser state
are not kept: a loaded agent acts and values, it does not resume training): the
agent's ``OfflineRLConfig``, its observation statistics, the task it was trained on,
and the action space it acts in, so the file alone rebuilds what the actor's box
points mean:

* ``{"kind": "raw", "low": [...], "high": [...]}``: the actuator box (``RawBox``);
* ``{"kind": "flow_latent", "flow": FILE, "flow_sha256": HEX}``: the latent box of the
  flow saved at ``FILE`` (relative to the agent's file where it lies beside it or
  below), checked by its SHA-256 on loading: a retrained flow under the same name
  would decode the same latents into other actions.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from imle_mpc.learn.config import OfflineRLConfig
from imle_mpc.learn.flow.checkpoint import load_flow, save_flow
from imle_mpc.learn.model_file import (
    CheckpointError,
    ModelKind,
    check_weights,
    read_model_file,
    write_model_file,
)
from imle_mpc.learn.offline.spaces import ActionSpace, FlowLatent, RawBox
from imle_mpc.learn.offline.td3bc import TD3BC

AGENT_FILE = "offline_agent.safetensors"
_RETRAIN = "Retrain it (TD3BC(transitions, config).fit()) and save it with save_agent."
OFFLINE_AGENT_KIND = ModelKind(
    kind="offline_agent",
    noun="offline agent",
    default_file=AGENT_FILE,
    retrain=_RETRAIN,
    missing="Save one with imle_mpc.learn.offline.save_agent(agent, space, PATH) "
    "(python bench/offline_latent.py --save DIR writes them) or pass an existing file.",
)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _space_meta(space: ActionSpace, target: Path, flow_file: str | Path | None) -> dict[str, Any]:
    if isinstance(space, RawBox):
        return {"kind": "raw", "low": space.low.tolist(), "high": space.high.tolist()}
    if isinstance(space, FlowLatent):
        if flow_file is None:  # keep the flow beside the agent
            flow_path = save_flow(space.flow, target.with_name(target.stem + ".flow.safetensors"))
        else:
            flow_path = Path(flow_file)
            if flow_path.is_dir():
                flow_path = flow_path / "flow.safetensors"
            if not flow_path.is_file():
                raise FileNotFoundError(
                    f"no flow file at {flow_path}: save the agent's flow first "
                    "(save_flow(space.flow, PATH)) or pass flow_file=None to write it beside "
                    "the agent."
                )
        relative = os.path.relpath(flow_path.resolve(), target.resolve().parent)
        where = relative if not relative.startswith("..") else str(flow_path.resolve())
        return {"kind": "flow_latent", "flow": where, "flow_sha256": _sha256(flow_path)}
    raise TypeError(
        f"save_agent knows the action spaces RawBox and FlowLatent, not {type(space).__name__}."
    )


def save_agent(
    agent: TD3BC,
    space: ActionSpace,
    path: str | Path,
    flow_file: str | Path | None = None,
    task: str | None = None,
) -> Path:
    """Write ``agent`` and a reference to its action space to ``path`` (module docstring).

    Args:
        agent: the trained agent.
        space: the box it acts in (``RawBox`` or ``FlowLatent``).
        path: a ``.safetensors`` file, or a directory (its ``offline_agent.safetensors``).
        flow_file: for a ``FlowLatent``, the file its flow is already saved in (checked to
            exist); None: the flow is written beside the agent as ``STEM.flow.safetensors``.
        task: the task it was trained on, kept in the metadata.

    Returns:
        The file written.
    """
    target = Path(path)
    if target.is_dir():
        target = target / AGENT_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    weights = {f"actor.{k}": v for k, v in agent.actor.state_dict().items()}
    weights.update({f"critics.{k}": v for k, v in agent.critics.state_dict().items()})
    meta = {
        "config": agent.config.to_dict(),
        "obs_dim": agent.obs_dim,
        "action_dim": agent.action_dim,
        "obs_mean": agent.obs_mean.tolist(),
        "obs_std": agent.obs_std.tolist(),
        "steps": agent.steps,
        "task": task,
        "action_space": _space_meta(space, target, flow_file),
    }
    return write_model_file(target, OFFLINE_AGENT_KIND, weights, meta)


def _load_space(path: Path, meta: dict[str, Any]) -> ActionSpace:
    kind = meta.get("kind")
    if kind == "raw":
        return RawBox(meta["low"], meta["high"])
    if kind == "flow_latent":
        flow_path = Path(meta["flow"])
        if not flow_path.is_absolute():
            flow_path = path.parent / flow_path
        if not flow_path.is_file():
            raise CheckpointError(
                f"{path} acts in the latent box of the flow {flow_path}, which is missing. "
                "Put the flow file back there (it is saved with the agent) or retrain both."
            )
        if _sha256(flow_path) != meta.get("flow_sha256"):
            raise CheckpointError(
                f"{path} was trained in the latent box of another flow than the one now at "
                f"{flow_path} (its SHA-256 differs): the same latents would decode into other "
                "actions. Restore that flow's file, or retrain the agent on this flow."
            )
        return FlowLatent(load_flow(flow_path))
    raise CheckpointError(f"{path}: unknown action space kind {kind!r}. {_RETRAIN}")


def load_agent(path: str | Path) -> tuple[TD3BC, ActionSpace]:
    """Load an agent saved by ``save_agent``, with its action space rebuilt.

    Each failure (missing or broken file, wrong kind or version, weights that do not fit,
    a missing or changed flow) raises ``CheckpointError`` naming the file and the fix.

    Returns:
        ``(agent, space)``: the agent acts (``agent.act``) and values (``q_values``); it
        has no dataset, so ``fit`` refuses.
    """
    p, meta, tensors = read_model_file(path, OFFLINE_AGENT_KIND)
    try:
        config = OfflineRLConfig.from_dict(meta["config"])
        agent = TD3BC.for_acting(meta["obs_mean"], meta["obs_std"], meta["action_dim"], config)
        space = _load_space(p, meta["action_space"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{p} has invalid metadata: {exc!r}. {_RETRAIN}") from exc
    if space.dim != agent.action_dim or agent.obs_dim != int(meta["obs_dim"]):
        raise CheckpointError(
            f"{p}: the agent acts in a {agent.action_dim}-d box over {meta['obs_dim']}-d "
            f"observations but its action space is {space.dim}-d. {_RETRAIN}"
        )
    expected = {f"actor.{k}": v for k, v in agent.actor.state_dict().items()}
    expected.update({f"critics.{k}": v for k, v in agent.critics.state_dict().items()})
    check_weights(p, expected, tensors, _RETRAIN)
    with torch.no_grad():
        agent.actor.load_state_dict({k[6:]: v for k, v in tensors.items() if k[:6] == "actor."})
        agent.critics.load_state_dict({k[8:]: v for k, v in tensors.items() if k[:8] == "critics."})
    agent.actor_target.load_state_dict(agent.actor.state_dict())
    agent.critics_target.load_state_dict(agent.critics.state_dict())
    agent.steps = int(meta.get("steps", 0))
    return agent, space
