"""The robot client against a bare controller socket in this process (real sockets)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from imle_mpc.bridge.robot_client import BridgeRefusedError, RobotClient
from imle_mpc.bridge.schema import ErrorMessage, StateMessage, action_message, decode, encode
from imle_mpc.bridge.transport import ControllerSocket

TIMEOUT = 0.2


@pytest.fixture
def link() -> Iterator[tuple[ControllerSocket, RobotClient]]:
    server = ControllerSocket()
    client = RobotClient(4, 2, server.port, action_timeout=TIMEOUT)
    try:
        yield server, client
    finally:
        client.close()
        server.close()


def _state(server: ControllerSocket, client: RobotClient) -> tuple[bytes, StateMessage]:
    """Send a state from the client; the server's copy of it and who sent it."""
    end = time.monotonic() + 5
    while time.monotonic() < end:
        client.send_state(np.arange(4.0))
        if server.poll(0.1):
            peer, parts = server.receive_all()[-1]
            message = decode(parts[0])
            assert isinstance(message, StateMessage)
            return peer, message
    raise AssertionError("no state arrived")


def _answer(server: ControllerSocket, peer: bytes, state: StateMessage, **change: object) -> None:
    fields: dict[str, object] = {
        "robot": "robot", "seq": 1, "t": 0.0, "state_seq": state.seq, "state_t": state.t,
        "stop": False, "u": np.array([0.5, -0.5]),
    }  # fmt: skip
    fields.update(change)
    assert server.send(peer, encode(action_message(**fields)))


def _settle(client: RobotClient) -> None:
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        client.receive(wait=0.02)


def test_a_valid_action_holds_for_the_timeout_then_the_robot_is_on_its_own(
    link: tuple[ControllerSocket, RobotClient],
) -> None:
    server, client = link
    peer, state = _state(server, client)
    assert state.session == client.session and peer == client.session.encode()
    _answer(server, peer, state)
    client.receive(wait=1.0)
    np.testing.assert_array_equal(client.command(), [0.5, -0.5])
    assert client.round_trips and client.round_trips[-1] < 1.0
    time.sleep(TIMEOUT * 1.5)
    assert client.command() is None  # no new action in time: brake


def test_stale_foreign_and_wrong_sized_actions_are_refused(
    link: tuple[ControllerSocket, RobotClient],
) -> None:
    server, client = link
    peer, state = _state(server, client)
    time.sleep(TIMEOUT * 1.5)
    _answer(server, peer, state)  # planned on a state older than the timeout
    _answer(server, peer, state, robot="other")
    _answer(server, peer, state, u=np.zeros(3))
    _answer(server, peer, state, state_seq=10_000)  # a state this client never sent
    _settle(client)
    assert client.latest is None and client.command() is None
    assert client.refusals.counts == {"stale": 2, "other robot": 1, "size": 1}
    # The guard's stop is planned on no state (state_seq 0): taken.
    _answer(server, peer, state, state_seq=0, state_t=0.0, stop=True)
    _settle(client)
    assert client.latest is not None and client.latest.stop


def test_a_refusal_from_the_controller_raises_with_its_reason(
    link: tuple[ControllerSocket, RobotClient],
) -> None:
    server, client = link
    peer, _ = _state(server, client)
    assert server.send(peer, encode(ErrorMessage("the peer speaks 'imle_mpc.bridge/2'")))
    with pytest.raises(BridgeRefusedError, match=r"refused robot 'robot'.*bridge/2"):
        for _ in range(50):
            client.receive(wait=0.02)
