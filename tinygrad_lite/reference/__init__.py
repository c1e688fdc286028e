"""Hand-derived NumPy forward + backward passes for the seeds' two-layer networks.

Each function keeps its seed's formulas, layout and L2 convention, returns
``(loss, grads)`` with ``grads`` keyed like the params (``W1, b1, W2, b2``, each in
its parameter's shape) and never modifies its inputs. Use them as the ``hand``
side of :func:`tinygrad_lite.compare.compare_gradients`; ``broken_two_layer`` is
cs231n's with one classic mistake, to see a comparison fail.

=========================== ====== ======================= ============ ==============
function                    seed   layout                  hidden       L2
=========================== ====== ======================= ============ ==============
cs231n_two_layer            000    rows, X (N, D), b (H,)  ReLU         reg |W|^2
cs231n_two_layer(l2_half)   001    rows, X (N, D), b (H,)  ReLU         0.5 reg |W|^2
ng_two_layer                002    rows, X (m, n), b (1,h) ReLU         0.5 lambd |W|^2
column_sigmoid_two_layer    003    columns, X (D, N)       sigmoid      0.5 reg |W|^2
scratch_two_layer           004    rows, X (n, N_x), b(1,H) ReLU        none
=========================== ====== ======================= ============ ==============
"""
from .column_sigmoid import column_sigmoid_two_layer, seed003_fixture, seed003_scaled
from .cs231n import (BUGS, TOY_CORRECT_LOSS, TOY_CORRECT_SCORES, broken_two_layer,
                     cs231n_two_layer, init_toy_data, init_toy_model)
from .ng import init_ng_params, initalize_he_weights, initialize_he_weights, ng_two_layer
from .scratch import scratch_two_layer

__all__ = [
    "cs231n_two_layer", "broken_two_layer", "BUGS", "init_toy_model", "init_toy_data",
    "TOY_CORRECT_SCORES", "TOY_CORRECT_LOSS",
    "ng_two_layer", "initialize_he_weights", "initalize_he_weights", "init_ng_params",
    "column_sigmoid_two_layer", "seed003_fixture", "seed003_scaled",
    "scratch_two_layer",
]
