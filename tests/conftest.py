"""Shared test set-up: quiet TensorFlow before any test imports it; shared fixtures."""

import gc
import os
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture
def tiny_fid_cache(tmp_path, monkeypatch):
    """A cache folder for a tiny FID classifier, which the apps train there on first use.

    `mp.generative.fid.load_extractor` is patched to build the tiny classifier, so an app's
    FID path runs end to end in seconds. Returns the folder, for `fid_cache_dir`.
    """
    from mp.generative import fid

    tiny = {"filters": (2, 4), "dense_units": 8, "epochs": 1}
    real_load = fid.load_extractor
    monkeypatch.setattr(fid, "load_extractor", lambda *a, **k: real_load(*a, **k, **tiny))
    return str(tmp_path / "fid_cache")


@pytest.fixture(autouse=True)
def _float32_policy():
    """Every test starts and ends under Keras' float32 dtype policy.

    `--precision` sets the global policy for a run and `Experiment.finish` puts it back;
    a test that fails before that, or sets it itself, must not leave its layers' dtype to
    the tests after it.
    """
    yield
    keras = sys.modules.get("keras")  # a test that never imported Keras set no policy
    if keras is not None and keras.config.dtype_policy().name != "float32":
        keras.config.set_dtype_policy("float32")


@pytest.fixture(autouse=True, scope="module")
def _release_module_state():
    """After each test module: drop Keras' global state and collect what it held.

    A pytest process runs hundreds of modules; models, layers' name counters and traced
    functions that nothing uses any more are released here, not at the end of the run.
    """
    yield
    keras = sys.modules.get("keras")
    if keras is not None:
        keras.backend.clear_session()  # collects garbage itself (free_memory=True)
    else:
        gc.collect()


def _memory_mb():
    """(resident, peak resident) of this process in MB, from /proc (Linux)."""
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, kb = line.split()[:2]
                values[key] = int(kb) / 1024
    return values.get("VmRSS:", 0.0), values.get("VmHWM:", 0.0)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """With `MP_TEST_MEMORY=<file>`, appends each test's resident and peak memory to it.

    Finds which tests hold or raise the memory of a pytest process (`make test` keeps one
    process under ~3 GB): `sort -k3 -n` the file, or look where the peak column jumps.
    """
    yield
    log = os.environ.get("MP_TEST_MEMORY")
    if log and os.path.exists("/proc/self/status"):
        rss, peak = _memory_mb()
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with open(log, "a") as f:
            f.write(f"{worker} {item.nodeid} {rss:.0f} {peak:.0f}\n")
