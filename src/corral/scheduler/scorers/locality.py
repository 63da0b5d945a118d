"""Image locality: a host that already ran the image starts the task without a pull."""

from __future__ import annotations

import numpy as np

from corral.scheduler.cluster import Floats
from corral.scheduler.rows import Rows


def image_locality(rows: Rows) -> Floats:
    image = rows.ctx.image
    n = rows.size()
    if image is None:
        return np.zeros(n, dtype=np.float32)
    return image[rows.sel].astype(np.float32)
