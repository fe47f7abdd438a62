"""Sampling speed of the PixelCNNs: the naive sampler against the band sampler (ch5.3).

Both draw the same images from the same seed (checked here on every repeat, and in
tests/generative/test_autoregressive.py); the band sampler runs each of the H * W
network passes on the rows `i - receptive_rows .. i` only. The weights do not change
the cost, so the models are untrained, built as the Fashion-MNIST flagfiles build them.

    taskset -c 1 .venv/bin/python -m benchmarks.ar_sampling [--size=28] [--repeats=2]

Prints one JSON line per model: seconds per 64-image grid, naive and band (best of
the repeats, interleaved), the speedup and whether the images were identical.
"""

import argparse
import json
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=28, help="image height and width")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--filters", type=int, default=32)
    parser.add_argument("--layers", type=int, default=5)
    args = parser.parse_args()

    import keras

    from mp.generative import pixelcnn

    keras.utils.set_random_seed(0)
    shape = (args.size, args.size, 1)
    options = dict(filters=args.filters, head_units=64)
    models = {
        "pixelcnn": pixelcnn.make_pixelcnn(shape, num_blocks=args.layers, **options),
        "gated_pixelcnn": pixelcnn.make_gated_pixelcnn(shape, num_layers=args.layers, **options),
    }
    for name, model in models.items():
        pixelcnn.fast_sample(model, 2, seed=0)  # trace once
        times = {"naive": [], "band": []}
        identical = True
        for _ in range(args.repeats):
            images = {}
            for kind, sampler in (
                ("naive", pixelcnn.naive_sample),
                ("band", pixelcnn.fast_sample),
            ):
                tic = time.perf_counter()
                images[kind] = sampler(model, args.samples, seed=1)
                times[kind].append(time.perf_counter() - tic)
            identical &= bool(np.array_equal(images["naive"], images["band"]))
        best = {kind: min(values) for kind, values in times.items()}
        print(
            json.dumps(
                {
                    "model": name,
                    "image": f"{args.size}x{args.size}",
                    "receptive_rows": model.receptive_rows,
                    "naive_seconds": round(best["naive"], 2),
                    "band_seconds": round(best["band"], 2),
                    "speedup": round(best["naive"] / best["band"], 2),
                    "identical": identical,
                    "repeats": times,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
