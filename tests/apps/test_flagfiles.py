"""Every flagfile in flags/ parses, and sets only flags of the app it is for."""

import copy
import glob
import importlib
import os

import pytest
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLAGFILES = sorted(glob.glob(os.path.join(ROOT, "flags", "*.cfg")))
# A flagfile's name says which app reads it, by one of its `_`-separated words:
# cnn_*.cfg and smoke_cnn.cfg -> train_cnn.
APP_MODULES = {
    "cnn": "train_cnn",
    "mlp": "train_mlp",
    "compare": "compare",
    "fcn": "train_fcn",
    "finetune": "finetune",
    "semisupervised": "train_semisupervised",
    "multitask": "train_multitask",
    "rl": "train_rl",
    "rnn": "train_rnn",
    "gan": "train_gan",
    "vae": "train_vae",
    "ar": "train_autoregressive",  # ar_<model>_<dataset>.cfg
    "autoregressive": "train_autoregressive",  # smoke_autoregressive.cfg
    "pix2pix": "train_translation",
    "cyclegan": "train_translation",
}
# Importing every app defines every flag, so each flagfile parses in one FlagValues.
APPS = {kind: importlib.import_module(f"apps.{name}") for kind, name in APP_MODULES.items()}
COMPARE_FLAGS = {"app", "sweep", "summary_metric", "export"}


def _kind(name):
    words = os.path.splitext(name)[0].split("_")  # rl_cliff_sarsa_qlearning.cfg -> rl
    kinds = [kind for kind in APPS if kind in words]
    assert len(kinds) == 1, f"{name}: name a flagfile after the one app that reads it"
    return kinds[0]


def _app_flags(kind, argv):
    if kind != "compare":
        return set(APPS[kind].flag_values())
    app = next((a.split("=", 1)[1] for a in argv if a.startswith("--app=")), "train_mlp")
    return COMPARE_FLAGS | set(importlib.import_module(f"apps.{app}").flag_values())


@pytest.mark.parametrize("path", FLAGFILES, ids=os.path.basename)
def test_flagfile_parses(path):
    name = os.path.basename(path)
    kind = _kind(name)
    values = copy.deepcopy(flags.FLAGS)
    values.unparse_flags()
    argv = values.read_flags_from_files([f"--flagfile={path}"], force_gnu=False)
    values(["prog", *argv])  # raises on unknown flags and bad values
    used = {a.lstrip("-").split("=")[0] for a in argv}
    used = {u[2:] if u.startswith("no") and u[2:] in values else u for u in used}
    foreign = used - _app_flags(kind, argv)
    assert not foreign, f"{name} sets flags its app does not read: {foreign}"
    assert values["model_dir"].present, f"{name} should name its --model_dir"
    if kind == "compare":
        APPS["compare"].parse_sweep(values["sweep"].value)
