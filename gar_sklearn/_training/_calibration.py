"""Temperature scaling: one temperature per head, fitted on the validation split.

A head's calibrated probabilities are ``softmax(logits / T)``: dividing every
logit by the same ``T > 0`` keeps each row's order, so predictions do not
change, and the ``T`` minimising the negative log-likelihood of the
validation labels corrects a network's over- (``T > 1``) or
under-confidence (Guo et al., 2017).
"""

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

__all__ = ["fit_temperature", "fit_temperatures", "negative_log_likelihood"]

# the search runs over log(1 / T); e^-7 ... e^7 covers any temperature worth using
_LOG_BOUND = 7.0


def negative_log_likelihood(logits, labels, temperature=1.0):
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / temperature)``."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    log_p = log_softmax(logits / temperature, axis=1)
    return float(-log_p[np.arange(len(labels)), labels].mean())


def fit_temperature(logits, labels):
    """The temperature ``T`` minimising :func:`negative_log_likelihood`.

    The likelihood is convex in ``1 / T``, so a bounded one-dimensional search
    over ``log(1 / T)`` finds its minimum.

    Parameters
    ----------
    logits : array of shape (n_samples, n_classes)
    labels : array of int of shape (n_samples,)

    Returns
    -------
    float

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> signal = rng.normal(size=(2000, 3))
    >>> labels = np.array([rng.choice(3, p=np.exp(s) / np.exp(s).sum()) for s in signal])
    >>> round(fit_temperature(4 * signal, labels), 1)  # logits 4 times too confident
    4.0
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    if len(labels) == 0:
        return 1.0
    shifted = logits - logits.max(axis=1, keepdims=True)
    rows = np.arange(len(labels))

    def nll(log_beta):
        log_p = log_softmax(shifted * np.exp(log_beta), axis=1)
        return -log_p[rows, labels].mean()

    result = minimize_scalar(
        nll, bounds=(-_LOG_BOUND, _LOG_BOUND), method="bounded", options={"xatol": 1e-6}
    )
    return float(np.exp(-result.x))


def fit_temperatures(net, dataset):
    """One temperature per head of ``net``, fitted on ``dataset``'s labels (the
    validation split) with the net's current weights."""
    outputs, labels = None, []
    for logits, y in net.iter_logits(dataset):
        if outputs is None:
            outputs = [[] for _ in logits]
        for out, lg in zip(outputs, logits):
            out.append(lg)
        labels.append(torch.as_tensor(y))
    codes = torch.cat(labels).numpy()
    return [fit_temperature(torch.cat(out).numpy(), codes[:, k]) for k, out in enumerate(outputs)]
