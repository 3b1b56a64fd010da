"""The backprop explorer: one page that steps through one example's backward pass, layer
by layer, against PyTorch.

For a few test images through a small model it shows the chain of layers with shapes
and parameter counts, every activation, and for each backward step the incoming
gradient ``g``, the layer's local Jacobian ``J`` (whole, or a labelled block of a large
one), the product ``Jᵀg`` and torch autograd's value for the same tensor with their
differences; each parameter's ``∂L/∂θ`` as images; forward/backward milliseconds per
layer in numpy and torch.  ``tinygrad-mnist explore`` writes the page (and ``--serve``
serves it on 127.0.0.1).

=============  ===================================================================
file           what it holds
=============  ===================================================================
models.py      presets, checkpoints, a moment of training (``ExploreModel``)
trace.py       one example: activations, g, J, Jᵀg, torch's values, differences
timing.py      per-layer forward/backward times, numpy vs torch, one batch
generate.py    the page's data (JSON-ready dict)
page.py        encode arrays, render/write/read the page, the local server
template.html, explorer.css, explorer.js   the page itself (no network, no libraries)
=============  ===================================================================
"""

from .generate import generate
from .models import PRESETS, ExploreModel, make_model, train_briefly
from .page import (
    decode_array,
    encode_array,
    page_url,
    read_page_data,
    render_page,
    screenshot,
    start_server,
    stop_server,
    write_page,
)
from .trace import differences, jacobian_rows, trace_example

__all__ = ["generate", "PRESETS", "ExploreModel", "make_model", "train_briefly", "decode_array", "encode_array",
           "page_url", "read_page_data", "render_page", "write_page", "screenshot", "start_server", "stop_server",
           "differences", "jacobian_rows", "trace_example"]
