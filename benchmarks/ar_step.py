"""Training-step time of the Gated PixelCNN, and what its shifts cost (ch5.3).

The gated layer shifts the vertical stack down one row (and the first layer's
horizontal stack right one column). The package crops the padded tensor with
`tf.slice`; cropping with a strided slice (`x[:, :-1]`), as the package first did,
gives the same values, but on a CPU the gradient of a strided slice cost about ten
times as much. This script times one Adam step on binarised 28x28 images both ways,
interleaved, with the package's model otherwise unchanged.

    taskset -c 1 .venv/bin/python -m benchmarks.ar_step [--filters=32 --layers=8 --kernel=5]

Prints one JSON line per precision: seconds per step (median of the repeats) with the
package's shift and with the strided one, and their ratio.
"""

import argparse
import json
import statistics
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filters", type=int, default=32)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--kernel", type=int, default=5)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from mp.generative import pixelcnn

    shifts = {
        "slice": (pixelcnn._shift_down, pixelcnn._shift_right),
        "strided": (
            lambda x: tf.pad(x, [[0, 0], [1, 0], [0, 0], [0, 0]])[:, :-1],
            lambda x: tf.pad(x, [[0, 0], [0, 0], [1, 0], [0, 0]])[:, :, :-1],
        ),
    }

    def make_step(precision, shift):
        keras.mixed_precision.set_global_policy(precision)
        pixelcnn._shift_down, pixelcnn._shift_right = shifts[shift]  # read when traced
        keras.utils.set_random_seed(0)
        model = pixelcnn.make_gated_pixelcnn(
            (28, 28, 1),
            filters=args.filters,
            num_layers=args.layers,
            kernel_size=args.kernel,
            head_units=64,
        )
        optimizer = keras.optimizers.Adam(1e-3)

        @tf.function
        def step(x):
            with tf.GradientTape() as tape:
                logits = model(tf.cast(x, model.compute_dtype))
                nll = tf.nn.sigmoid_cross_entropy_with_logits(x, logits)
                loss = tf.reduce_mean(tf.reduce_sum(nll, [1, 2, 3]))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        x = tf.cast(
            tf.random.stateless_uniform([args.batch_size, 28, 28, 1], [0, 0]) < 0.3, "float32"
        )
        step(x)  # trace
        return step, x, model.count_params()

    try:
        for precision in args.precisions.split(","):
            steps = {shift: make_step(precision, shift) for shift in shifts}
            times = {shift: [] for shift in shifts}
            for _ in range(args.repeats):
                for shift, (step, x, _) in steps.items():
                    step(x).numpy()
                    tic = time.perf_counter()
                    for _ in range(args.steps):
                        loss = step(x)
                    loss.numpy()
                    times[shift].append((time.perf_counter() - tic) / args.steps)
            median = {shift: statistics.median(values) for shift, values in times.items()}
            print(
                json.dumps(
                    {
                        "precision": precision,
                        "model": f"gated p={args.filters} layers={args.layers} k={args.kernel}",
                        "parameters": steps["slice"][2],
                        "batch_size": args.batch_size,
                        "seconds_per_step": {s: round(v, 4) for s, v in median.items()},
                        "strided / slice": round(median["strided"] / median["slice"], 2),
                    }
                ),
                flush=True,
            )
    finally:
        pixelcnn._shift_down, pixelcnn._shift_right = shifts["slice"]


if __name__ == "__main__":
    main()
