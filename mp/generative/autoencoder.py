"""Autoencoders: an encoder `f` to a few latent numbers and a decoder `g` back.

An autoencoder learns `x_hat = g(f(x))` by minimising a reconstruction loss,
here the squared error `||x - g(f(x))||^2`. The latent code `z = f(x)` has
fewer dimensions than `x`, so the network must find the few degrees of freedom
that describe the data.

With a linear encoder and decoder and centred data the best rank-k
reconstruction is the projection onto the top-k principal subspace (the
Eckart-Young theorem), so a linear autoencoder trained with squared loss
spans the same subspace as PCA; its weights need not be orthonormal, only
their column space matches (Baldi and Hornik, "Neural networks and principal
component analysis", 1989).

The encoder and decoder builders here are shared with the VAE (`mp.generative.vae`):
dense (an MLP on the flattened image) and convolutional (two stride-2
convolutions down, two stride-2 transposed convolutions up; the image side must
be divisible by 4, which holds for 8x8 digits and 28x28 Fashion-MNIST).

Course: ch5.1 Variational Autoencoders (autoencoders; the linear case is PCA).
"""

import keras

KINDS = ("dense", "conv")


def _check_kind(kind):
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}. Received: kind={kind!r}")


def _check_units(name, values, count=None):
    values = tuple(values)
    if not all(isinstance(v, int) and v > 0 for v in values) or (
        count is not None and len(values) != count
    ):
        what = f"{count} positive integers" if count else "positive integers"
        raise ValueError(f"{name} must be {what}. Received: {name}={values}")
    return values


def make_encoder(
    input_shape,
    outputs,
    *,
    kind="dense",
    hidden_units=(256,),
    filters=(32, 64),
    activation="relu",
    name="encoder",
):
    """An encoder `x -> R^outputs` (no activation on the output).

    Args:
      input_shape: `(height, width, channels)` of one image.
      outputs: width of the output; `latent_dim` for an autoencoder,
        `2 * latent_dim` for a VAE (a location and a scale per latent).
      kind: `dense` (MLP on the flattened image) or `conv` (two 3x3 stride-2
        convolutions, then a dense layer).
      hidden_units: widths of the hidden dense layers (`dense`: all of them;
        `conv`: after the convolutions). Empty for a linear encoder.
      filters: channels of the two convolutions (`conv` only).
      activation: activation of the hidden layers.
      name: the model's name.

    Returns:
      A `keras.Model` mapping `[B, H, W, C]` to `[B, outputs]`.

    Raises:
      ValueError: unknown `kind`, non-positive sizes, or (conv) an image side
        not divisible by 4.
    """
    _check_kind(kind)
    hidden_units = _check_units("hidden_units", hidden_units)
    if not isinstance(outputs, int) or outputs <= 0:
        raise ValueError(f"outputs must be a positive integer. Received: outputs={outputs}")
    inputs = keras.Input(input_shape)
    x = inputs
    if kind == "conv":
        filters = _check_units("filters", filters, count=2)  # two halvings: H -> H/4
        _check_side(input_shape)
        for channels in filters:
            x = keras.layers.Conv2D(channels, 3, strides=2, padding="same", activation=activation)(
                x
            )
    x = keras.layers.Flatten()(x)
    for units in hidden_units:
        x = keras.layers.Dense(units, activation=activation)(x)
    return keras.Model(inputs, keras.layers.Dense(outputs)(x), name=name)


def make_decoder(
    latent_dim,
    output_shape,
    *,
    kind="dense",
    hidden_units=(256,),
    filters=(32, 64),
    activation="relu",
    output_channels=None,
    name="decoder",
):
    """A decoder `z -> [H, W, output_channels]` (no activation on the output).

    The mirror image of `make_encoder`: hidden dense layers in reverse order,
    and for `conv` a dense layer to an `H/4 x W/4` map, then two stride-2
    transposed convolutions and a 3x3 convolution to `output_channels`.

    Args:
      latent_dim: size of the latent code `z`.
      output_shape: `(height, width, channels)` of one image.
      kind: `dense` or `conv`.
      hidden_units: as in `make_encoder` (used in reverse order).
      filters: as in `make_encoder` (used in reverse order).
      activation: activation of the hidden layers.
      output_channels: channels of the output; `None` is the image's channels.
        A Gaussian decoder asks for two per image channel (location, scale).
      name: the model's name.

    Returns:
      A `keras.Model` mapping `[B, latent_dim]` to `[B, H, W, output_channels]`.
    """
    _check_kind(kind)
    hidden_units = _check_units("hidden_units", hidden_units)
    height, width, channels = output_shape
    output_channels = output_channels or channels
    inputs = keras.Input((latent_dim,))
    x = inputs
    for units in reversed(hidden_units):
        x = keras.layers.Dense(units, activation=activation)(x)
    if kind == "dense":
        x = keras.layers.Dense(height * width * output_channels)(x)
        return keras.Model(
            inputs, keras.layers.Reshape((height, width, output_channels))(x), name=name
        )
    filters = _check_units("filters", filters, count=2)
    _check_side(output_shape)
    x = keras.layers.Dense((height // 4) * (width // 4) * filters[-1], activation=activation)(x)
    x = keras.layers.Reshape((height // 4, width // 4, filters[-1]))(x)
    for channels_up in reversed(filters):
        x = keras.layers.Conv2DTranspose(
            channels_up, 3, strides=2, padding="same", activation=activation
        )(x)
    x = keras.layers.Conv2D(output_channels, 3, padding="same")(x)
    return keras.Model(inputs, x, name=name)


def _check_side(shape):
    if shape[0] % 4 or shape[1] % 4:
        raise ValueError(
            "a conv encoder/decoder halves the image twice, so height and width must be "
            f"divisible by 4. Received: shape={tuple(shape)}"
        )


def autoencoder(
    input_shape,
    latent_dim,
    *,
    kind="dense",
    hidden_units=(256,),
    filters=(32, 64),
    activation="relu",
    output_activation="sigmoid",
):
    """An autoencoder `x -> g(f(x))` as one `keras.Model` (train it with `mse`).

    Args:
      input_shape: `(height, width, channels)`.
      latent_dim: size of the code `z = f(x)`.
      kind, hidden_units, filters, activation: see `make_encoder`.
      output_activation: applied to the decoder's output; `sigmoid` for pixels
        in [0, 1], `None` for a linear output (centred data, the PCA case).

    Returns:
      A `keras.Model` with sub-models `encoder` and `decoder` as attributes.
    """
    if not isinstance(latent_dim, int) or latent_dim <= 0:
        raise ValueError(
            f"latent_dim must be a positive integer. Received: latent_dim={latent_dim}"
        )
    options = dict(kind=kind, hidden_units=hidden_units, filters=filters, activation=activation)
    encoder = make_encoder(input_shape, latent_dim, **options)
    decoder = make_decoder(latent_dim, input_shape, **options)
    inputs = keras.Input(input_shape)
    outputs = decoder(encoder(inputs))
    if output_activation is not None:
        outputs = keras.layers.Activation(output_activation)(outputs)
    model = keras.Model(inputs, outputs, name=f"{kind}_autoencoder")
    model.encoder, model.decoder = encoder, decoder
    return model


def linear_autoencoder(input_dim, latent_dim):
    """`x_hat = W_dec (W_enc x + b_enc) + b_dec` on vectors: the autoencoder that is PCA.

    Args:
      input_dim: size of the data vectors.
      latent_dim: size of the code (the number of principal components).

    Returns:
      A `keras.Model` `[B, input_dim] -> [B, input_dim]` with `encoder` and
      `decoder` (one `Dense` layer each, no activation) as attributes.
    """
    encoder = keras.layers.Dense(latent_dim, name="encoder")
    decoder = keras.layers.Dense(input_dim, name="decoder")
    inputs = keras.Input((input_dim,))
    model = keras.Model(inputs, decoder(encoder(inputs)), name="linear_autoencoder")
    model.encoder, model.decoder = encoder, decoder
    return model
