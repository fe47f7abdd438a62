"""Every flagfile in flags/ parses against the flags of the app it is for."""

import copy
import glob
import os

import pytest
from absl import flags

from apps import train_cnn, train_mlp  # noqa: F401  (define the apps' flags)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLAGFILES = sorted(glob.glob(os.path.join(ROOT, "flags", "*.cfg")))
# Which app reads a flagfile, by its name: cnn_*.cfg / smoke_cnn.cfg -> train_cnn.
APP_FLAGS = {
    "cnn": {"model", "dropout", "dense_units"},
    "mlp": {"hidden_units", "activation", "dropout"},
}


@pytest.mark.parametrize("path", FLAGFILES, ids=os.path.basename)
def test_flagfile_parses(path):
    name = os.path.basename(path)
    kind = "cnn" if "cnn" in name else "mlp" if "mlp" in name else None
    assert kind, f"{name}: no app reads this flagfile; name it after its app"
    values = copy.deepcopy(flags.FLAGS)
    values.unparse_flags()
    argv = values.read_flags_from_files([f"--flagfile={path}"], force_gnu=False)
    values(["prog", *argv])  # raises on unknown flags and bad values
    other = set().union(*APP_FLAGS.values()) - APP_FLAGS[kind]
    used = {a.lstrip("-").split("=")[0] for a in argv}
    assert not used & other, f"{name} sets flags of another app: {used & other}"
    assert values["model_dir"].present, f"{name} should name its --model_dir"
