"""Logistic regression on WOE features inside SPU, with no dealer: the scorecard's coefficients.

Inputs, each secret-shared into the SPU by its owner (CHEETAH, two nodes: the
label owner and a partner; no party holds randomness that opens another's
shares):

* the label owner's own WOE-coded training rows and its labels;
* per partner, the one-hot matrix of its rows' fine bins (from the partner);
* per partner, a block matrix mapping those bins to the WOE of the features
  the label owner selected (from the label owner, which alone knows WOE).

The SPU multiplies the last two, so a partner's WOE features exist only as
shares; the model is fitted by mini-batch gradient descent in the SPU, and only
the coefficients are revealed, to the label owner alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

SIGMOID = "real"  # the logistic itself (SPU evaluates exp): the points keep their odds


def design(own: np.ndarray, onehots: list[np.ndarray], tables: list[np.ndarray]) -> Any:
    """Every training row's WOE features (own first, partners' in order) and a column of ones."""
    import jax.numpy as jnp

    cols = [own] + [o @ t for o, t in zip(onehots, tables, strict=True)]
    ones = jnp.ones((own.shape[0], 1), dtype=own.dtype)
    return jnp.concatenate([*cols, ones], axis=1)


def epoch(x: Any, y: Any, w: Any, mask: Any, learning_rate: float, l2: float, batch: int) -> Any:
    """One pass of mini-batch gradient descent for every variant at once.

    ``w`` and ``mask`` are (features + 1) x variants: column v fits only the
    features its mask keeps (the last row, the bias, is always kept and never
    penalised). One matrix product per batch serves every variant, so fitting
    a model's leave-one-category-out variants costs little more than the model.
    """
    import jax.numpy as jnp
    from secretflow.utils.sigmoid import SigType, sigmoid

    y = y.reshape((-1, 1))
    penalty = jnp.concatenate([jnp.ones((w.shape[0] - 1, 1)), jnp.zeros((1, 1))], axis=0) * l2
    for i in range(x.shape[0] // batch):
        xs, ys = x[i * batch : (i + 1) * batch], y[i * batch : (i + 1) * batch]
        err = sigmoid(xs @ (w * mask), SigType(SIGMOID)) - ys
        w = w - learning_rate * ((xs.T @ err / batch) * mask + penalty * w)
    return w * mask


def fit(spu: Any, x: Any, y: Any, mask: Any, epochs: int, learning_rate: float, l2: float, batch: int,
        progress: Callable[[int], None] | None = None) -> Any:  # fmt: skip
    """The coefficients (features, then the bias; one column per variant of ``mask``) as an SPU object.

    ``x`` from :func:`design`; ``y`` and ``mask`` in the SPU (the mask is the label owner's input,
    so which features a variant keeps is not revealed)."""
    import jax.numpy as jnp
    import secretflow as sf

    w = spu(lambda m: jnp.zeros(m.shape, dtype=jnp.float32))(mask)
    for e in range(epochs):
        w = spu(epoch, static_argnames=("batch",))(x, y, w, mask, learning_rate, l2, batch=batch)
        if progress is not None:
            sf.wait([w])  # SPU calls are queued: wait, so the progress shown is the real one
            progress(e + 1)
    return w


def logits(x: Any, w: Any) -> Any:
    """Every row's log-odds under every variant (rows x variants)."""
    return x @ w


def covariance(x: Any) -> Any:
    """The WOE features' covariance matrix (the column of ones left out): an aggregate for the label owner."""
    xc = x[:, :-1] - x[:, :-1].mean(axis=0)
    return xc.T @ xc / x.shape[0]
