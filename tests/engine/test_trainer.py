"""Tests of the training loop: steps, checkpoints, resumption, guards, signals."""

import contextlib
import io
import math
import os
import signal

import keras
import numpy as np
import pytest
import tensorflow as tf

from mp.engine import (
    ClassificationTask,
    Interrupted,
    Task,
    Trainer,
    TrainingDiverged,
    make_schedule,
)
from mp.engine.trainer import _Progress

NUM_CLASSES = 3


def _problem(n=256, seed=0):
    """A linearly separable 3-class problem on 4x4 'images'; `seed` draws the images."""
    w = np.random.default_rng(42).normal(size=(16, NUM_CLASSES))
    x = np.random.default_rng(seed).normal(size=(n, 4, 4, 1)).astype("float32")
    y = np.argmax(x.reshape(n, 16) @ w, axis=1).astype("int32")
    return x, y


def _train_data(batch_size=32, seed=0):
    """Data as a function of the start step, the way apps resume."""
    x, y = _problem()

    def make(start_step):
        ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed)
        return ds.repeat().batch(batch_size, drop_remainder=True).skip(start_step)

    return make


def _eval_data():
    x, y = _problem(seed=1)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(100)  # 100, 100, 56: a partial batch


def _task(learning_rate=0.1, clip_norm=None):
    def model():
        keras.utils.set_random_seed(1)
        return keras.Sequential(
            [keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(NUM_CLASSES)]
        )

    return ClassificationTask(
        model, lambda: keras.optimizers.SGD(learning_rate), clip_norm=clip_norm
    )


def _weights(task):
    return [w.numpy() for w in task.model.weights]


def test_trains_and_counts_steps(tmp_path):
    trainer = Trainer(
        _task(), tmp_path, train_steps=90, log_every=20, checkpoint_every=40, progress=False
    )
    before = trainer.evaluate(_eval_data())
    result = trainer.fit(_train_data(), _eval_data())
    assert result["global_step"] == 90
    assert result["eval"]["count"] == 256
    assert result["eval"]["loss"] < 0.5 * before["loss"]
    assert result["eval"]["top1"] > 0.8
    # Chunks end at multiples of log_every and checkpoint_every, and at the end.
    assert [s for s, _ in trainer.history["train"]] == [20, 40, 60, 80, 90]
    assert [s for s, _ in trainer.history["eval"]] == [90]  # the final evaluation is recorded
    saved = sorted(int(p.rsplit("-", 1)[1]) for p in trainer.manager.checkpoints)
    assert saved == [40, 80, 90]
    assert os.listdir(tmp_path / "train") and os.listdir(tmp_path / "eval")


def test_progress_lines_go_to_the_standard_output_of_the_moment(tmp_path):
    """A notebook or `contextlib.redirect_stdout` replaces sys.stdout after import: the
    plain progress lines (not a terminal) follow it."""
    trainer = Trainer(_task(), tmp_path, train_steps=20, log_every=10, progress=True)
    with contextlib.redirect_stdout(io.StringIO()) as captured:
        trainer.fit(_train_data())
    lines = captured.getvalue().splitlines()
    assert [line.split()[:2] for line in lines] == [["step", "10/20"], ["step", "20/20"]]

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    with contextlib.redirect_stdout(Terminal()):  # a terminal gets Keras' progress bar
        assert _Progress(20, 0, True).tty and _Progress(20, 0, True).bar is not None


def test_eval_matches_numpy_and_traces_once(tmp_path):
    task = _task()
    trainer = Trainer(task, tmp_path, train_steps=1, progress=False)
    results = trainer.evaluate(_eval_data())
    trainer.evaluate(_eval_data())
    # Batches of 100, 100 and 56 share one trace (the signature has no batch size).
    (eval_fn,) = trainer._eval_fns.values()
    assert eval_fn.experimental_get_tracing_count() == 1
    x, y = _problem(seed=1)
    logits = task.model(x).numpy().astype(np.float64)
    log_z = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
    expected_loss = np.mean(log_z - logits[np.arange(len(y)), y])
    assert results["loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert results["top1"] == pytest.approx(np.mean(logits.argmax(1) == y))
    assert results["top5"] == 1.0  # 3 classes: the true class is always in the top 3


def test_resume_continues_same_steps_and_batches(tmp_path):
    straight = Trainer(
        _task(), tmp_path / "a", train_steps=60, log_every=10, checkpoint_every=30, progress=False
    )
    straight.fit(_train_data())

    first = Trainer(
        _task(), tmp_path / "b", train_steps=30, log_every=10, checkpoint_every=30, progress=False
    )
    first.fit(_train_data())
    resumed_task = _task()
    resumed = Trainer(
        resumed_task,
        tmp_path / "b",
        train_steps=60,
        log_every=10,
        checkpoint_every=30,
        progress=False,
    )
    assert resumed.resumed_from_step == 30
    result = resumed.fit(_train_data())
    assert result["global_step"] == 60 and result["resumed_from_step"] == 30
    for a, b in zip(_weights(straight.task), _weights(resumed_task)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_nan_guard_keeps_last_good_checkpoint(tmp_path):
    trainer = Trainer(
        _task(learning_rate=0.1),
        tmp_path,
        train_steps=100,
        log_every=10,
        checkpoint_every=10,
        progress=False,
    )
    trainer.fit(_train_data())  # a good checkpoint at step 100
    good = _weights(trainer.task)

    class Poisoned(ClassificationTask):
        def train_step(self, batch):
            outputs = super().train_step(batch)
            outputs["loss/total"] = outputs["loss/total"] * float("nan")
            return outputs

    task = Poisoned(_task()._model_factory, lambda: keras.optimizers.SGD(0.1))
    poisoned = Trainer(
        task, tmp_path, train_steps=200, log_every=10, checkpoint_every=10, progress=False
    )
    with pytest.raises(TrainingDiverged, match="loss/total became nan by step 110"):
        poisoned.fit(_train_data())
    assert poisoned.manager.latest_checkpoint.endswith("ckpt-100")
    check = Trainer(_task(), tmp_path, train_steps=200, progress=False)
    assert check.resumed_from_step == 100
    for a, b in zip(good, _weights(check.task)):
        np.testing.assert_array_equal(a, b)


class _Counter(Task):
    """w grows by 1 per step; eval loss (w - 3)^2 is best at step 3."""

    def build(self):
        self.model = keras.Sequential(
            [keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")]
        )
        self.w = self.model.weights[0]

    def checkpoint_items(self):
        return {"model": self.model}

    def train_step(self, batch):
        del batch
        self.w.assign_add(tf.ones_like(self.w))
        return {"loss/total": tf.reduce_sum(self.w)}

    def eval_step(self, batch):
        del batch
        return {"loss": (tf.reduce_sum(self.w) - 3.0) ** 2, "count": tf.constant(1.0)}


@pytest.mark.parametrize("in_memory", [False, True])
def test_early_stopping_restores_best_weights(tmp_path, monkeypatch, in_memory):
    monkeypatch.chdir(tmp_path)
    data = tf.data.Dataset.from_tensors(0.0).repeat()
    task = _Counter()
    trainer = Trainer(
        task,
        None if in_memory else tmp_path,
        train_steps=20,
        log_every=1,
        eval_every=1,
        early_stopping_patience=2,
        progress=False,
    )
    result = trainer.fit(data, tf.data.Dataset.from_tensors(0.0))
    # Eval losses 4, 1, 0, 1, 4: the last two do not improve on step 3.
    assert result["stopped_early"] and result["global_step"] == 5
    assert task.w.numpy().item() == 3.0
    assert result["eval"]["loss"] == 0.0
    assert bool(os.listdir(tmp_path)) is not in_memory  # in memory: nothing written


def test_in_memory_run_equals_a_run_with_a_model_dir(tmp_path, monkeypatch):
    """`model_dir=None` trains the same steps and writes nothing; a signal stops it cleanly."""
    monkeypatch.chdir(tmp_path)
    on_disk = Trainer(_task(), tmp_path / "run", train_steps=50, log_every=20, progress=False)
    in_memory = Trainer(_task(), None, train_steps=50, log_every=20, progress=False)
    results = [t.fit(_train_data(), _eval_data()) for t in (on_disk, in_memory)]
    assert results[1]["global_step"] == 50 and results[1]["resumed_from_step"] == 0
    assert results[1]["eval"] == results[0]["eval"]
    for a, b in zip(_weights(on_disk.task), _weights(in_memory.task)):
        np.testing.assert_array_equal(a, b)
    assert os.listdir(tmp_path) == ["run"]
    assert in_memory.save() is None

    def batches():
        x, y = _problem()
        os.kill(os.getpid(), signal.SIGINT)
        while True:
            yield x[:32], y[:32]

    in_memory.train_steps = 100
    with pytest.raises(Interrupted, match="SIGINT at step 60; no model_dir, so nothing was saved"):
        in_memory.fit(batches())
    assert os.listdir(tmp_path) == ["run"]
    with pytest.raises(ValueError, match="resume_from_step needs a model_dir"):
        Trainer(_task(), None, train_steps=1, resume_from_step=10)


def test_sigterm_saves_and_resumes(tmp_path):
    x, y = _problem()

    def batches():  # a Python iterator, as RL's collectors are
        for step in range(10**6):
            if step == 25:
                os.kill(os.getpid(), signal.SIGTERM)
            i = (step * 32) % 224
            yield x[i : i + 32], y[i : i + 32]

    trainer = Trainer(
        _task(), tmp_path, train_steps=100, log_every=10, checkpoint_every=1000, progress=False
    )
    with pytest.raises(Interrupted) as info:
        trainer.fit(batches())
    assert info.value.signum == signal.SIGTERM
    assert info.value.step == 30  # the chunk in flight finishes first
    assert trainer.manager.latest_checkpoint.endswith("ckpt-30")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored
    resumed = Trainer(_task(), tmp_path, train_steps=40, log_every=10, progress=False)
    assert resumed.resumed_from_step == 30
    assert resumed.fit(iter(batches()))["global_step"] == 40


def test_clip_norm_bounds_the_update(tmp_path):
    task = _task(learning_rate=1.0, clip_norm=1e-3)
    trainer = Trainer(task, tmp_path, train_steps=1, progress=False)
    before = _weights(task)
    trainer.fit(_train_data())
    change = math.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(_weights(task), before)))
    assert change == pytest.approx(1e-3, rel=1e-4)  # SGD step = lr * clipped gradient


def test_clip_norm_of_an_embedding_counts_repeated_rows_once(tmp_path):
    # Token 1 is looked up twice: the gradient holds two rows for it, which must be summed
    # before the norm (the norm of the dense gradient), not counted as separate rows.
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,), dtype="int32"), keras.layers.Embedding(4, 2)])
    model.add(keras.layers.Flatten())
    model.add(keras.layers.Dense(2))
    tokens = tf.constant([[1, 1, 2]])
    labels = tf.constant([0])
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=model(tokens))
        )
    dense = [tf.convert_to_tensor(g) for g in tape.gradient(loss, model.trainable_variables)]
    task = ClassificationTask(model, keras.optimizers.SGD(0.0), clip_norm=100.0)
    trainer = Trainer(task, tmp_path, train_steps=1, log_every=1, progress=False)
    result = trainer.fit(tf.data.Dataset.from_tensors((tokens, labels)).repeat())
    assert result["train"]["charts/grad_norm"] == pytest.approx(
        float(tf.linalg.global_norm(dense)), rel=1e-5
    )


def test_charts_are_the_first_step_of_each_chunk(tmp_path):
    """Losses are chunk means; the gradient norm (a chart) is the chunk's first step's only."""
    x, y = _problem()
    task = _task(learning_rate=0.0)  # fixed weights: each step's figures depend on its batch
    trainer = Trainer(task, None, train_steps=10, log_every=5, progress=False)
    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(32).repeat()
    trainer.fit(batches)
    model = task.model

    def loss_and_norm(i):
        with tf.GradientTape() as tape:
            logits = model(x[32 * i : 32 * i + 32])
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y[32 * i : 32 * i + 32], logits=logits)
            )
        return float(loss), float(tf.linalg.global_norm(tape.gradient(loss, model.trainable_variables)))

    figures = [loss_and_norm(i % 8) for i in range(10)]  # 256 examples: 8 batches
    for chunk, (step, outputs) in enumerate(trainer.history["train"]):
        first = 5 * chunk
        assert step == first + 5
        assert outputs["loss/total"] == pytest.approx(
            np.mean([f[0] for f in figures[first : first + 5]]), rel=1e-5
        )
        assert outputs["charts/grad_norm"] == pytest.approx(figures[first][1], rel=1e-5)
        assert outputs["charts/grad_norm"] != pytest.approx(figures[first + 1][1], rel=1e-3)


def test_jit_compile_matches_graph(tmp_path):
    plain = Trainer(_task(), tmp_path / "a", train_steps=20, log_every=10, progress=False)
    plain.fit(_train_data())
    jit = Trainer(
        _task(), tmp_path / "b", train_steps=20, log_every=10, jit_compile=True, progress=False
    )
    jit.fit(_train_data())
    for a, b in zip(_weights(plain.task), _weights(jit.task)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_run_eagerly_matches_graph(tmp_path):
    graph = Trainer(_task(), tmp_path / "a", train_steps=20, log_every=10, progress=False)
    graph.fit(_train_data())
    eager = Trainer(
        _task(), tmp_path / "b", train_steps=20, log_every=10, run_eagerly=True, progress=False
    )
    calls = []
    step = eager.task.train_step

    def counted(batch):  # a Python side effect runs every step only when eager
        calls.append(tf.executing_eagerly())
        return step(batch)

    eager.task.train_step = counted
    eager.fit(_train_data())
    assert calls == [True] * 20
    for a, b in zip(_weights(graph.task), _weights(eager.task)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_evaluates_a_second_dataset_of_another_signature(tmp_path):
    trainer = Trainer(_task(), tmp_path, train_steps=1, progress=False)
    first = trainer.evaluate(_eval_data())
    x, y = _problem(seed=1)
    # Same examples, labels as int64 and images as float64: another element spec.
    other = tf.data.Dataset.from_tensor_slices((x.astype("float64"), y.astype("int64"))).batch(64)
    second = trainer.evaluate(other.map(lambda a, b: (tf.cast(a, tf.float32), b)))
    assert len(trainer._eval_fns) == 2
    assert second["loss"] == pytest.approx(first["loss"], rel=1e-5)
    assert second["count"] == first["count"] == 256


def test_a_resumed_run_does_not_log_replayed_steps_twice(tmp_path):
    import glob

    first = Trainer(
        _task(), tmp_path, train_steps=30, log_every=10, checkpoint_every=20, progress=False
    )
    first.fit(_train_data())
    for path in glob.glob(str(tmp_path / "ckpt" / "ckpt-30.*")):
        os.remove(path)  # as if killed after logging step 30, before its checkpoint
    second = Trainer(
        _task(), tmp_path, train_steps=40, log_every=10, checkpoint_every=20, progress=False
    )
    assert second.resumed_from_step == 20
    second.fit(_train_data())
    steps = [
        event.step
        for path in glob.glob(str(tmp_path / "train" / "events.out.tfevents.*"))
        for event in tf.compat.v1.train.summary_iterator(path)
        if any(value.tag == "loss/total" for value in event.summary.value)
    ]
    assert sorted(steps) == [10, 20, 30, 40]  # step 30, replayed, is logged once


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="train_steps must be a positive integer"):
        Trainer(_task(), "/tmp/unused", train_steps=0)
    with pytest.raises(ValueError, match="Unknown strategy"):
        Trainer(_task(), "/tmp/unused", train_steps=1, strategy="tpu")
    with pytest.raises(ValueError, match="clip_norm must be positive"):
        ClassificationTask(None, None, clip_norm=-1.0)


def test_schedules_follow_their_formulas():
    cosine = make_schedule("cosine", 0.1, 100)
    assert float(cosine(50)) == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi / 2)))
    step = make_schedule("step", 0.1, 90, decay_steps=30, decay_rate=0.5)
    assert [float(step(s)) for s in (0, 31, 61)] == pytest.approx([0.1, 0.05, 0.025])
    warm = make_schedule("cosine", 0.1, 110, warmup_steps=10)
    assert float(warm(5)) == pytest.approx(0.05)  # half-way up the linear warm-up
    assert make_schedule("constant", 0.1, 10) == 0.1
    with pytest.raises(ValueError, match="Unknown lr_schedule"):
        make_schedule("linear", 0.1, 10)


class _TwoPlayers(Task):
    """A GAN-shaped task: two models, two optimizers, the second updated every other step."""

    def build(self):
        self.first = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        self.second = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        self.first_optimizer = keras.optimizers.Adam(0.01)
        self.second_optimizer = keras.optimizers.Adam(0.01)
        self.first_optimizer.build(self.first.trainable_variables)
        self.second_optimizer.build(self.second.trainable_variables)

    def checkpoint_items(self):
        return {
            "first": self.first,
            "second": self.second,
            "first_optimizer": self.first_optimizer,
            "second_optimizer": self.second_optimizer,
        }

    def _update(self, model, optimizer, x, sign):
        with tf.GradientTape() as tape:
            loss = sign * tf.reduce_mean(self.first(x) * self.second(x))
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    def train_step(self, batch):
        first_loss = self._update(self.first, self.first_optimizer, batch, 1.0)
        if self.global_step % 2 == 1:  # the step ratio: one second update per two first ones
            self._update(self.second, self.second_optimizer, batch, -1.0)
        return {"loss/first": first_loss}


def test_two_optimizer_task_resumes_both(tmp_path):
    data = tf.data.Dataset.from_tensors(tf.ones((4, 1))).repeat()
    Trainer(_TwoPlayers(), tmp_path, train_steps=10, log_every=5, progress=False).fit(data)
    task = _TwoPlayers()
    trainer = Trainer(task, tmp_path, train_steps=16, log_every=5, progress=False)
    assert int(task.first_optimizer.iterations.numpy()) == 10
    assert int(task.second_optimizer.iterations.numpy()) == 5
    trainer.fit(data)
    assert int(task.first_optimizer.iterations.numpy()) == 16
    assert int(task.second_optimizer.iterations.numpy()) == 8


def test_diagnostics_are_logged_with_the_step(tmp_path):
    seen = []

    def diagnostics(step):
        seen.append(step)
        return {"twice_the_step": 2.0 * step}

    trainer = Trainer(
        _task(), tmp_path, train_steps=30, log_every=10, progress=False, diagnostics=diagnostics
    )
    trainer.fit(_train_data())
    assert seen == [10, 20, 30]
    assert [o["diagnostics/twice_the_step"] for _, o in trainer.history["train"]] == [20, 40, 60]
