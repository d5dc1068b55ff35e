"""The bridge's messages: a versioned schema, encoded as one UTF-8 JSON object a frame.

Three kinds travel ("Robot bridge" in docs/guides/control.md draws them):

* ``state`` (robot -> controller): ``robot`` (its configured name), ``session`` (a
  random id per robot-client start: a new one is a restarted robot), ``seq`` (1, 2, ...
  within the session), ``t`` (the robot's monotonic clock, seconds), ``x`` (the state,
  ``nx`` numbers).
* ``action`` (controller -> robot): ``robot``, ``seq`` (the controller's tick),
  ``t`` (the controller's clock), ``state_seq`` / ``state_t`` (the state it was planned
  from, echoed so the robot can measure the round trip; 0 and 0.0 when it was planned
  without a fresh one), ``stop`` (the guard is stopping the robot: no valid
  state for longer than the timeout), ``u`` (``nu`` numbers).
* ``error`` (either way): ``reason``; the answer to a message that was refused (a
  schema mismatch), so the peer can say why instead of timing out.

Every message carries ``schema`` (``SCHEMA``). JSON, not a binary format: any robot
driver's language reads it with its standard library, it needs no dependency, and at the
sizes of a robot state (tens of numbers) encoding takes microseconds against a control
period of milliseconds. Numbers must be finite (JSON has no NaN; ``allow_nan`` is off both
ways), and a frame is at most ``MAX_MESSAGE_BYTES``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from imle_mpc.core.errors import InputError
from imle_mpc.core.validation import FloatArray

SCHEMA_NAME = "imle_mpc.bridge"
SCHEMA_VERSION = 1
SCHEMA = f"{SCHEMA_NAME}/{SCHEMA_VERSION}"
"""What every message's ``schema`` field must say; a peer saying anything else is refused."""
MAX_MESSAGE_BYTES = 65536
"""A frame longer than this is malformed (a state or an action is a few hundred bytes)."""


class BridgeMessageError(InputError):
    """A message the bridge refuses; the message says why and what to fix."""


class MalformedMessageError(BridgeMessageError):
    """Not a message of this schema at all: not JSON, a wrong field, a wrong size, NaN."""


class SchemaMismatchError(BridgeMessageError):
    """A well-formed message of another schema version (or another schema)."""


@dataclass(frozen=True)
class StateMessage:
    """A timestamped state, robot -> controller. ``x`` Shape=(nx,)."""

    robot: str
    session: str
    seq: int
    t: float
    x: tuple[float, ...]

    kind = "state"

    @property
    def state(self) -> FloatArray:
        """``x`` as an array, Shape=(nx,)."""
        return np.array(self.x, dtype=np.float64)


@dataclass(frozen=True)
class ActionMessage:
    """An action, controller -> robot. ``u`` Shape=(nu,)."""

    robot: str
    seq: int
    t: float
    state_seq: int
    state_t: float
    stop: bool
    u: tuple[float, ...]

    kind = "action"

    @property
    def action(self) -> FloatArray:
        """``u`` as an array, Shape=(nu,)."""
        return np.array(self.u, dtype=np.float64)


@dataclass(frozen=True)
class ErrorMessage:
    """A refusal, either way: why the peer's message was not accepted."""

    reason: str

    kind = "error"


Message = StateMessage | ActionMessage | ErrorMessage
_KINDS: dict[str, type[Any]] = {
    "state": StateMessage,
    "action": ActionMessage,
    "error": ErrorMessage,
}
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "robot": (str,),
    "session": (str,),
    "reason": (str,),
    "seq": (int,),
    "state_seq": (int,),
    "t": (int, float),
    "state_t": (int, float),
    "stop": (bool,),
    "x": (list,),
    "u": (list,),
}


def state_message(robot: str, session: str, seq: int, t: float, x: FloatArray) -> StateMessage:
    """A state message from an array ``x`` Shape=(nx,)."""
    return StateMessage(robot, session, int(seq), float(t), _numbers(x))


def action_message(
    robot: str, seq: int, t: float, state_seq: int, state_t: float, stop: bool, u: FloatArray
) -> ActionMessage:
    """An action message from an array ``u`` Shape=(nu,)."""
    return ActionMessage(
        robot, int(seq), float(t), int(state_seq), float(state_t), stop, _numbers(u)
    )


def _numbers(values: FloatArray) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1))


def encode(message: Message) -> bytes:
    """One frame: the message's fields, its ``kind`` and ``schema``, as UTF-8 JSON.

    Raises:
        MalformedMessageError: a number is not finite (JSON cannot carry it).
    """
    body = {"schema": SCHEMA, "kind": message.kind, **asdict(message)}
    try:
        return json.dumps(body, allow_nan=False, separators=(",", ":")).encode()
    except ValueError as err:
        raise MalformedMessageError(
            f"cannot send a {message.kind} message with a non-finite number ({err}); "
            "a lost measurement is not sent, the controller's watchdog handles the gap."
        ) from None


def decode(frame: bytes) -> Message:
    """The message in ``frame``.

    Raises:
        SchemaMismatchError: a well-formed message of another schema (the message names
            both versions).
        MalformedMessageError: anything else that is not a message of ``SCHEMA``.
    """
    if len(frame) > MAX_MESSAGE_BYTES:
        raise MalformedMessageError(
            f"a frame of {len(frame)} bytes is longer than the {MAX_MESSAGE_BYTES} a message "
            "may be."
        )
    try:
        body = json.loads(frame.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as err:
        raise MalformedMessageError(f"not a UTF-8 JSON message: {err}") from None
    if not isinstance(body, dict):
        raise MalformedMessageError(f"a message is a JSON object, got {type(body).__name__}.")
    schema = body.get("schema")
    if schema != SCHEMA:
        if isinstance(schema, str) and schema.startswith(f"{SCHEMA_NAME}/"):
            raise SchemaMismatchError(
                f"the peer speaks {schema!r}, this side {SCHEMA!r}: run the same imle_mpc "
                "bridge schema version on both sides (docs/guides/control.md, Robot bridge, "
                "lists what changed)."
            )
        raise MalformedMessageError(
            f"not an {SCHEMA_NAME} message (schema field {schema!r}, expected {SCHEMA!r})."
        )
    kind = body.get("kind")
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise MalformedMessageError(f"unknown message kind {kind!r}; known: {sorted(_KINDS)}.")
    names = [f for f in cls.__dataclass_fields__ if f != "kind"]
    extra = set(body) - {"schema", "kind", *names}
    missing = [n for n in names if n not in body]
    if missing or extra:
        raise MalformedMessageError(
            f"a {kind} message has the fields {names}; missing {missing}, unknown {sorted(extra)}."
        )
    values = {n: _checked(str(kind), n, body[n]) for n in names}
    message: Message = cls(**values)
    return message


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


def _checked(kind: str, name: str, value: Any) -> Any:
    """The field's value, checked for its type; lists of numbers become tuples of floats."""
    types = _FIELD_TYPES[name]
    # bool is an int in Python: a seq of True is a wrong field, not 1.
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise MalformedMessageError(
            f"field {name!r} of a {kind} message must be {'/'.join(t.__name__ for t in types)}, "
            f"got {type(value).__name__}."
        )
    if isinstance(value, list):
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            raise MalformedMessageError(f"field {name!r} of a {kind} message must be numbers.")
        value = tuple(float(v) for v in value)
        if not all(math.isfinite(v) for v in value):
            raise MalformedMessageError(f"field {name!r} of a {kind} message is not finite.")
    elif isinstance(value, float) and not math.isfinite(value):
        raise MalformedMessageError(f"field {name!r} of a {kind} message is not finite.")
    return value
