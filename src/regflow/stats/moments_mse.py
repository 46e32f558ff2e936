"""The MSE of a linear model from merged column statistics: O(d^2) per evaluation, any n.

For y ~ Xw + b the mean squared error depends on the data only through n, the column means
and the centred cross products of [X, y], which merge across blocks and partitions. This
module turns them into the standardisation training uses and into the loss and gradient in
training units, on the training device.

The loss is not evaluated as the expanded quadratic (w'Gw + 2b w's + n b^2 - 2w'c - 2bt + q)/n:
near the optimum its terms cancel to the small residual, so in float32 the loss loses about
the digits of var(y) / MSE (at 1 - R^2 = 7e-6, a float32 loss 4e-3 off, relative). The same
function written about its optimum (w*, b*), found once in float64, has no such
cancellation (2e-8 off there):

    loss = rho + d'Ad + (m'd + e)^2,   d = w - w*, e = b - b*, A = K_xx / n,

with m the training-unit feature means, K the centred cross products in training units and
rho the least MSE. Any optimum will do where the optimum is not unique (a constant column):
the identity holds for each of them.
"""

from __future__ import annotations

import numpy as np
import torch

from regflow.schemas.results import Standardization


def standardization_from_moments(
    n: int, mean: np.ndarray, cross: np.ndarray, *, standardize: bool, fit_intercept: bool
) -> Standardization:
    """The scaling train.standardization computes from the rows, here from the moments.

    Mean and RMS about the mean with an intercept, RMS about 0 without one; scale 1 for a
    column whose scale is 0. Features first, the target last, as in `mean` and `cross`.
    """
    if not standardize:
        d = len(mean) - 1
        return Standardization(x_mean=[0.0] * d, x_scale=[1.0] * d, y_mean=0.0, y_scale=1.0)
    squares = np.diag(cross) / n if n else np.zeros(len(mean))
    if fit_intercept:
        centre = np.asarray(mean, dtype=np.float64)
    else:
        centre = np.zeros(len(mean))
        squares = squares + np.square(mean)  # mean square about 0 = variance + mean^2
    scale = np.sqrt(np.maximum(squares, 0.0))
    scale[~(scale > 0)] = 1.0
    return Standardization(
        x_mean=centre[:-1].tolist(),
        x_scale=scale[:-1].tolist(),
        y_mean=float(centre[-1]),
        y_scale=float(scale[-1]),
    )


def _check_moments(n: int, mean: np.ndarray, cross: np.ndarray) -> None:
    k = len(mean)
    if n < 1 or k < 2 or cross.shape != (k, k):
        raise ValueError(
            f"moments of {n} rows: mean {mean.shape} and cross products {cross.shape} must be "
            "(d + 1,) and (d + 1, d + 1) with d >= 1 features and n >= 1"
        )
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(cross))):
        raise ValueError("the moments are not finite")


class MomentsMSE:
    """Loss and gradient of mean((Xw + b - y)^2) in training units, from the moments.

    `mean` (d + 1,) and `cross` (d + 1, d + 1) describe [X, y] in original units (float64);
    `scaling` maps them to training units. Everything is prepared in float64, then cast once
    to `dtype` on `device`.
    """

    def __init__(
        self,
        n: int,
        mean: np.ndarray,
        cross: np.ndarray,
        scaling: Standardization,
        *,
        fit_intercept: bool,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        mean = np.asarray(mean, dtype=np.float64)
        cross = np.asarray(cross, dtype=np.float64)
        _check_moments(n, mean, cross)
        centre = np.array([*scaling.x_mean, scaling.y_mean])
        scale = np.array([*scaling.x_scale, scaling.y_scale])
        m = (mean - centre) / scale  # the training-unit means
        k = (cross / scale[:, None]) / scale[None, :]  # centred cross products, training units
        d = len(m) - 1
        # Second moments about the centre the model has: the means with an intercept, 0 without.
        about = k if fit_intercept else k + n * np.outer(m, m)
        w_star = _solve(about[:d, :d], about[:d, d])
        b_star = float(m[d] - m[:d] @ w_star) if fit_intercept else 0.0
        v = np.append(w_star, -1.0)
        rho = max(float(v @ about @ v) / n, 0.0)  # the least MSE
        self.fit_intercept = fit_intercept
        self.least_loss = rho

        def put(values: np.ndarray | float) -> torch.Tensor:
            # Cast on the CPU first: MPS has no float64 to receive it.
            return torch.as_tensor(np.asarray(values, dtype=np.float64)).to(dtype).to(device)

        self.a = put(k[:d, :d] / n)
        self.m = put(m[:d])
        self.w_star = put(w_star)
        self.b_star = put(b_star)
        self.rho = put(rho)

    def loss(self, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """The loss at (weight, bias), differentiable: the autograd path."""
        delta = weight.reshape(-1) - self.w_star
        shift = self.m @ delta
        if bias is not None:
            shift = shift + (bias.reshape(()) - self.b_star)
        return self.rho + delta @ (self.a @ delta) + shift * shift

    @torch.no_grad()
    def __call__(
        self, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(loss, d loss / d weight, d loss / d bias), in closed form."""
        delta = weight.detach().reshape(-1) - self.w_star
        shift = self.m @ delta
        if bias is not None:
            shift = shift + (bias.detach().reshape(()) - self.b_star)
        a_delta = self.a @ delta
        loss = self.rho + delta @ a_delta + shift * shift
        grad_w = 2.0 * (a_delta + shift * self.m)
        grad_b = (2.0 * shift).reshape(1) if bias is not None else None
        return loss, grad_w.reshape(weight.shape), grad_b


def _solve(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """A least-squares optimum from its normal equations, columns scaled to unit diagonal.

    SVD-based, so a column without variance (a zero row and column) gets weight 0 instead of
    a singular-matrix error; the scaling keeps the cut-off relative to each column's size.
    """
    diag = np.diag(gram)
    root = np.sqrt(np.where(diag > 0, diag, 1.0))
    scaled = (gram / root[:, None]) / root[None, :]
    solution, *_ = np.linalg.lstsq(scaled, rhs / root, rcond=None)
    out: np.ndarray = solution / root
    return out
