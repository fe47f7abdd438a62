"""Conformance cases of the fully convolutional network (mp.cnn.fcn).

Each case is `(name, build_fn, input_shape, output_shape, trainable_params)`;
the parameter counts are worked out by hand in the comments (BN: gamma and beta
trainable, 2 per channel; the 3x3 convolutions have no bias).
"""

from mp.cnn import get_model
from mp.cnn.fcn import fcn

CASES = [
    # down0 3*3*1*4 + 2*4 = 44; bottom 3*3*4*8 + 2*8 = 304; up0 transpose 2*2*8*4+4 = 132,
    # conv over concat(4+4) 3*3*8*4 + 2*4 = 296; logits 1x1 4*3+3 = 15. Sum 791.
    (
        "fcn_transpose",
        lambda: get_model("fcn", (16, 16, 1), 3, filters=(4, 8)),
        (16, 16, 1),
        (16, 16, 3),
        791,
    ),
    # Nearest-neighbour up-sampling has no weights; the conv after it sees concat(8+4):
    # 44 + 304 + (3*3*12*4 + 2*4 = 440) + 15 = 803.
    (
        "fcn_nearest",
        lambda: fcn((16, 16, 1), 3, filters=(4, 8), upsampling="nearest"),
        (16, 16, 1),
        (16, 16, 3),
        803,
    ),
    # Features only: the logits layer (15) is gone: 791 - 15 = 776.
    ("fcn_features", lambda: fcn((16, 16, 1), None, filters=(4, 8)), (16, 16, 1), (16, 16, 4), 776),
]
