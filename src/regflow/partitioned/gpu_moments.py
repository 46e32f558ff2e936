"""A partition's moments computed with torch on the run's device (CUDA on a GPU worker).

The cross products are the one O(n d^2) step of a pass; on a worker with a GPU they run there
in float64, block by block (the same centring and Chan merge as moment_sweeps, so the result
merges with moments computed anywhere else). Without CUDA in the worker this is not called.
"""

from __future__ import annotations

import numpy as np

from regflow.stats.moment_sweeps import Data, Moments

BLOCK_ROWS = 1 << 20  # 1M rows x (d + 1) float64 a block: bounded device memory


def torch_moments(data: Data, device_name: str, block_rows: int = BLOCK_ROWS) -> Moments:
    """Sweep 1 over one partition on `device_name` (float64)."""
    import torch

    device = torch.device(device_name)
    total = Moments.empty(data.d + 1)
    columns = [*data.columns, data.y]
    for first in range(0, data.n, block_rows):
        last = min(first + block_rows, data.n)
        rows = slice(first, last) if data.index is None else data.index[first:last]
        block = torch.from_numpy(np.column_stack([c[rows] for c in columns])).to(device)
        mean = block.mean(dim=0)
        centred = block - mean
        part = Moments(
            last - first,
            mean.cpu().numpy(),
            (centred.T @ centred).cpu().numpy(),
            block.amin(dim=0).cpu().numpy(),
            block.amax(dim=0).cpu().numpy(),
        )
        total.merge(part)
    return total
