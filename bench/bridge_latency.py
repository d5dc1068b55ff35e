"""Round-trip latency of the robot bridge over loopback, with and without CURVE.

Two measurements, each with CURVE off and on:

* ``link``: the bridge's own cost. A child process serves a ``ControllerSocket``
  and answers every state with an action at once (decode, encode, send: no planner);
  this process is a ``RobotClient`` that sends a state and waits for its action.
  Rounds alternate the two settings so drift of the machine hits both alike.
* ``loop``: the whole state -> action path of `imle-mpc bridge controller` (guarded
  MPPI on ``nav_one_obstacle``) and `imle-mpc bridge robot` at 50 Hz, from the robot's
  summary: the time from sending a state to receiving the action planned on it (the
  plan included).

Reported: p50 / p99 / max per setting, the load average before and after, and the
cores other processes used meanwhile (``other_cpu_load``). On a shared machine the
tail is the other processes' (the link waits for two processes to be scheduled).

Results: ``bench/results/bridge_latency.json`` (written atomically). The last stdout
line is ``bridge_round_trip_p99_ms: X``: the link's p99 with CURVE on (the worse
setting).

    .venv/bin/python bench/bridge_latency.py                     # ~1.5 min on 2 cores
    .venv/bin/python bench/bridge_latency.py --trips 300 --rounds 2 --loop-seconds 4
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _machine import cpu_name, cpu_seconds, other_cpu_load

from imle_mpc.bridge.robot_client import RobotClient
from imle_mpc.bridge.schema import StateMessage, action_message, decode, encode
from imle_mpc.bridge.transport import ControllerSocket, load_keys, make_keys
from imle_mpc.core.io import write_json_atomic

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
NX, NU = 4, 2


def _echo(keys_dir: str | None, port_queue: Any, stop: Any) -> None:
    """Child: answer each state at once with an action naming it."""
    keys = load_keys(keys_dir, "controller") if keys_dir else None
    sock = ControllerSocket(port=0, keys=keys)
    port_queue.put(sock.port)
    u = np.zeros(NU)
    tick = 0
    try:
        while not stop.is_set():
            if not sock.poll(0.05):
                continue
            for peer, parts in sock.receive_all():
                message = decode(parts[0])
                if isinstance(message, StateMessage):
                    tick += 1
                    answer = action_message(
                        message.robot, tick, time.monotonic(), message.seq, message.t, False, u
                    )
                    sock.send(peer, encode(answer))
    finally:
        sock.close()


def _trips(client: RobotClient, n: int) -> list[float]:
    """``n`` round trips: send a state, wait for the action answering it."""
    x = np.zeros(NX)
    start = len(client.round_trips)
    for _ in range(n):
        before = len(client.round_trips)
        client.send_state(x)
        end = time.monotonic() + 1.0
        while len(client.round_trips) == before and time.monotonic() < end:
            client.receive(wait=end - time.monotonic())
    return client.round_trips[start:]


def _stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {
        "n": int(a.size),
        "p50_ms": float(np.percentile(a, 50)),
        "p99_ms": float(np.percentile(a, 99)),
        "max_ms": float(a.max()),
    }


def link(keys_dir: Path, trips: int, rounds: int) -> dict[str, Any]:
    """The link alone, CURVE off and on, ``rounds`` alternating rounds of ``trips``."""
    ctx = mp.get_context("spawn")
    out: dict[str, list[float]] = {"off": [], "on": []}
    servers = {}
    for setting in ("off", "on"):
        queue, stop = ctx.Queue(), ctx.Event()
        kdir = str(keys_dir) if setting == "on" else None
        proc = ctx.Process(target=_echo, args=(kdir, queue, stop), daemon=True)
        proc.start()
        port = queue.get(timeout=60)
        keys = load_keys(keys_dir, "robot") if setting == "on" else None
        client = RobotClient(NX, NU, port, keys=keys, action_timeout=1.0)
        _trips(client, 50)  # connect, handshake, warm up
        servers[setting] = (proc, stop, client)
    try:
        for r in range(rounds):
            for setting in ("off", "on") if r % 2 == 0 else ("on", "off"):
                client = servers[setting][2]
                out[setting] += [t * 1e3 for t in _trips(client, trips)]
    finally:
        for proc, stop, client in servers.values():
            client.close()
            stop.set()
            proc.join(timeout=10)
    return {setting: _stats(ms) for setting, ms in out.items()}


def loop(keys_dir: Path, seconds: float, tmp: Path) -> dict[str, Any]:
    """The whole bridge (controller + simulated robot processes) at 50 Hz, CURVE off and on."""
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", PYTHONPATH=str(REPO))
    cli = [sys.executable, "-m", "imle_mpc.cli", "bridge"]
    result = {}
    for setting in ("off", "on"):
        keys = ["--keys", str(keys_dir)] if setting == "on" else []
        log = tmp / f"controller_{setting}.log"
        with open(log, "w") as err:
            controller = subprocess.Popen(
                [*cli, "controller", "nav_one_obstacle", "--period", "0.02", *keys, "--json"],
                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err, text=True,
            )  # fmt: skip
        try:
            end = time.monotonic() + 180
            while "ready on" not in log.read_text():
                if time.monotonic() > end or controller.poll() is not None:
                    raise RuntimeError(f"the controller did not start:\n{log.read_text()}")
                time.sleep(0.1)
            port = log.read_text().split("ready on tcp://127.0.0.1:")[1].split()[0]
            robot = subprocess.run(
                [*cli, "robot", "nav_one_obstacle", "--port", port, "--period", "0.02",
                 "--duration", str(seconds), *keys, "--json"],
                cwd=REPO, env=env, capture_output=True, text=True, timeout=seconds + 120,
                check=True,
            )  # fmt: skip
        finally:
            controller.terminate()
            controller.wait(timeout=30)
        summary = json.loads(robot.stdout.strip().splitlines()[-1])
        result[setting] = {
            key: summary[key]
            for key in ("round_trip_ms_p50", "round_trip_ms_p99", "steps", "controller_steps",
                        "brake_steps", "violation_steps", "success")
        }  # fmt: skip
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trips", type=int, default=1000, help="round trips a round")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds")
    parser.add_argument("--loop-seconds", type=float, default=10.0, help="seconds of the loop")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    load_before = os.getloadavg()
    mark, t0 = cpu_seconds(), time.monotonic()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        make_keys(tmp / "keys")
        link_result = link(tmp / "keys", args.trips, args.rounds)
        loop_result = loop(tmp / "keys", args.loop_seconds, tmp)
    result = {
        "link": link_result,
        "loop": loop_result,
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
            "other_cpu_load": other_cpu_load(mark, time.monotonic() - t0),
        },
        "settings": {"trips": args.trips, "rounds": args.rounds, "loop_seconds": args.loop_seconds},
        "date": time.strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_json_atomic(RESULTS / "bridge_latency.json", result)
    for setting in ("off", "on"):
        s, lp = link_result[setting], loop_result[setting]
        print(
            f"CURVE {setting:3s}  link p50 {s['p50_ms']:.3f} ms  p99 {s['p99_ms']:.3f} ms  "
            f"max {s['max_ms']:.2f} ms | loop (with the plan) p50 {lp['round_trip_ms_p50']:.2f} "
            f"ms  p99 {lp['round_trip_ms_p99']:.2f} ms"
        )
    machine = result["machine"]
    print(
        f"load average before {machine['load_average_before']}, after "
        f"{machine['load_average_after']}; other processes used {machine['other_cpu_load']} "
        f"of {machine['cores']} cores"
    )
    if args.json:
        print(json.dumps(result))
    print(f"bridge_round_trip_p99_ms: {link_result['on']['p99_ms']:.3f}")


if __name__ == "__main__":
    main()
