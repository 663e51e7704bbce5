"A third-party reader in its own file: NumPy `.npy` 2-D arrays as planar images (one registration, nothing else)."
import numpy as np
from biovfm.readers import Planar, RejectError, register_reader


@register_reader('npy', suffixes=('.npy',))
def read_npy(files, opts):
    array = np.load(files[0], allow_pickle=False)
    if array.ndim != 2:
        raise RejectError(f'npy reader: a 2-D array is needed, got shape {array.shape}')
    return [Planar(array, meta=dict(reader='toy_reader'))]
