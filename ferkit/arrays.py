"""Faces given as arrays, checked where they enter the library (as scikit-learn's
check_array does): every model here was trained on 48x48 grey pixels 0-255, and an array
of another shape, type or scale would be scored without an error, wrongly."""
from __future__ import annotations

import numpy as np

from ferkit.data import IMAGE_SIZE
from ferkit.errors import ParameterError

FACE_SHAPE = (IMAGE_SIZE, IMAGE_SIZE)


def check_faces(faces, name: str = "faces") -> np.ndarray:
    """uint8 or float pixels 0-255 of one face (48, 48) or of N faces (N, 48, 48) ->
    float32 (N, 48, 48), the same values. N = 0 is allowed. Anything else raises a
    ParameterError naming ``name``, saying what was expected and what was found: another
    shape, a non-numeric type, NaN or infinity, values outside 0-255, and a float array
    whose values all lie within 0-1 (pixels scaled to 0-1, which the models would read
    as a nearly black face; all zeros pass, black on either scale)."""
    array = np.asarray(faces)
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer)
                                   or np.issubdtype(array.dtype, np.floating)):
        raise ParameterError(name, f"expected uint8 or float pixels 0-255, found an array "
                                   f"of {array.dtype}")
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[1:] != FACE_SHAPE:
        raise ParameterError(name, f"expected shape {FACE_SHAPE} (one face) or "
                                   f"(N, {IMAGE_SIZE}, {IMAGE_SIZE}), found "
                                   f"{np.shape(faces)}")
    if len(array) == 0 or array.dtype == np.uint8:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.floating):
        finite = np.isfinite(array)
        if not finite.all():
            face = int(np.argwhere(~finite)[0][0])
            raise ParameterError(name, f"expected finite pixels 0-255, found "
                                       f"{array[~finite][0]} in face {face}")
    low, high = array.min(), array.max()
    if low < 0 or high > 255:
        raise ParameterError(name, f"expected pixels 0-255, found values from {low} to "
                                   f"{high}")
    if np.issubdtype(array.dtype, np.floating) and 0 < high <= 1:
        raise ParameterError(name, f"expected pixels 0-255, found floats all within 0-1 "
                                   f"(max {high}): scaled pixels? multiply them by 255")
    return array.astype(np.float32)
