"""Conformance cases of the chapter-2 MLP (mp.training.network)."""

from mp.training.network import configurable_mlp as mlp

CASES = [
    # Every technique on: noise, batch norm (no dense bias), PReLU, dropout, L2 penalty.
    # dense1 64*16 = 1,024 (no bias); batch_norm1 gamma+beta 2*16 = 32; prelu1 16 slopes;
    # dense2 16*8 = 128; batch_norm2 16; prelu2 8; logits 8*10+10 = 90.
    # Sum: 1,024 + 32 + 16 + 128 + 16 + 8 + 90 = 1,314.
    (
        "training_mlp_everything",
        lambda: mlp(
            (8, 8, 1),
            hidden_units=(16, 8),
            num_classes=10,
            activation="prelu",
            initializer="he",
            dropout=0.2,
            batch_norm=True,
            weight_decay=1e-4,
            noise_stddev=0.1,
            seed=0,
        ),
        (8, 8, 1),
        (10,),
        1_314,
    ),
    # Plain: 64*16+16 + 16*10+10 = 1,040 + 170 = 1,210.
    (
        "training_mlp_plain",
        lambda: mlp((8, 8, 1), hidden_units=(16,), num_classes=10, activation="tanh"),
        (8, 8, 1),
        (10,),
        1_210,
    ),
]
