"""Conformance cases of chapter 1 (mp.basics) and the classic CNN (mp.cnn).

Each case is `(name, build_fn, input_shape, output_shape, trainable_params)`;
the parameter counts are worked out by hand in the comments.
"""

from mp.basics import logistic_regression, mlp
from mp.cnn import get_model

CASES = [
    # conv1 5*5*1*32+32 = 832; conv2 5*5*32*64+64 = 51,264; two 2x pools: 8 -> 2, so
    # dense (2*2*64)*1024+1024 = 263,168; logits 1024*10+10 = 10,250. Sum 325,514.
    (
        "classic_cnn_digits",
        lambda: get_model("classic_cnn", (8, 8, 1), 10),
        (8, 8, 1),
        (10,),
        325_514,
    ),
    # 28 -> 7 after two pools: dense 7*7*64*1024+1024 = 3,212,288; 832+51,264+3,212,288
    # +10,250 = 3,274,634.
    (
        "classic_cnn_fashion",
        lambda: get_model("classic_cnn", (28, 28, 1), 10),
        (28, 28, 1),
        (10,),
        3_274_634,
    ),
    # Features only: the logits layer (10,250) is gone: 325,514 - 10,250 = 315,264.
    (
        "classic_cnn_features",
        lambda: get_model("classic_cnn", (8, 8, 1), None),
        (8, 8, 1),
        (1024,),
        315_264,
    ),
    # 64*32+32 + 32*16+16 + 16*10+10 = 2,080 + 528 + 170 = 2,778.
    ("mlp", lambda: mlp((8, 8, 1), hidden_units=(32, 16), num_classes=10), (8, 8, 1), (10,), 2_778),
    # Multinomial: 64*10+10 = 650. Binary: one logit, 64+1 = 65.
    (
        "logistic_multinomial",
        lambda: logistic_regression((8, 8, 1), num_classes=10),
        (8, 8, 1),
        (10,),
        650,
    ),
    ("logistic_binary", lambda: logistic_regression((8, 8, 1), num_classes=2), (8, 8, 1), (1,), 65),
]
