"""The bridge's sockets (ZeroMQ): who may connect, and how frames come and go.

The controller binds a ROUTER socket, the robot connects a DEALER: the robot side is
the client, it reconnects by itself when the controller restarts, and the controller
sees each connection under its own routing id (a restarted robot is a new one). Why
ZeroMQ (pyzmq) and not dora-rs: a two-process request/answer link needs no dataflow
runtime or daemon, pyzmq ships libzmq with CURVE in its wheels, and any robot driver's
language has a ZeroMQ binding.

Nobody else gets in:

* The controller binds to ``127.0.0.1`` by default. Any other address (another
  interface, ``0.0.0.0``, a host name) is refused unless CURVE keys are given
  (``InsecureAddressError``); the robot side refuses to connect to one without keys too.
* With keys (``imle-mpc bridge keys DIR`` writes a pair for each side, ``zmq.auth``
  certificates) the link is CURVE: encrypted, and the controller's ZAP handler
  (``zmq.auth.thread.ThreadAuthenticator``) admits only the configured robot's public
  key. A peer with another key never completes the handshake; it is logged
  (``imle_mpc.bridge`` logger) and counted (``ControllerSocket.refused_peers``), and the
  loop is not disturbed. The controller's own secret key never leaves its host: each
  side reads its own ``<role>.key_secret`` and the other's public ``<peer>.key``.

Sends never block the loop: a frame that cannot be queued now (no connected peer, a
full queue) is dropped and counted, because a late state or action is a wrong one.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from imle_mpc.bridge.refusals import Refusals
from imle_mpc.core.errors import InputError

LOG = logging.getLogger("imle_mpc.bridge")
LOOPBACK = "127.0.0.1"
ROLES = ("controller", "robot")
QUEUE_FRAMES = 4
"""Frames a socket queues each way; more are dropped (a backlog of states is stale)."""
RECONNECT_SECONDS = 0.05
"""How soon the robot side retries a lost connection to the controller."""


class InsecureAddressError(InputError):
    """A non-loopback address without CURVE keys: refused, the link would be open."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name or a wildcard: not known to stay on this machine
        return False


@dataclass(frozen=True)
class CurveKeys:
    """One side's CURVE keys (z85 bytes): its own pair and the peer's public key."""

    public: bytes
    secret: bytes
    peer_public: bytes


def make_keys(directory: str | Path) -> dict[str, Path]:
    """Write a CURVE key pair for each side into ``directory``.

    Files: ``controller.key`` / ``controller.key_secret`` and ``robot.key`` /
    ``robot.key_secret`` (``zmq.auth`` certificates). Copy ``controller.key`` and the
    robot's pair to the robot's host, and keep ``controller.key_secret`` on the
    controller's.

    Returns:
        role -> the secret key file.

    Raises:
        InputError: the directory holds keys already (refused, not overwritten: the
            other side would be locked out).
    """
    folder = Path(directory)
    existing = [folder / f"{r}.key_secret" for r in ROLES if (folder / f"{r}.key_secret").exists()]
    if existing:
        raise InputError(
            f"{folder} already holds bridge keys ({', '.join(map(str, existing))}); use "
            "them, or choose an empty directory for a new pair."
        )
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    for role in ROLES:
        _, secret = zmq.auth.create_certificates(str(folder), role)
        Path(secret).chmod(0o600)
        made[role] = Path(secret)
    return made


def load_keys(directory: str | Path, role: str) -> CurveKeys:
    """``role``'s keys from ``directory``: its ``<role>.key_secret``, the peer's ``.key``.

    Raises:
        InputError: a file is missing or is not a ``zmq.auth`` certificate.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}.")
    peer = ROLES[1 - ROLES.index(role)]
    folder = Path(directory)
    own_file, peer_file = folder / f"{role}.key_secret", folder / f"{peer}.key"
    for path in (own_file, peer_file):
        if not path.is_file():
            raise InputError(
                f"the {role} needs {path} (its own secret key and the {peer}'s public "
                "key); make a pair with `imle-mpc bridge keys DIR`."
            )
    try:
        public, secret = zmq.auth.load_certificate(str(own_file))
        peer_public, _ = zmq.auth.load_certificate(str(peer_file))
    except (ValueError, OSError) as err:
        raise InputError(f"cannot read the bridge keys in {folder}: {err}") from None
    if secret is None:
        raise InputError(f"{own_file} holds no secret key; it is a public certificate.")
    return CurveKeys(public=public, secret=secret, peer_public=peer_public)


def require_secure(host: str, keys: CurveKeys | None, side: str) -> None:
    """Refuse a non-loopback ``host`` without CURVE keys (``InsecureAddressError``), and
    keys on a libzmq built without CURVE (``InputError``)."""
    if keys is not None and not zmq.has("curve"):
        raise InputError(
            f"libzmq {zmq.zmq_version()} was built without CURVE, so the {side} cannot "
            "encrypt: install pyzmq from its wheel (`pip install 'pyzmq>=26'`), which "
            "bundles a libzmq with it."
        )
    if keys is None and not is_loopback(host):
        raise InsecureAddressError(
            f"the {side} would use {host!r}, which is not the loopback address, without "
            "encryption or authentication: anyone who can reach it could command the robot. "
            "Make CURVE keys with `imle-mpc bridge keys DIR` and pass --keys DIR on both "
            f"sides, or use {LOOPBACK}."
        )


def _common(socket: zmq.Socket[Any]) -> None:
    socket.setsockopt(zmq.LINGER, 0)  # closing never waits on frames nobody will take
    socket.setsockopt(zmq.SNDHWM, QUEUE_FRAMES)
    socket.setsockopt(zmq.RCVHWM, QUEUE_FRAMES)


class _OnlyTheRobot:
    """The ZAP credentials check: the configured robot's public key, nothing else.

    Runs on the authenticator's thread; the loop only reads the count.
    """

    def __init__(self, robot_public: bytes) -> None:
        self.robot_public = robot_public
        self.refusals = Refusals()

    def callback(self, domain: str, key: bytes) -> bool:
        if key == self.robot_public:
            return True
        self.refusals.refuse(
            "wrong key",
            f"a peer with CURVE public key {key.decode(errors='replace')}, not the configured "
            "robot's",
        )
        return False


class ControllerSocket:
    """The controller's bound ROUTER socket (CURVE server when keys are given).

    Args:
        host: the address to bind (``127.0.0.1`` by default; others need ``keys``).
        port: the TCP port; 0: an ephemeral one (read ``port``).
        keys: the controller's keys (``load_keys(DIR, "controller")``), or None.
    """

    def __init__(self, host: str = LOOPBACK, port: int = 0, keys: CurveKeys | None = None):
        require_secure(host, keys, "controller")
        self.context = zmq.Context()
        self._auth: ThreadAuthenticator | None = None
        self._check: _OnlyTheRobot | None = None
        self.socket = self.context.socket(zmq.ROUTER)
        _common(self.socket)
        # A frame to a routing id that is gone raises (and is counted) instead of vanishing.
        self.socket.setsockopt(zmq.ROUTER_MANDATORY, 1)
        # A robot that reconnects under its routing id takes its old connection over.
        self.socket.setsockopt(zmq.ROUTER_HANDOVER, 1)
        if keys is not None:
            self._auth = ThreadAuthenticator(self.context, log=LOG)
            self._auth.start()
            self._check = _OnlyTheRobot(keys.peer_public)
            self._auth.configure_curve_callback("*", credentials_provider=self._check)
            self.socket.curve_server = True
            self.socket.curve_publickey = keys.public
            self.socket.curve_secretkey = keys.secret
        self.curve = keys is not None
        address = f"tcp://{host}"
        try:
            if port == 0:
                self.port = self.socket.bind_to_random_port(address)
            else:
                self.socket.bind(f"{address}:{port}")
                self.port = port
        except zmq.ZMQError as err:
            self.close()
            raise InputError(f"cannot bind the controller to {address}:{port}: {err}") from None
        self.address = f"{address}:{self.port}"

    @property
    def refused_peers(self) -> int:
        """Connections refused for a wrong CURVE key since the start."""
        return 0 if self._check is None else self._check.refusals.total("wrong key")

    def poll(self, timeout_s: float) -> bool:
        """Wait at most ``timeout_s`` for a frame; whether one is there."""
        return bool(self.socket.poll(max(0, int(timeout_s * 1e3)), zmq.POLLIN))

    def receive_all(self) -> list[tuple[bytes, list[bytes]]]:
        """Every frame waiting now, as ``(routing id, message parts)``; never blocks."""
        out: list[tuple[bytes, list[bytes]]] = []
        while True:
            try:
                parts = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return out
            out.append((parts[0], parts[1:]))

    def send(self, peer: bytes, frame: bytes) -> bool:
        """Send ``frame`` to the connection ``peer``; False (dropped) if it is gone or full."""
        try:
            self.socket.send_multipart([peer, frame], zmq.NOBLOCK)
        except zmq.ZMQError:  # EHOSTUNREACH (the peer left) or EAGAIN (its queue is full)
            return False
        return True

    def close(self) -> None:
        """Close the socket, stop the authenticator, end the context."""
        self.socket.close(linger=0)
        if self._auth is not None:
            self._auth.stop()
        self.context.term()


class RobotSocket:
    """The robot side's DEALER socket, connected to the controller (CURVE client with keys).

    Args:
        host: the controller's address.
        port: the controller's port.
        keys: the robot's keys (``load_keys(DIR, "robot")``), or None (loopback only).
        routing_id: how the controller names this connection (b"": libzmq picks one); a
            reconnect under the same id is the same peer to the controller.
    """

    def __init__(
        self, host: str, port: int, keys: CurveKeys | None = None, routing_id: bytes = b""
    ) -> None:
        require_secure(host, keys, "robot")
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.DEALER)
        _common(self.socket)
        # Queue only on a connection that is up: states queued while the controller is
        # away would reach its successor stale.
        self.socket.setsockopt(zmq.IMMEDIATE, 1)
        self.socket.setsockopt(zmq.RECONNECT_IVL, int(RECONNECT_SECONDS * 1e3))
        self.socket.setsockopt(zmq.RECONNECT_IVL_MAX, int(RECONNECT_SECONDS * 1e3))
        if keys is not None:
            self.socket.curve_serverkey = keys.peer_public
            self.socket.curve_publickey = keys.public
            self.socket.curve_secretkey = keys.secret
        if routing_id:
            self.socket.setsockopt(zmq.ROUTING_ID, routing_id)
        self.curve = keys is not None
        self.address = f"tcp://{host}:{port}"
        self.socket.connect(self.address)

    def poll(self, timeout_s: float) -> bool:
        """Wait at most ``timeout_s`` for a frame; whether one is there."""
        return bool(self.socket.poll(max(0, int(timeout_s * 1e3)), zmq.POLLIN))

    def receive_all(self) -> list[list[bytes]]:
        """Every message waiting now (its parts); never blocks."""
        out: list[list[bytes]] = []
        while True:
            try:
                out.append(self.socket.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                return out

    def send(self, frame: bytes) -> bool:
        """Send ``frame``; False (dropped) when no connection is up or the queue is full."""
        try:
            self.socket.send(frame, zmq.NOBLOCK)
        except zmq.Again:
            return False
        return True

    def close(self) -> None:
        """Close the socket and end the context."""
        self.socket.close(linger=0)
        self.context.term()
