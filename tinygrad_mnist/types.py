"""Type aliases the engine's annotations share (numpy.typing for arrays)."""

from __future__ import annotations

import os
from typing import Any, Union

import numpy as np
from numpy.typing import DTypeLike, NDArray

#: any ndarray; the dtype is checked at run time (float32/float64, see ``nn.conventions``)
Array = NDArray[Any]
#: a float32 or float64 array
FloatArray = NDArray[np.floating[Any]]
#: an integer array (labels, indices)
IntArray = NDArray[np.integer[Any]]
#: a file-system path as the public functions accept it
PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["Array", "DTypeLike", "FloatArray", "IntArray", "NDArray", "PathLike"]
