"""Checkpoints that lose nothing: a model and its architecture, the optimiser, the schedule,
the random generators and the history, in one ``.npz`` file written atomically.

One file holds

- every parameter and buffer under the model's own ``state_dict`` names (``"0.weight"``),
  so ``np.load(path)`` and ``model.load_state_dict(..., strict=False)`` still work;
- ``"optimizer/<i>/<key>"``: the optimiser's per-parameter arrays (momentum buffers, Adam
  moments), ``i`` the parameter's position;
- ``"__meta__"``: a JSON document (bytes) with the architecture as a list of
  :class:`~tinygrad_mnist.models.LayerDesc` (so :func:`load` rebuilds the model without the
  code that made it), the dtype, per-layer state that is not an array (each Dropout
  generator's state, BatchNorm counters), the optimiser's class, hyperparameters, step
  counts, the schedule's class and state, the history, the epoch reached, the training
  configuration, and the library versions.

A write goes to a temporary file in the same folder, is flushed and fsync'd, then renamed
over the old file (and the folder fsync'd): a kill at any moment leaves the previous
checkpoint or the new one, never a broken file.  A corrupt file, or one that does not fit
the model or optimiser it is loaded into, raises :class:`CheckpointError` naming what does
not match.

The parts: ``atomic.py`` (the atomic write, Ctrl-C held back during it), ``layout.py``
(reserved keys, format version, per-layer and optimiser state as arrays and JSON),
``save_load.py`` (:func:`save`, :func:`load`, :class:`Checkpoint`).  Every name is
importable from ``tinygrad_mnist.checkpoint``.

>>> from tinygrad_mnist import build_course_cnn, SGD
>>> model = build_course_cnn(seed=0)
>>> path = save("/tmp/doc-ckpt.npz", model, optimizer=SGD(model.parameters(), lr=0.1, momentum=0.9))
>>> load(path).model.num_parameters()
21578
"""

from ..architecture import describe_model, layers_from_json, layers_to_json
from .atomic import atomic_write, deferred_interrupt
from .layout import FORMAT, META_KEY, OPTIM_PREFIX, VERSION, CheckpointError, versions  # noqa: F401
from .save_load import Checkpoint, load, load_checkpoint, save

__all__ = ["CheckpointError", "Checkpoint", "save", "load", "load_checkpoint", "describe_model",
           "layers_to_json", "layers_from_json", "atomic_write", "deferred_interrupt", "versions", "FORMAT",
           "VERSION"]
