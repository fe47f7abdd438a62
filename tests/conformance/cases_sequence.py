"""Conformance cases of ch5.3 part 2's sequence models (mp.generative.tcn, .wavenet, .vrnn).

Each case is `(name, build_fn, input_shape, output_shape, trainable_params)`, the
counts worked out in the comments (a 1-D convolution of kernel k from c_in to c_out
channels has k*c_in*c_out + c_out parameters, a dense layer n_in*n_out + n_out).
WaveNet's first step reads only zero padding, so its features there are its biases:
`_biased` moves them off ReLU's kink (see cases_autoregressive).
"""

import numpy as np

from mp.generative.tcn import make_tcn
from mp.generative.vrnn import VRNN
from mp.generative.wavenet import WaveNet
from tests.conformance.cases_autoregressive import _biased


def _wavenet():
    model = WaveNet(3, filters=2, skip_channels=3, head_units=4, kernel_size=2, dilations=(1, 2))
    model(np.zeros((1, 6, 3), np.float32))
    return model


def _vrnn():
    model = VRNN(3, 2, latent_dim=2, units=3, hidden_units=4, cell="gru")
    model(np.zeros((1, 2, 3), np.float32))
    return model


CASES = [
    # blocks 1, 2 (k=3, 4 filters): block 1: 3*2*4+4 = 28, 3*4*4+4 = 52, downsample 2*4+4 =
    # 12; block 2: 52 + 52; readout 4*1+1 = 5. 201.
    ("tcn", lambda: make_tcn((9, 2), filters=4, kernel_size=3, num_blocks=2), (9, 2), (1,), 201),
    # input conv k=2 3->2: 2*3*2+2 = 14; layer 1: dilated 2*2*4+4 = 20, residual 2*2+2 = 6,
    # skip 2*3+3 = 9; layer 2 (last, no residual): 20 + 9; head 3*4+4 = 16; logits 4*3+3 =
    # 15. 14 + 35 + 29 + 16 + 15 = 109.
    ("wavenet", _biased(_wavenet), (6, 3), (6, 3), 109),
    # VRNN (its per-step ELBO terms, [T]), D = 3, T = 2, z 2, h 3, hidden 4: phi_x 3*4+4 =
    # 16; phi_z 2*4+4 = 12; prior hidden 3*4+4 = 16, params 4*4+4 = 20; encoder hidden
    # (4+3)*4+4 = 32, params 20; decoder hidden (4+3)*4+4 = 32, logits 4*3+3 = 15; GRU on
    # [phi_x, phi_z] (8) with 3 units: kernel 8*9 = 72, recurrent 3*9 = 27, bias 2*9 = 18.
    # 163 + 117 = 280.
    ("vrnn", _biased(_vrnn), (2, 3), (2,), 280),
]
