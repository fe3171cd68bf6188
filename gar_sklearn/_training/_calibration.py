"""Temperature scaling: one temperature per head, fitted on the validation split.

A head's calibrated probabilities are ``softmax(logits / T)``: dividing every
logit by the same ``T > 0`` keeps each row's order, so predictions do not
change, and the ``T`` minimising the negative log-likelihood of the
validation labels corrects a network's over- (``T > 1``) or
under-confidence (Guo et al., 2017).

A prediction with test-time flip averages the calibrated probabilities of an
image and of its mirror image, so its temperatures are fitted on that
average, the probabilities it returns; the average of two views is less
confident than either, so single views would call for other temperatures.
The average of two calibrated views can, in rare rows, rank the classes
differently from the uncalibrated average.
"""

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

__all__ = ["fit_temperature", "fit_temperatures", "negative_log_likelihood"]

# the search runs over log(1 / T); e^-7 ... e^7 covers any temperature worth using
_LOG_BOUND = 7.0
# a grid step of 0.25 in log(1 / T): temperatures 1.28 times apart
_GRID_POINTS = 57


def negative_log_likelihood(logits, labels, temperature=1.0):
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / temperature)``."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    log_p = log_softmax(logits / temperature, axis=1)
    return float(-log_p[np.arange(len(labels)), labels].mean())


def _log_likelihoods(logits, labels, mirrored_logits=None):
    """``log_p(log_beta)``: each row's log-probability of its label under
    ``softmax(logits * e^log_beta)``, averaged with the mirrored logits' when given."""
    rows, labels = np.arange(len(labels)), np.asarray(labels)
    views = [np.asarray(logits, dtype=np.float64)]
    if mirrored_logits is not None:
        views.append(np.asarray(mirrored_logits, dtype=np.float64))
    views = [v - v.max(axis=1, keepdims=True) for v in views]

    def log_p(log_beta):
        per_view = [log_softmax(v * np.exp(log_beta), axis=1)[rows, labels] for v in views]
        if len(per_view) == 1:
            return per_view[0]
        # the log of the average of the two probabilities
        return np.logaddexp(*per_view) - np.log(2.0)

    return log_p


def fit_temperature(logits, labels, mirrored_logits=None):
    """The temperature ``T`` minimising the negative log-likelihood of ``labels``.

    The probabilities are ``softmax(logits / T)`` or, with
    ``mirrored_logits`` (the logits of the same images' mirror images), their
    average with ``softmax(mirrored_logits / T)``: what a prediction with
    test-time flip returns. The likelihood of one view is convex in ``1 /
    T``; that of the average need not be, so a grid over ``log(1 / T)``
    brackets the minimum before a bounded search refines it.

    Parameters
    ----------
    logits : array of shape (n_samples, n_classes)
    labels : array of int of shape (n_samples,)
    mirrored_logits : array of shape (n_samples, n_classes), optional

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
    labels = np.asarray(labels)
    if len(labels) == 0:
        return 1.0
    log_p = _log_likelihoods(logits, labels, mirrored_logits)

    def nll(log_beta):
        return -log_p(log_beta).mean()

    grid = np.linspace(-_LOG_BOUND, _LOG_BOUND, _GRID_POINTS)
    best = int(np.argmin([nll(b) for b in grid]))
    step = grid[1] - grid[0]
    low, high = max(grid[best] - step, -_LOG_BOUND), min(grid[best] + step, _LOG_BOUND)
    result = minimize_scalar(nll, bounds=(low, high), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(-result.x))


def fit_temperatures(net, dataset, mirrored=None):
    """One temperature per head of ``net``, fitted on ``dataset``'s labels (the
    validation split) with the net's current weights; with ``mirrored`` (the
    same rows' mirror images, in the same order), on the flip-averaged
    probabilities that a prediction with test-time flip returns."""
    logits, codes = _stacked_logits(net, dataset)
    if mirrored is None:
        return [fit_temperature(lg, codes[:, k]) for k, lg in enumerate(logits)]
    mirrored_logits, _ = _stacked_logits(net, mirrored)
    return [
        fit_temperature(lg, codes[:, k], mg)
        for k, (lg, mg) in enumerate(zip(logits, mirrored_logits))
    ]


def _stacked_logits(net, dataset):
    """Each head's logits over ``dataset`` as one array, and the labels (n, n_heads)."""
    outputs, labels = None, []
    for logits, y in net.iter_logits(dataset):
        if outputs is None:
            outputs = [[] for _ in logits]
        for out, lg in zip(outputs, logits):
            out.append(lg)
        labels.append(torch.as_tensor(y))
    return [torch.cat(out).numpy() for out in outputs], torch.cat(labels).numpy()
