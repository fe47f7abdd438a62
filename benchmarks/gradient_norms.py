"""Makes docs/ch4_gradient_norms.png and docs/ch4_gradient_norms.json (the README's ch4.2 figure).

    python -m benchmarks.gradient_norms [--train_steps=1000] [--out_dir=docs]

Left: ||dL/dh_t|| of freshly initialised cells on T = 100 random inputs (loss: the
default random projection of h_T of `mp.rnn.tbptt.gradient_norms`). Right: the same
after `--train_steps` Adam steps on the adding problem at T = 100 (loss: the model's own
squared error). The measurements are `mp.rnn.vanishing`'s. About 2-3 minutes on 2 CPU
cores.

Course: ch4.2 Vanishing gradients problem, ch4.3 Long Short Term Memory (LSTM).
"""

import json
import os

from absl import app, flags

flags.DEFINE_integer("train_steps", 1000, "Adam steps on the adding problem.", lower_bound=1)
flags.DEFINE_string("out_dir", "docs", "Where ch4_gradient_norms.png and .json go.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from mp.rnn import vanishing
    from mp.rnn.data import ADDING_BASELINE_MSE

    initial = vanishing.initial_curves()
    trained = vanishing.trained_curves(FLAGS.train_steps)
    for name, mse in trained.test_mse.items():
        seconds = trained.train_seconds[name]
        print(name, "test MSE", mse, "train seconds", round(seconds, 1), flush=True)
    steps, units, batch = FLAGS.train_steps, vanishing.UNITS, vanishing.BATCH
    out = {
        "command": f"python -m benchmarks.gradient_norms --train_steps={steps}",
        "seq_len": vanishing.SEQ_LEN,
        "units": units,
        "note": "norm 0.0 = below the float32 range (drawn as a gap)",
        "init": {
            "inputs": f"N(0, 1), [{batch}, {vanishing.SEQ_LEN}, 2]",
            "loss": "default fixed random projection of h_T",
            "eigenvalues": initial.eigenvalues,
            "curves": initial.summary(),
        },
        "trained": {
            "task": f"adding problem T={vanishing.SEQ_LEN}, {steps} Adam steps "
            f"(lr 1e-2, clipnorm 1, batch {batch}), {units} units",
            "loss": "the model's squared error on 64 test sequences",
            "test_mse": trained.test_mse,
            "baseline_mse": ADDING_BASELINE_MSE,
            "train_seconds": trained.train_seconds,
            "eigenvalues": trained.eigenvalues,
            "curves": trained.summary(),
        },
    }
    os.makedirs(FLAGS.out_dir, exist_ok=True)
    vanishing.figure(initial, trained).savefig(
        os.path.join(FLAGS.out_dir, "ch4_gradient_norms.png"), dpi=100
    )
    with open(os.path.join(FLAGS.out_dir, "ch4_gradient_norms.json"), "w") as f:
        json.dump(out, f, indent=1)
    for part in ("init", "trained"):
        print(part, {k: v["first_to_last_ratio"] for k, v in out[part]["curves"].items()})


if __name__ == "__main__":
    app.run(main)
