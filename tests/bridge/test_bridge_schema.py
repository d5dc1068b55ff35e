"""The bridge's message schema, its watchdog, and the address rule (no processes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zmq

from imle_mpc.bridge.schema import (
    MAX_MESSAGE_BYTES,
    SCHEMA,
    ActionMessage,
    ErrorMessage,
    MalformedMessageError,
    SchemaMismatchError,
    StateMessage,
    action_message,
    decode,
    encode,
    state_message,
)
from imle_mpc.bridge.transport import (
    ControllerSocket,
    InsecureAddressError,
    RobotSocket,
    is_loopback,
    load_keys,
    make_keys,
)
from imle_mpc.bridge.watchdog import Watchdog

REPO = Path(__file__).resolve().parents[2]


def test_messages_round_trip() -> None:
    state = state_message("arm", "s1", 3, 12.5, np.array([1.0, -2.0, 0.5]))
    back = decode(encode(state))
    assert isinstance(back, StateMessage) and back == state
    np.testing.assert_array_equal(back.state, [1.0, -2.0, 0.5])
    action = action_message("arm", 7, 13.0, 3, 12.5, True, np.array([0.1, 0.2]))
    back_action = decode(encode(action))
    assert isinstance(back_action, ActionMessage) and back_action == action
    assert decode(encode(ErrorMessage("no"))) == ErrorMessage("no")
    assert json.loads(encode(state))["schema"] == SCHEMA


def test_another_schema_version_is_refused_by_name() -> None:
    body = json.loads(encode(state_message("r", "s", 1, 0.0, np.zeros(2))))
    body["schema"] = "imle_mpc.bridge/2"
    with pytest.raises(SchemaMismatchError, match=r"imle_mpc.bridge/2.*imle_mpc.bridge/1"):
        decode(json.dumps(body).encode())


def _state_body() -> dict[str, object]:
    return dict(json.loads(encode(state_message("r", "s", 1, 0.0, np.zeros(2)))))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"schema": "something/1"}, "not an imle_mpc.bridge message"),
        ({"kind": "command"}, "unknown message kind"),
        ({"seq": True}, "field 'seq'"),
        ({"seq": 1.5}, "field 'seq'"),
        ({"x": [1.0, "a"]}, "must be numbers"),
        ({"x": 3.0}, "field 'x'"),
        ({"robot": 5}, "field 'robot'"),
        ({"extra": 1}, "unknown"),
    ],
)
def test_malformed_messages_are_refused(change: dict[str, object], match: str) -> None:
    body = {**_state_body(), **change}
    with pytest.raises(MalformedMessageError, match=match):
        decode(json.dumps(body).encode())


def test_missing_fields_non_json_nan_and_huge_frames_are_refused() -> None:
    body = _state_body()
    del body["t"]
    with pytest.raises(MalformedMessageError, match="missing"):
        decode(json.dumps(body).encode())
    with pytest.raises(MalformedMessageError, match="JSON"):
        decode(b"\xff\x00garbage")
    with pytest.raises(MalformedMessageError, match="JSON object"):
        decode(b"[1, 2]")
    nan_text = json.dumps(_state_body()).replace('"x": [0.0, 0.0]', '"x": [NaN, 0.0]')
    with pytest.raises(MalformedMessageError):
        decode(nan_text.encode())
    with pytest.raises(MalformedMessageError, match="longer"):
        decode(b" " * (MAX_MESSAGE_BYTES + 1))
    with pytest.raises(MalformedMessageError, match="non-finite"):
        encode(state_message("r", "s", 1, 0.0, np.array([np.nan, 0.0])))


def test_watchdog_expires_after_its_timeout_and_counts_expiries() -> None:
    now = [0.0]
    dog = Watchdog(0.3, clock=lambda: now[0])
    assert dog.expired()  # nothing good yet
    dog.feed()
    now[0] = 0.3
    assert not dog.expired()
    now[0] = 0.31
    assert dog.expired() and dog.expiries == 1
    assert dog.expired() and dog.expiries == 1  # one expiry, not one per look
    dog.feed()
    assert not dog.expired()
    with pytest.raises(ValueError, match="timeout"):
        Watchdog(0.0)


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")
    assert not is_loopback("robot.lab") and not is_loopback("*")


def test_off_loopback_needs_curve_keys(tmp_path: Path) -> None:
    with pytest.raises(InsecureAddressError, match="bridge keys"):
        ControllerSocket("0.0.0.0")
    with pytest.raises(InsecureAddressError, match="--keys"):
        RobotSocket("10.1.2.3", 5555)
    make_keys(tmp_path)
    socket = ControllerSocket("0.0.0.0", 0, load_keys(tmp_path, "controller"))
    try:
        assert socket.curve and socket.port > 0
    finally:
        socket.close()
    with pytest.raises(ValueError, match="already holds"):
        make_keys(tmp_path)


def test_the_installed_libzmq_has_curve() -> None:
    assert zmq.has("curve"), f"libzmq {zmq.zmq_version()} without CURVE: the bridge needs it"


def test_keys_name_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"robot.key_secret.*imle-mpc bridge keys"):
        load_keys(tmp_path, "robot")


def test_cli_refuses_an_open_address_before_compiling() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "imle_mpc.cli", "bridge", "controller", "nav_one_obstacle",
         "--address", "0.0.0.0"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2
    assert "not the loopback address" in out.stderr and "--keys" in out.stderr
