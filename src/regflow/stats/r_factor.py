"""R factors of tall matrices, and least squares read off an R factor.

Shared by the one-table QR analysis (``regflow.stats.least_squares``) and the partition-wise
route (``regflow.stats.partition_qr``): both reduce the pre-scaled [1 | X | y] to its R factor by
tall-skinny QR (numpy.linalg.qr on chunks, the R factors merged in a tree, as Dask's tsqr does)
and solve from it in unit-norm column coordinates (SVD for the rank and condition number).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt

__all__ = ["ScaledSolution", "qr_r", "solve_scaled", "stacked_r"]

_EPS = float(np.finfo(np.float64).eps)
# Singular values below this fraction of the largest count as zero. The columns have unit
# norm, so this is a statement about relative accuracy of the design, independent of units.
_RANK_RTOL = 100.0 * _EPS


def _chunk_rows(k: int) -> int:
    # Small enough that each Householder step stays in cache and below OpenBLAS's threading
    # threshold (threads spinning on tiny products are slow on a busy machine), at least 2k.
    return max(128, 2 * k)


def qr_r(a: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The R factor of a's QR (batched over any leading axes): numpy.linalg.qr(a, mode="r").

    numpy's stubs give every mode the QRResult pair, but mode="r" returns R alone.
    """
    return cast("npt.NDArray[np.float64]", np.linalg.qr(a, mode="r"))


def stacked_r(a: np.ndarray) -> list[np.ndarray]:
    """Pieces whose stacked R equals the R of the tall matrix a (column-major, [m, k]).

    a is cut into chunks factored by one batched call of numpy.linalg.qr; the chunks' R
    factors are then merged in groups (a tree), every step a Householder QR.
    """
    m, k = a.shape
    chunk = _chunk_rows(k)
    count = m // chunk
    pieces: list[np.ndarray] = []
    if count:
        row_stride, col_stride = a.strides
        chunks = np.lib.stride_tricks.as_strided(
            a, shape=(count, chunk, k), strides=(chunk * row_stride, row_stride, col_stride)
        )
        level = qr_r(chunks)
        group = chunk // k
        while level.shape[0] > 1:
            groups = -(-level.shape[0] // group)
            padded = np.zeros((groups * group, k, k))
            padded[: level.shape[0]] = level
            level = qr_r(padded.reshape(groups, group * k, k))
        pieces.append(level[0])
    if m > count * chunk:
        pieces.append(a[count * chunk :])
    return pieces


def _solve(r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, float]:
    """Coefficients from R = [[R_d, Q^T y], [0, .]] of [A | y]; plus the SVD of R_d."""
    d = r.shape[0] - 1
    r_design = r[:d, :d]
    qty = r[:d, d]
    u, s, vt = np.linalg.svd(r_design)
    largest = float(s[0])
    smallest = float(s[-1])
    if largest > 0.0:
        rank = int(np.count_nonzero(s > largest * _RANK_RTOL))
        condition = largest / smallest if smallest > 0.0 else math.inf
    else:
        rank = 0
        condition = math.inf
    if rank == d:
        # Back-substitution (LU of an upper-triangular matrix pivots nowhere).
        coef = np.linalg.solve(r_design, qty)
    else:
        # Truncated SVD: the minimum-norm solution among those the design cannot tell apart.
        coef = vt[:rank].T @ ((u[:, :rank].T @ qty) / s[:rank])
    return coef, u, s, vt, rank, condition


@dataclass(frozen=True)
class ScaledSolution:
    """What step 3 reads off the R factor, before the residual sweep."""

    coef: np.ndarray  # original units
    coef_y: np.ndarray  # fitted = ((X - mean) * inv_norm) @ coef_y (mean 0 without intercept)
    inv_norm: np.ndarray  # 1 / column norm; 0 for a zero column
    zero: np.ndarray  # bool: zero columns (constant after centring, or all zero)
    rank: int
    condition_number: float
    u: np.ndarray  # left singular vectors of the scaled design's R
    basis_map: np.ndarray  # [d, rank]: design @ basis_map is an orthonormal basis of its columns
    null_space: np.ndarray  # [d, d - rank], scaled column coordinates
    fitted_ms: float  # mean square of the centred fitted values


def solve_scaled(
    r_full: np.ndarray,
    *,
    lead: int,
    spread: np.ndarray,
    y_spread: float,
    norm: np.ndarray,
    n: int,
) -> ScaledSolution:
    """Step 3 from the R factor of the pre-scaled [1 | X | y] (without the 1 when lead is 0).

    norm holds the columns' norms in original units (centred with an intercept); a column whose
    norm is not positive is a zero column and gets coefficient 0.
    """
    d = spread.shape[0]
    zero = ~(norm > 0.0)
    safe_norm = np.where(zero, 1.0, norm)
    inv_norm = np.where(zero, 0.0, 1.0 / safe_norm)
    r = r_full[lead:, lead:].copy()
    r[:, :d] *= spread * inv_norm  # columns of R for A = (X - mean) / norm

    coef_scaled, u, s, vt, rank, condition = _solve(r)
    coef_scaled[zero] = 0.0
    # Fitted values in y's units are A @ coef_y; coefficients in original units follow.
    coef_y = coef_scaled * y_spread
    return ScaledSolution(
        coef=coef_y * inv_norm,
        coef_y=coef_y,
        inv_norm=inv_norm,
        zero=zero,
        rank=rank,
        condition_number=float(condition),
        u=u,
        # Orthonormal basis of the column space: W = A V_r / S_r.
        basis_map=np.ascontiguousarray(vt[:rank].T / s[:rank]),
        null_space=vt[rank:].T.copy(),
        fitted_ms=float(np.sum((r[:d, :d] @ coef_y) ** 2)) / n,
    )
