"""WaveNet as a character language model, and its generation speed: naive against queues (ch5.3).

The text and split are chapter 4's (`mp.rnn.problems.CharLM`: Shakespeare's plays,
the held-out last 5%), so the bits per character compare with the LSTM of
`flags/rnn_char_lm.cfg` (2.24). Training: random windows of the training text,
Adam on the mean cross-entropy of every position (`mp.generative.wavenet`);
scoring: `wavenet.bits_per_char` on the held-out text, every character with its
full receptive field. Then `--generate` characters are drawn twice from the same
seed, by `naive_generate` (a pass over the whole sequence per character) and by
`fast_generate` (one column per layer per character, per-layer queues), timed side
by side, and compared.

    taskset -c 0 .venv/bin/python -m benchmarks.wavenet_charlm [--train_steps=2000]

Prints one JSON line: bits_per_char, training seconds, naive and fast generation
seconds, the speed-up, whether the samples were identical, and a sample.
`--train_steps=0` measures the generation speed of an untrained model only.

Measured (7 Dec 2026, one core shared with three other jobs):
  --train_steps=0 (the defaults: 438,864 parameters, 14 layers, field 256): 1,000
    characters naive 63.9 s, queues 10.4 s (6.1x), identical.
  --train_steps=600 --filters=32 --skip_channels=64 --head_units=64 --batch_size=16
    (116,048 parameters, 2.5 M training characters, 5.7 min): 2.729 bits per character
    on the 249,128 held-out characters (the LSTM of flags/rnn_char_lm.cfg: 2.239 after
    19 M characters); 1,000 characters naive 33.3 s, queues 9.4 s (3.6x), identical.
"""

import argparse
import json
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train_steps", type=int, default=2000)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--window", type=int, default=256, help="training window (characters)")
    parser.add_argument("--filters", type=int, default=64)
    parser.add_argument("--skip_channels", type=int, default=128)
    parser.add_argument("--head_units", type=int, default=128)
    parser.add_argument("--layers_per_stack", type=int, default=7, help="dilations 1..2^(n-1)")
    parser.add_argument("--stacks", type=int, default=2)
    parser.add_argument("--learning_rate", type=float, default=2e-3)
    parser.add_argument("--generate", type=int, default=1000, help="characters per sample")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--eval_chars", type=int, default=0, help="0: the whole held-out text")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import keras
    import numpy as np

    from mp.generative import wavenet
    from mp.rnn.problems import CharLM

    keras.utils.set_random_seed(args.seed)
    text = CharLM(batch_size=args.batch_size, seed=args.seed)  # chapter 4's split
    model = wavenet.WaveNet(
        text.vocab.size,
        filters=args.filters,
        skip_channels=args.skip_channels,
        head_units=args.head_units,
        dilations=wavenet.stacked_dilations(args.layers_per_stack, args.stacks),
    )
    model(np.zeros((1, args.window), np.int64))
    result = {
        "vocab_size": text.vocab.size,
        "num_parameters": int(model.count_params()),
        "receptive_field": model.receptive_field,
        "train_steps": args.train_steps,
        "batch_size": args.batch_size,
        "window": args.window,
    }
    if args.train_steps:
        model.compile(
            keras.optimizers.Adam(args.learning_rate, clipnorm=1.0),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        windows = wavenet.random_windows(text.train_ids, args.window, args.batch_size, args.seed)
        tic = time.perf_counter()
        for step in range(1, args.train_steps + 1):
            batch = next(windows)
            loss = model.train_on_batch(batch, batch)
            if step % 200 == 0:
                print(f"step {step}: {float(loss) / np.log(2.0):.3f} bits/char", flush=True)
        result["train_seconds"] = round(time.perf_counter() - tic, 1)
        held_out = text.test_ids[: args.eval_chars or None]
        bits, count = wavenet.bits_per_char(model, held_out, window=4 * model.receptive_field)
        result |= {"bits_per_char": round(bits, 4), "chars_scored": count}

    prompt = text.vocab.encode("ROMEO:")
    options = dict(seed=args.seed, temperature=args.temperature, prompt=prompt)
    wavenet.fast_generate(model, 1, 8, **options)  # trace the step once
    tic = time.perf_counter()
    naive = wavenet.naive_generate(model, 1, args.generate, **options)
    naive_seconds = time.perf_counter() - tic
    tic = time.perf_counter()
    fast = wavenet.fast_generate(model, 1, args.generate, **options)
    fast_seconds = time.perf_counter() - tic
    result |= {
        "generated_chars": args.generate,
        "naive_seconds": round(naive_seconds, 2),
        "fast_seconds": round(fast_seconds, 2),
        "speedup": round(naive_seconds / fast_seconds, 1),
        "identical": bool(np.array_equal(naive, fast)),
        "sample": text.vocab.decode(fast[0]),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
