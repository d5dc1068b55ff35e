"""The CLI refuses bad option values with one line and exit 2, never a traceback.

Every numeric option has a checking type (argparse's error: ``argument --X: must be ...``);
what only a config can judge is caught at the top of ``main`` (``imle-mpc: error: ...``).
"""

from __future__ import annotations

import argparse

import pytest

from imle_mpc import cli
from imle_mpc.cli import build_parser, main

# (subcommand argv, option, bad values, what the message says). The test below checks that
# this table covers every numeric option of every subcommand.
BAD_OPTIONS = [
    (["demo"], "--episodes", ["0", "-1", "x"], "must be a positive integer"),
    (["demo"], "--samples", ["0", "-3"], "must be a positive integer"),
    (["run", "point_mass"], "--episodes", ["0"], "must be a positive integer"),
    (["run", "point_mass"], "--seed", ["-1"], "must be an integer >= 0"),
    (["run", "point_mass"], "--samples", ["0", "-3", "2.5"], "must be"),
    (["run", "point_mass"], "--ensemble", ["0", "-2", "x"], "must be a positive integer"),
    (["run", "point_mass"], "--port", ["-1", "x"], "must be an integer >= 0"),
    (["run", "point_mass"], "--max-proposals", ["0"], "must be a positive integer"),
    (["view"], "--step", ["-1"], "must be an integer >= 0"),
    (["view"], "--seed", ["-1"], "must be an integer >= 0"),
    (["view"], "--samples", ["0"], "must be a positive integer"),
    (["view"], "--steps", ["0"], "must be a positive integer"),
    (["view"], "--duration", ["0", "nan"], "must be a finite number > 0"),
    (["view"], "--port", ["-1"], "must be an integer >= 0"),
    (["view"], "--max-proposals", ["0"], "must be a positive integer"),
    *[
        (sub, option, values, message)
        for sub in (["eval"], ["sweep"])
        for option, values, message in [
            ("--episodes", ["0", "-2"], "must be a positive integer"),
            ("--seeds", ["0"], "must be a positive integer"),
            ("--seed", ["-1"], "must be an integer >= 0"),
            ("--samples", ["0", "-3"], "must be a positive integer"),
            ("--fault-scale", ["-1", "nan", "inf", "x"], "must be a"),
            ("--fault-scales", ["-0.5", "nan"], "must be a finite number"),
            ("--workers", ["0", "-1"], "must be a positive integer"),
            ("--ensemble", ["0", "1.5"], "must be a positive integer"),
        ]
    ],
    (["train"], "--epochs", ["0", "-1"], "must be a positive integer"),
    (["train"], "--lr", ["nan", "inf", "0", "-1e-3"], "must be a finite number"),
    (["train"], "--warmup", ["-1"], "must be an integer >= 0"),
    (["train"], "--horizon", ["0"], "must be a positive integer"),
    (["train"], "--obs-horizon", ["0"], "must be a positive integer"),
    (["train"], "--action-horizon", ["0"], "must be a positive integer"),
    (["train"], "--batch-size", ["0"], "must be a positive integer"),
    (["train"], "--epsilon", ["-0.1", "nan"], "must be a finite number"),
    (["train"], "--candidates", ["0"], "must be a positive integer"),
    (["train"], "--checkpoint-every", ["0"], "must be a positive integer"),
    (["train"], "--seed", ["-1"], "must be an integer >= 0"),
    (["train"], "--threads", ["-1"], "must be an integer >= 0"),
    (["train"], "--held-out", ["0", "1", "-0.2", "nan"], "must be a number in (0, 1)"),
    (["train"], "--device", ["bogus", "cuda:", "cuda:x", ""], "must be a torch device"),
    (["refine"], "--samples", ["0"], "must be a positive integer"),
    (["refine"], "--scale", ["0", "1.5", "nan", "x"], "must be a number in (0, 1]"),
    (["refine"], "--steps", ["0", "-5"], "must be a positive integer"),
    (["refine"], "--envs", ["0"], "must be a positive integer"),
    (["refine"], "--explore-steps", ["-1"], "must be an integer >= 0"),
    (["refine"], "--learning-starts", ["-1"], "must be an integer >= 0"),
    (["refine"], "--batch-size", ["0"], "must be a positive integer"),
    (["refine"], "--lr", ["0", "nan"], "must be a finite number"),
    (["refine"], "--n-steps", ["0"], "must be a positive integer"),
    (["refine"], "--eval-every", ["-1"], "must be an integer >= 0"),
    (["refine"], "--eval-episodes", ["0"], "must be a positive integer"),
    (["refine"], "--checkpoint-every", ["0"], "must be a positive integer"),
    (["refine"], "--seed", ["-1"], "must be an integer >= 0"),
    (["refine"], "--threads", ["-1"], "must be an integer >= 0"),
    (["refine"], "--device", ["bogus"], "must be a torch device"),
    (["bridge", "controller", "point_mass"], "--state-timeout", ["0", "nan"], "must be a"),
    (["bridge", "controller", "point_mass"], "--samples", ["0"], "must be a positive integer"),
    (["bridge", "controller", "point_mass"], "--seed", ["-1"], "must be an integer >= 0"),
    (["bridge", "robot", "point_mass"], "--action-timeout", ["0", "-1"], "must be a"),
    *[
        (["bridge", role, "point_mass"], option, values, message)
        for role in ("controller", "robot")
        for option, values, message in [
            ("--port", ["-1", "x"], "must be an integer >= 0"),
            ("--period", ["0", "-0.1", "nan"], "must be a finite number > 0"),
            ("--duration", ["0", "inf"], "must be a finite number > 0"),
        ]
    ],
    (["finetune"], "--steps", ["0"], "must be a positive integer"),
    (["finetune"], "--num-envs", ["0"], "must be a positive integer"),
    (["finetune"], "--bc-epochs", ["0"], "must be a positive integer"),
    (["finetune"], "--lr", ["0", "nan"], "must be a finite number"),
    (["finetune"], "--desired-kl", ["-1"], "must be"),
    (["finetune"], "--critic-lr", ["-1"], "must be"),
    (["finetune"], "--genpo-mix", ["0", "nan"], "must be a finite number > 0"),
    (["finetune"], "--genpo-min-log-scale", ["nan", "-inf"], "must be a finite number"),
    (["finetune"], "--gaussian-log-std", ["nan", "inf"], "must be a finite number"),
    (["finetune"], "--eval-every", ["-1"], "must be an integer >= 0"),
    (["finetune"], "--eval-episodes", ["0"], "must be a positive integer"),
    (["finetune"], "--checkpoint-every", ["0"], "must be a positive integer"),
    (["finetune"], "--seed", ["-1"], "must be an integer >= 0"),
    (["finetune"], "--threads", ["-1"], "must be an integer >= 0"),
    (["finetune"], "--device", ["bogus"], "must be a torch device"),
    (["data", "check", "demos.npz"], "--folds", ["0"], "must be a positive integer"),
    (["data", "check", "demos.npz"], "--epochs", ["0"], "must be a positive integer"),
    (["data", "check", "demos.npz"], "--spread", ["0", "nan"], "must be a finite number"),
    (["data", "check", "demos.npz"], "--seed", ["-1"], "must be an integer >= 0"),
    (["data", "check", "demos.npz"], "--threads", ["-1"], "must be an integer >= 0"),
]


def _prog(sub: list[str]) -> str:
    """The subcommand's name as argparse prints it (``bridge`` has roles below it)."""
    return " ".join(sub[:2] if sub[0] in ("bridge", "data") else sub[:1])


CASES = [
    pytest.param(sub, option, value, message, id=f"{_prog(sub)}{option}={value}")
    for sub, option, values, message in BAD_OPTIONS
    for value in values
]


@pytest.mark.parametrize(("sub", "option", "value", "message"), CASES)
def test_a_bad_option_value_is_one_line_and_exit_2(
    sub: list[str], option: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*sub, f"{option}={value}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"imle-mpc {_prog(sub)}: error: argument ")
    assert option in last.split(":")[2]  # argparse names --episodes/--seeds together
    assert message in last, last


def test_the_message_says_what_was_given() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"must be a positive integer, got 0$"):
        cli.positive_int("0")
    with pytest.raises(argparse.ArgumentTypeError, match=r"got -3$"):
        cli.positive_int("-3")  # the value given, not one derived from it


def _numeric_options() -> set[tuple[str, str]]:
    """(subcommand, option) of every option that takes a number or a device."""
    checking = {
        cli.positive_int,
        cli.non_negative_int,
        cli.finite_float,
        cli.positive_float,
        cli.non_negative_float,
        cli.torch_device,
        cli.unit_fraction,
    }
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found = set()
    parsers = list(sub.choices.items())
    for name, p in parsers:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):  # bridge controller|robot|keys
                parsers += [(f"{name} {role}", q) for role, q in action.choices.items()]
            assert action.type not in (int, float), (
                f"{name} {action.option_strings}: a bare int/float type lets 0, -1, nan "
                "through; use one of the checking types in imle_mpc.cli"
            )
            if action.type in checking:
                found |= {(name, opt) for opt in action.option_strings}
    return found


def test_the_table_covers_every_numeric_option() -> None:
    covered = {(_prog(sub), option) for sub, option, _, _ in BAD_OPTIONS}
    assert _numeric_options() <= covered, sorted(_numeric_options() - covered)


def test_a_config_error_behind_valid_options_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # MPPI needs two samples: a positive integer passes the option type, the config refuses.
    assert main(["run", "point_mass", "--samples", "1"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "imle-mpc: error: MPPIConfig.num_samples must be an integer >= 2, got 1."
    )


def test_learned_planners_refuse_zero_chunks_instead_of_using_the_default() -> None:
    from imle_mpc.eval.factory import make_planner
    from imle_mpc.tasks import load_task

    task = load_task("nav_one_obstacle")
    for n in (0, -3):
        with pytest.raises(ValueError, match=rf"num_samples .* must be an integer >= 1, got {n}\."):
            make_planner("imle_mpc", task, num_samples=n)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "arm_reach_around", "--risk", "cvar:0.2"], "add --ensemble M"),
        (["run", "arm_reach_around", "--ensemble", "2", "--risk", "cvar:2"], "alpha must be"),
        (["run", "arm_reach_around", "--ensemble", "2", "--risk", "median"], "use mean, worst"),
        (["run", "point_mass", "--ensemble", "2"], "states no model mismatch"),
    ],
)
def test_ensemble_options_refuse_what_cannot_run_in_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("imle-mpc: error: ") and message in last, last
