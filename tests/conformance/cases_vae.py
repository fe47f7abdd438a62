"""Conformance cases of the autoencoders and the VAE (mp.generative.autoencoder, .vae).

Each case is `(name, build_fn, input_shape, output_shape, trainable_params)`;
the parameter counts are worked out by hand in the comments. A VAE called on
images returns its deterministic reconstruction `E[x | z = mu(x)]`.
"""

from mp.generative.autoencoder import autoencoder, linear_autoencoder
from mp.generative.vae import make_vae

SMALL = dict(hidden_units=(3,), filters=(2, 3))
# With ReLU, a 1x1x3 code from a random input is often all zeros, which puts the next
# dense layer exactly on ReLU's kink and fails the finite-difference check; ELU is smooth.
SMALL_CONV = dict(SMALL, activation="elu")

CASES = [
    # Encoder: flatten 16 -> dense 3: 16*3+3 = 51; dense 2 (latent_dim): 3*2+2 = 8.
    # Decoder: dense 3: 2*3+3 = 9; dense 16: 3*16+16 = 64. 51+8+9+64 = 132.
    (
        "dense_autoencoder",
        lambda: autoencoder((4, 4, 1), 2, kind="dense", **SMALL),
        (4, 4, 1),
        (4, 4, 1),
        132,
    ),
    # Encoder: conv 3x3 1->2: 9*1*2+2 = 20 (4 -> 2); conv 3x3 2->3: 9*2*3+3 = 57 (2 -> 1);
    # dense 3: 3*3+3 = 12; dense 2: 3*2+2 = 8. Sum 97.
    # Decoder: dense 3: 2*3+3 = 9; dense 1*1*3: 3*3+3 = 12; transposed conv 3->3: 9*3*3+3 = 84
    # (1 -> 2); transposed conv 3->2: 9*3*2+2 = 56 (2 -> 4); conv 2->1: 9*2*1+1 = 19. Sum 180.
    # 97 + 180 = 277.
    (
        "conv_autoencoder",
        lambda: autoencoder((4, 4, 1), 2, kind="conv", **SMALL_CONV),
        (4, 4, 1),
        (4, 4, 1),
        277,
    ),
    # Encoder 5*2+2 = 12, decoder 2*5+5 = 15: 27.
    ("linear_autoencoder", lambda: linear_autoencoder(5, 2), (5,), (5,), 27),
    # As dense_autoencoder, but the encoder's output is 2*latent_dim = 4: 3*4+4 = 16 instead
    # of 8. 51+16+9+64 = 140.
    (
        "dense_vae_bernoulli",
        lambda: make_vae((4, 4, 1), 2, kind="dense", likelihood="bernoulli", seed=0, **SMALL),
        (4, 4, 1),
        (4, 4, 1),
        140,
    ),
    # Gaussian decoder: two outputs per pixel, dense 32: 3*32+32 = 128 instead of 64.
    # 51+16+9+128 = 204.
    (
        "dense_vae_gaussian",
        lambda: make_vae((4, 4, 1), 2, kind="dense", likelihood="gaussian", seed=0, **SMALL),
        (4, 4, 1),
        (4, 4, 1),
        204,
    ),
    # As conv_autoencoder with a 4-wide encoder output: 97 - 8 + 16 = 105; decoder 180. 285.
    (
        "conv_vae_continuous_bernoulli",
        lambda: make_vae(
            (4, 4, 1), 2, kind="conv", likelihood="continuous_bernoulli", seed=0, **SMALL_CONV
        ),
        (4, 4, 1),
        (4, 4, 1),
        285,
    ),
]
