"""Host <-> device copies made by the trainer, counted with torch.profiler.

The claim under test: the data goes to the device once, whatever the number of epochs. The
profiler records every `aten::to` / `aten::_to_copy` (what `.to()`, `.cpu()` and `.cuda()`
dispatch to) with its input's shape, so copies of data-sized tensors (the data's row count
or more) can be told from the parameter- and scalar-sized ones. The latter are expected
every epoch: the loss read for early stopping and L-BFGS's line search are host decisions.
On CUDA the profiler's device activity also lists each memcpy, host-to-device (HtoD) and
device-to-host (DtoH).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd
import torch
from torch.profiler import ProfilerActivity, profile

from regflow.tasks.train import fit_linear, resolve_config

MOVES = ("aten::to", "aten::_to_copy")


@dataclass(frozen=True)
class TransferCount:
    preset: str
    epochs: int
    rows: int
    device: str
    data_moves: int  # aten::to / _to_copy on a data-sized tensor: the upload
    small_moves: int  # on parameter- or scalar-sized tensors (loss reads, line search)
    memcpy_htod: int  # CUDA only (0 elsewhere): host-to-device memcpy operations
    memcpy_dtoh: int  # CUDA only: device-to-host memcpy operations


def count_transfers(
    frame: pd.DataFrame,
    features: list[str],
    target: str,
    preset: str,
    epochs: int,
    device: torch.device,
) -> TransferCount:
    """Profile one fit of exactly `epochs` epochs (early stopping off) and count its copies."""
    if len(frame) <= len(features) + 1:
        raise ValueError("too few rows to tell data-sized copies from parameter-sized ones")
    config = replace(resolve_config(preset, epochs=epochs), early_stopping=False)  # type: ignore[arg-type]
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities, record_shapes=True) as prof:
        result = fit_linear(frame, features, target, config, device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    if result.epochs_run != epochs:
        raise RuntimeError(f"ran {result.epochs_run} epochs, not {epochs}")
    rows = len(frame)
    data = small = htod = dtoh = 0
    for event in prof.events():
        if event.name in MOVES:
            shape = event.input_shapes[0] if event.input_shapes else []
            if shape and shape[0] >= rows:
                data += 1
            else:
                small += 1
        elif "memcpy" in event.name.lower():
            htod += "HtoD" in event.name
            dtoh += "DtoH" in event.name
    return TransferCount(preset, epochs, rows, str(device), data, small, htod, dtoh)


def moved_once(few: TransferCount, many: TransferCount) -> bool:
    """The same data-sized copies and uploads at few and at many epochs: moved once, up front."""
    return (few.data_moves, few.memcpy_htod) == (many.data_moves, many.memcpy_htod) and (
        few.data_moves >= 1
    )
