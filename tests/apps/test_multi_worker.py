"""Two worker processes on this machine (`--strategy=multi_worker`, TF_CONFIG) train as one.

The run is stopped by SIGTERM to both workers, restarted, and ends where one process with
the same global batch ends: same step, same loss, same weights (float32 tolerance). Only the
chief writes to `--model_dir`.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARGS = [
    "--hidden_units=16",
    "--batch_size=32",
    "--train_steps=40",
    "--log_every=5",
    "--checkpoint_every=10",
    "--deterministic",
]


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_workers(model_dir, ports):
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    workers = []
    for index in range(len(ports)):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "apps.train_mlp", *ARGS, "--strategy=multi_worker",
                 f"--model_dir={model_dir}"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return workers


def _finish(workers):
    outs = [w.communicate(timeout=300) for w in workers]
    return [w.returncode for w in workers], [err for _, err in outs]


def test_two_workers_equal_one_process_and_resume_after_sigterm(tmp_path):
    model_dir = tmp_path / "workers"
    workers = _start_workers(model_dir, _free_ports(2))
    # SIGTERM both once the chief has saved its first checkpoint (step 10).
    deadline = time.time() + 240
    while not (model_dir / "ckpt" / "ckpt-10.index").exists():
        assert time.time() < deadline and all(w.poll() is None for w in workers)
        time.sleep(0.05)
    for w in workers:
        w.send_signal(signal.SIGTERM)
    codes, errors = _finish(workers)
    if codes == [0, 0]:  # finished before the signal landed: nothing left to resume
        resumed_from = None
    else:
        assert codes == [143, 143], errors
        for err in errors:
            assert "interrupted: SIGTERM" in err and "Traceback" not in err, err
        workers = _start_workers(model_dir, _free_ports(2))  # restart: resume from the chief's
        codes, errors = _finish(workers)
        assert codes == [0, 0], errors
        resumed_from = json.loads((model_dir / "metrics.json").read_text())["resumed_from_step"]
        assert resumed_from is not None and 10 <= resumed_from < 40
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["global_step"] == 40 and metrics["num_replicas"] == 2
    assert not [n for n in os.listdir(model_dir) if n.startswith(".worker_")]

    single = tmp_path / "single"
    out = subprocess.run(
        [sys.executable, "-m", "apps.train_mlp", *ARGS, f"--model_dir={single}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    reference = json.loads((single / "metrics.json").read_text())
    for key in ("train_loss", "test_loss", "test_accuracy"):
        np.testing.assert_allclose(metrics[key], reference[key], rtol=1e-4, err_msg=key)
    ours = keras.saving.load_model(model_dir / "model.keras").get_weights()
    theirs = keras.saving.load_model(single / "model.keras").get_weights()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
