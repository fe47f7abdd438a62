"""The pictures of chapter 5 (mp.plotting's grids and curves, the VAE's and the GAN's figures).

Each builds without a display and draws what it says: the tiles' pixels, one line per
curve, the panels of each model.
"""

import keras
import numpy as np
import pytest

from mp import plotting
from mp.generative import gan as gan_lib
from mp.generative import vae


def test_tile_images_places_each_image_with_grey_gaps():
    images = np.arange(5)[:, None, None, None] * np.ones((5, 2, 3, 1)) / 10
    canvas = plotting.tile_images(images, rows=2, cols=3)
    assert canvas.shape == (2 * 3 - 1, 3 * 4 - 1)
    np.testing.assert_array_equal(canvas[3:5, 4:7], np.full((2, 3), 0.4))  # image 4: row 1, col 1
    assert canvas[2, 0] == 0.5 and canvas[0, 3] == 0.5  # the gaps
    np.testing.assert_array_equal(canvas[3:5, 8:11], np.full((2, 3), 0.5))  # no sixth image
    assert plotting.tile_images(images[..., 0]).shape == (2 * 3 - 1, 3 * 4 - 1)  # 3 x 3 fits 5


def test_image_grid_figure_shows_the_tiles():
    figure = plotting.image_grid_figure(np.zeros((4, 8, 8, 1)), "four", rows=1, cols=4)
    (axis,) = figure.axes
    assert axis.get_title() == "four"
    assert axis.images[0].get_array().shape == (8, 4 * 9 - 1)


def _history(train, evaluations):
    return {"train": [(s, o) for s, o in train], "eval": [(s, r) for s, r in evaluations]}


def test_curves_figure_draws_one_line_per_curve_and_the_reference():
    history = _history([(1, {"a": 1.0}), (2, {"a": 0.5})], [(2, {"b": 0.7})])
    figure = plotting.curves_figure(
        history,
        [
            {"ylabel": "a", "train": [("a", "a"), ("-a", lambda o: -o["a"])]},
            {"ylabel": "b", "eval": [("b", "b")], "reference": (0.5, "half")},
        ],
    )
    left, right = figure.axes[:2]
    assert [line.get_label() for line in left.lines] == ["a", "-a"]
    np.testing.assert_array_equal(left.lines[1].get_ydata(), [-1.0, -0.5])
    assert [line.get_label() for line in right.lines] == ["b", "half"]
    assert right.get_ylabel() == "b"


def test_vae_figures_and_learning_curves():
    keras.utils.set_random_seed(0)
    model = vae.make_vae((8, 8, 1), 2, hidden_units=(8,), seed=0)
    images = (np.random.default_rng(0).uniform(size=(30, 8, 8, 1)) < 0.3).astype(np.float32)
    labels = np.arange(30) % 10
    figures = vae.figures(model, images, labels, [str(i) for i in range(10)], grid=4)
    assert set(figures) == {"reconstructions", "samples_mean", "samples", "latent"}
    assert figures["samples"].axes[0].images[0].get_array().shape == (4 * 9 - 1, 4 * 9 - 1)
    assert len(figures["latent"].axes) == 3  # scatter, its colour bar, the traversal
    terms = {"metrics/elbo": -30.0, "metrics/rate": 2.0, "metrics/distortion": 28.0}
    results = {"elbo": -31.0, "rate": 2.0, "distortion": 29.0}
    curves = vae.learning_curves_figure(_history([(1, terms), (2, terms)], [(2, results)]))
    np.testing.assert_array_equal(curves.axes[0].lines[0].get_ydata(), [30.0, 30.0])  # -ELBO
    assert len(curves.axes[1].lines) == 4


@pytest.mark.parametrize("latent_dim", [1, 3])
def test_vae_latent_figure_without_a_traversal(latent_dim):
    keras.utils.set_random_seed(0)
    model = vae.make_vae((8, 8, 1), latent_dim, hidden_units=(8,), seed=0)
    images = np.zeros((10, 8, 8, 1), np.float32)
    figure = vae.latent_figure(model, images, np.arange(10), [str(i) for i in range(10)])
    assert len(figure.axes) == 2  # the scatter and its colour bar


def test_gan_ring_and_learning_curves_figures():
    modes = gan_lib.ring_modes(8, 2.0)
    figure = gan_lib.ring_figure(modes + 0.01, modes, 0.02, "title")
    assert figure.axes[0].get_title() == "title" and len(figure.axes[0].patches) == 8
    outputs = {"loss/discriminator": 1.3, "loss/generator": 0.9}
    outputs |= {"metrics/d_real": 0.6, "metrics/d_fake": 0.4}
    results = {"d_loss": 1.2, "d_real": 0.55}
    curves = gan_lib.learning_curves_figure(_history([(1, outputs)], [(1, results)]))
    labels = [line.get_label() for line in curves.axes[0].lines]
    assert labels == ["D loss", "G loss", "D loss, test", "log 4 (D = 1/2)"]
