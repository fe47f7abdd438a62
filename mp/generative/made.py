"""MADE: the masked autoencoder for distribution estimation (Germain, Gregor, Murray and
Larochelle, "MADE: Masked Autoencoder for Distribution Estimation", 2015).

An autoencoder's output `d` becomes the conditional `p(x_d | x_<d)` once every
path from the inputs that come at or after `d` in the ordering to output `d` is
cut. MADE cuts them with binary masks on the weight matrices, built from a
*degree* per unit:

    inputs      m^0(d) = position of pixel d in the ordering, in 1..D
    hidden      m^l(k) drawn uniformly from [min_k' m^{l-1}(k'), D - 1]
    mask of a hidden layer   M^l[k', k] = 1  iff  m^l(k) >= m^{l-1}(k')
    mask of the output       M^V[k, d]  = 1  iff  m^0(d)  >  m^L(k)      (strictly)

A hidden unit of degree m sees at most the inputs of positions 1..m, so the
output of position p, which only reads units of degree < p, sees positions
< p. Here every degree 1..D-1 is given to at least one unit of each hidden
layer (when the layer has D - 1 units or more; the others are drawn as above),
so every allowed dependency has a path: the causality harness also checks
that allowed entries of the Jacobian are non-zero.

`MaskedDense` multiplies a constant mask into the kernel inside `call` (the
variable itself stays dense and the optimizer never sees the mask; a mask set
once into the variable, or a constraint, would be undone or bypassed by an
update). It holds a *set* of masks and takes the index of the one to use.

Training over several masks (`num_masks > 1`):
    connectivity-agnostic  every mask draws its own hidden degrees
    order-agnostic         every mask but the first also draws its own ordering
One mask is drawn per training step. The model's density is then the mixture
over masks, `p(x) = 1/M sum_m p_m(x)`: each `p_m` is normalised, so their mean
is too, and `log p(x) = logsumexp_m log p_m(x) - log M` (`log_prob` with
`mask_index=None`). Averaging the *logits* across masks with different
orderings instead gives conditionals that peek at later pixels: no longer a
distribution (a test shows its sum over all `2^D` images is not 1).

Course: ch5.3.1 NADE and MADE.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from mp.engine.task import float32
from mp.generative.autoregressive import AutoregressiveMixin, check_num_levels


def made_degrees(input_dim, hidden_units, *, order=None, rng=None):
    """The degrees of one MADE mask: `[m^0 (inputs), m^1, ..., m^L]` as int arrays.

    Args:
      input_dim: D, at least 2.
      hidden_units: the widths of the hidden layers.
      order: a permutation of `range(D)` (pixel indices in autoregressive order);
        default the natural order.
      rng: a `numpy.random.Generator` for the hidden degrees.

    Returns:
      A list of `1 + len(hidden_units)` int arrays.
    """
    if input_dim < 2:
        raise ValueError(f"MADE needs at least 2 inputs. Received: input_dim={input_dim}")
    rng = rng or np.random.default_rng(0)
    order = np.arange(input_dim) if order is None else np.asarray(order)
    if sorted(order.tolist()) != list(range(input_dim)):
        raise ValueError(f"order must be a permutation of range({input_dim}). Received: {order}")
    inputs = np.empty(input_dim, np.int64)
    inputs[order] = np.arange(1, input_dim + 1)  # m^0(d): the position of pixel d
    degrees = [inputs]
    for units in hidden_units:
        low = int(degrees[-1].min())
        drawn = rng.integers(low, input_dim, size=units)  # uniform on [low, D - 1]
        every = np.arange(low, input_dim)  # each degree at least once, if the layer is wide enough
        if units >= len(every):
            drawn[: len(every)] = every
            drawn = rng.permutation(drawn)
        degrees.append(drawn)
    return degrees


def degree_mask(in_degrees, out_degrees, strict=False):
    """`M[k', k] = m_out(k) >= m_in(k')` (hidden layers), or `>` (`strict`, the output)."""
    in_degrees, out_degrees = np.asarray(in_degrees), np.asarray(out_degrees)
    if strict:
        return (out_degrees[..., None, :] > in_degrees[..., :, None]).astype(np.float32)
    return (out_degrees[..., None, :] >= in_degrees[..., :, None]).astype(np.float32)


@keras.saving.register_keras_serializable(package="mp")
class MaskedDense(keras.layers.Dense):
    """A dense layer whose kernel is multiplied by one of a set of constant 0/1 masks.

    The masks come from unit degrees (`degree_mask`): `in_degrees` `[M, in]` and
    `out_degrees` `[M, units]`, one row per mask. `call(x, mask_index=0)` uses
    `kernel * mask[mask_index]`; the variable `kernel` is never masked itself.

    Args:
      units: output width.
      in_degrees, out_degrees: the degrees, `[M, in]` and `[M, units]` (nested lists
        or arrays; one mask may also be given as 1-D lists).
      strict: `>` instead of `>=` (the output layer of MADE).
      **kwargs: `keras.layers.Dense`'s (activation, initializers, ...).
    """

    def __init__(self, units, in_degrees, out_degrees, strict=False, **kwargs):
        super().__init__(units, **kwargs)
        in_degrees = np.atleast_2d(np.asarray(in_degrees, np.int64))
        out_degrees = np.atleast_2d(np.asarray(out_degrees, np.int64))
        if out_degrees.shape != (in_degrees.shape[0], units):
            raise ValueError(
                f"out_degrees must be [num_masks, units] = [{in_degrees.shape[0]}, {units}]. "
                f"Received: shape {out_degrees.shape}"
            )
        self.in_degrees, self.out_degrees, self.strict = in_degrees, out_degrees, strict
        self.masks = degree_mask(in_degrees, out_degrees, strict)  # [M, in, units], NumPy

    def build(self, input_shape):
        if input_shape[-1] != self.in_degrees.shape[1]:
            raise ValueError(
                f"MaskedDense has {self.in_degrees.shape[1]} input degrees. "
                f"Received: input_shape={input_shape}"
            )
        super().build(input_shape)

    def call(self, inputs, mask_index=0):
        masks = tf.constant(self.masks, dtype=self.compute_dtype)
        kernel = tf.convert_to_tensor(self.kernel) * tf.gather(masks, mask_index)
        outputs = tf.matmul(inputs, kernel)
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs

    def get_config(self):
        return super().get_config() | {
            "in_degrees": self.in_degrees.tolist(),
            "out_degrees": self.out_degrees.tolist(),
            "strict": self.strict,
        }


@keras.saving.register_keras_serializable(package="mp")
class MADE(AutoregressiveMixin, keras.Model):
    """MADE over the pixels of `[H, W, 1]` images (binary, or `num_levels` grey levels).

    `call(x, mask_index=0)` returns the logits of every pixel, `[B, H, W, 1]`
    (Bernoulli) or `[B, H, W, num_levels]`, under one mask. `log_prob(x)` is the
    mixture over all masks (`mask_index=None`), or one mask's.

    Args:
      image_shape: `(H, W, 1)`.
      hidden_units: widths of the hidden layers (Germain et al. used 1 or 2 of 500).
      num_masks: how many masks (orderings and/or connectivities) training cycles through.
      order_agnostic: masks 1.. draw their own ordering too (mask 0 is the raster order).
      num_levels: 2 (Bernoulli pixels) or more (a softmax over grey levels).
      activation: of the hidden layers.
      seed: the seed of the degrees (and of `model.fit`'s mask draws).
    """

    def __init__(
        self,
        image_shape,
        hidden_units=(500,),
        num_masks=1,
        order_agnostic=False,
        num_levels=2,
        activation="relu",
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_num_levels(num_levels)
        if not isinstance(num_masks, int) or num_masks < 1:
            raise ValueError(f"num_masks must be a positive integer. Received: {num_masks}")
        if not hidden_units:
            raise ValueError(f"MADE needs a hidden layer. Received: hidden_units={hidden_units}")
        self.image_shape = tuple(image_shape)
        self.hidden_units = tuple(hidden_units)
        self.num_masks, self.order_agnostic = num_masks, order_agnostic
        self.num_levels, self.activation, self.seed = num_levels, activation, seed
        input_dim = int(np.prod(image_shape))
        rng = np.random.default_rng(seed)
        orders, masks = [], []
        for m in range(num_masks):
            order = rng.permutation(input_dim) if order_agnostic and m > 0 else np.arange(input_dim)
            orders.append(order)
            masks.append(made_degrees(input_dim, hidden_units, order=order, rng=rng))
        self.orders = orders
        per_layer = [np.stack([degrees[i] for degrees in masks]) for i in range(len(masks[0]))]
        # Attributes, not a list: TensorFlow checkpoints (the engine's) see only attributes.
        for i, units in enumerate(hidden_units):
            layer = MaskedDense(
                units, per_layer[i], per_layer[i + 1], activation=activation, name=f"masked_{i}"
            )
            setattr(self, f"masked_{i}", layer)
        channels = 1 if num_levels == 2 else num_levels
        out_degrees = np.repeat(per_layer[0], channels, axis=1)  # pixel d's K logits: d's degree
        self.output_layer = MaskedDense(
            input_dim * channels, per_layer[-1], out_degrees, strict=True, name="masked_output"
        )
        self.seed_generator = keras.random.SeedGenerator(seed)

    @property
    def hidden(self):
        """The hidden `MaskedDense` layers, in order."""
        return [getattr(self, f"masked_{i}") for i in range(len(self.hidden_units))]

    def build(self, input_shape):
        size = int(np.prod(self.image_shape))
        shape = (None, size)
        for layer in self.hidden:
            layer.build(shape)
            shape = (None, layer.units)
        self.output_layer.build(shape)
        self.built = True

    def call(self, x, training=False, mask_index=0):
        del training
        h = tf.reshape(x, [tf.shape(x)[0], -1])
        for layer in self.hidden:
            h = layer(h, mask_index=mask_index)
        logits = self.output_layer(h, mask_index=mask_index)
        channels = 1 if self.num_levels == 2 else self.num_levels
        return tf.reshape(logits, [tf.shape(x)[0], *self.image_shape[:2], channels])

    def log_prob(self, x, training=False, mask_index=None):
        """`log p(x)`, `[B]`: the mixture over the masks if `mask_index` is None, else one mask's.

        `log (1/M) sum_m p_m(x) = logsumexp_m log p_m(x) - log M`: it averages
        probabilities, never logits.
        """
        one = super().log_prob
        if mask_index is not None or self.num_masks == 1:
            return one(x, training=training, mask_index=0 if mask_index is None else mask_index)
        per_mask = tf.stack(
            [one(x, training=training, mask_index=m) for m in range(self.num_masks)]
        )
        return tf.reduce_logsumexp(per_mask, axis=0) - math.log(self.num_masks)

    def order(self, mask_index=0):
        return [int(d) for d in self.orders[mask_index]]

    def sample(self, num_samples, *, seed=0, mask_index=0):
        """Ancestral samples under one mask (its ordering), one pass per pixel."""
        from mp.generative.autoregressive import ancestral_sample

        def logits_fn(x):
            x = tf.cast(tf.convert_to_tensor(x), self.compute_dtype)
            return float32(self(x, mask_index=mask_index)).numpy()

        return ancestral_sample(
            logits_fn,
            self.image_shape,
            num_samples,
            order=self.order(mask_index),
            num_levels=self.num_levels,
            seed=seed,
        )

    def _fit_kwargs(self):
        if self.num_masks == 1:
            return {"mask_index": 0}
        index = keras.random.randint([], 0, self.num_masks, seed=self.seed_generator)
        return {"mask_index": index}

    def get_config(self):
        return super().get_config() | {
            "image_shape": list(self.image_shape),
            "hidden_units": list(self.hidden_units),
            "num_masks": self.num_masks,
            "order_agnostic": self.order_agnostic,
            "num_levels": self.num_levels,
            "activation": self.activation,
            "seed": self.seed,
        }


def make_made(image_shape, hidden_units=(500,), *, num_masks=1, order_agnostic=None, **kwargs):
    """A built `MADE` (`order_agnostic` defaults to `num_masks > 1`)."""
    if order_agnostic is None:
        order_agnostic = num_masks > 1
    model = MADE(image_shape, hidden_units, num_masks, order_agnostic, **kwargs)
    model(tf.zeros([1, *image_shape], model.compute_dtype))
    return model
