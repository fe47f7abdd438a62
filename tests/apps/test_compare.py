"""apps.compare: one run per value of a flag, a figure and a table."""

import json

import keras
import pytest

from apps import compare, runner, train_mlp
from mp.training import optimizers
from tests.apps import cli

BASE = dict(
    dataset="digits",
    hidden_units=("32",),
    batch_size=32,
    train_steps=60,
    log_every=20,
    eval_every=20,
    optimizer="momentum",
    learning_rate=0.05,
    progress=False,
)


def test_zero_init_stays_at_chance_while_xavier_learns(tmp_path):
    result = compare.run(
        str(tmp_path),
        app_module=train_mlp,
        base=BASE | {"initializer": "xavier", "log_diagnostics": True},
        flag_name="initializer",
        values=["zeros", "xavier"],
        summary_metric="dead_relu_fraction",
        export=str(tmp_path / "docs" / "init"),
    )
    runs = result["runs"]
    assert runs["zeros"]["test_accuracy"] < 0.2  # 10 classes: chance is 0.1
    assert runs["xavier"]["test_accuracy"] > 0.8
    # ReLU units of an all-zero network output 0 for every input: all of them are dead.
    assert runs["zeros"]["dead_relu_fraction"] == 1.0
    for path in ("compare.png", "metrics.json", "initializer=zeros/metrics.json"):
        assert (tmp_path / path).exists(), path
    assert json.loads((tmp_path / "docs" / "init.json").read_text()) == json.loads(
        (tmp_path / "metrics.json").read_text()
    )
    assert (tmp_path / "docs" / "init.png").exists()


def test_a_diverging_value_is_recorded_not_fatal(tmp_path):
    result = compare.run(
        str(tmp_path),
        app_module=train_mlp,
        base=BASE | {"optimizer": "sgd"},
        flag_name="learning_rate",
        values=["1e12", "0.05"],
        parse=float,
    )
    assert "became" in result["runs"]["1e12"]["diverged"]
    assert result["runs"]["0.05"]["test_accuracy"] > 0.5


def test_bad_sweeps_fail_before_any_run(tmp_path):
    with pytest.raises(ValueError, match="name=value1,value2"):
        compare.parse_sweep("optimizer")
    assert compare.parse_sweep("optimizer=sgd, adam") == ("optimizer", ["sgd", "adam"])
    with pytest.raises(ValueError, match="not a flag of"):
        compare.run(str(tmp_path), app_module=train_mlp, base=BASE, flag_name="nope", values=["1"])
    assert not any(tmp_path.iterdir())


def test_optimizer_impl_picks_ours_or_keras():
    """What flags/compare_optimizers.cfg sweeps with --optimizer_impl=mp: our update rules."""

    def optimizer(impl):
        shared = {"optimizer": "nesterov", "optimizer_impl": impl, "learning_rate": 0.1}
        run = runner.Experiment(train_mlp.APP, train_mlp.APP.config(shared), progress=False)
        return run.optimizer(train_steps=10)()

    assert isinstance(optimizer("mp"), optimizers.Nesterov)
    keras_one = optimizer("keras")
    assert type(keras_one) is keras.optimizers.SGD and keras_one.nesterov


def test_smoke_flagfile_subprocess(tmp_path, capfd):
    """The sweep in a process of its own; its replay and a bad sweep in this one."""
    out = cli.in_subprocess(
        "compare", "--flagfile=flags/smoke_compare.cfg", f"--model_dir={tmp_path}"
    )
    assert out.returncode == 0, out.stderr
    table = json.loads((tmp_path / "metrics.json").read_text())
    assert table["sweep"] == "optimizer" and set(table["runs"]) == {"sgd", "adam"}
    assert (tmp_path / "compare.png").exists()
    # The sweep's flags.cfg replays it: every run resumes, finished, with the same table.
    flags_cfg = (tmp_path / "flags.cfg").read_text()
    assert "--app=train_mlp" in flags_cfg and "--sweep=optimizer=sgd,adam" in flags_cfg
    replay = cli.in_process(capfd, "compare", f"--flagfile={tmp_path}/flags.cfg")
    assert replay.returncode == 0, replay.stderr
    again = json.loads((tmp_path / "metrics.json").read_text())
    for value in ("sgd", "adam"):
        assert again["runs"][value]["test_accuracy"] == table["runs"][value]["test_accuracy"]
    bad = cli.in_process(
        capfd, "compare", "--sweep=optimizer=sgd,lbfgs", f"--model_dir={tmp_path}/bad"
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "lbfgs" in bad.stderr
    assert not (tmp_path / "bad").exists()
