"""Type tests for numbers given as hyperparameters.

Python numbers and NumPy scalars (``np.int64(2)``, ``np.float32(0.5)``) are accepted alike;
booleans are not numbers here (``k=True`` is refused), and NumPy booleans count as booleans.
Callers convert accepted values with ``int()``/``float()`` before storing them, so no NumPy type
reaches a checkpoint, a result or an export header.
"""

from __future__ import annotations

import numbers

import numpy as np


def is_int(v) -> bool:
    """``True`` for an integer number (``int``, a NumPy integer), not a bool."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def is_real(v) -> bool:
    """``True`` for a real number (``int``, ``float``, a NumPy integer or float) that converts to
    a float (``10**400`` does not), not a bool."""
    if not isinstance(v, numbers.Real) or isinstance(v, bool):
        return False
    try:
        float(v)
    except OverflowError:
        return False
    return True


def is_bool(v) -> bool:
    """``True`` for ``True``/``False`` and NumPy booleans."""
    return isinstance(v, (bool, np.bool_))


def plain_numbers(config) -> None:
    """Turn the NumPy numbers in the fields of a frozen dataclass ``config`` into the Python type
    its annotation names (``int``, ``float``, ``bool``, ``Optional[...]`` of them), in place, so
    that what it records is plain JSON. Fields of other types, and ``None``, are left alone."""
    import dataclasses

    for f in dataclasses.fields(config):
        v = getattr(config, f.name)
        cast = {"bool": bool, "int": int, "float": float}.get(str(f.type).replace("Optional[", "").rstrip("]"))
        if v is not None and cast:
            object.__setattr__(config, f.name, cast(v))
