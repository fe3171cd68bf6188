"""The prediction side shared by the estimators: labels, probabilities, ages, frames, score."""

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from ._persistence import save as save_estimator
from ._targets import class_ages, transform_frame, validate_targets
from .preprocessing._age import aggregate_age_proba
from .preprocessing._images import as_image_source

__all__ = ["MultiAttributeOutputMixin"]


class MultiAttributeOutputMixin:
    """Turns per-attribute probabilities into every output the estimators offer.

    A subclass implements ``_predict_probas(X) -> (probas, ok)``: a list with
    one (n_samples, n_classes_k) array per attribute in ``classes_[k]`` order,
    and a boolean mask of the images that could be read (the other rows hold
    NaN). It sets ``attributes_``, ``classes_``, ``_one_d`` and
    ``age_binner_`` in ``fit``.
    """

    def _class_lists(self):
        return [self.classes_] if self._one_d else self.classes_

    def predict_proba(self, X):
        """Class probabilities for each attribute.

        Returns
        -------
        list of ndarray of shape (n_samples, n_classes_k)
            In ``classes_[k]`` order; rows sum to one. A single array when the
            estimator was fitted on 1-D y.
        """
        probas, _ = self._predict_probas(X)
        return probas[0] if self._one_d else probas

    def _labels_from(self, probas, ok):
        out = np.empty((len(ok), len(probas)), dtype=object)
        for k, (p, classes) in enumerate(zip(probas, self._class_lists())):
            labels = np.empty(len(ok), dtype=object)
            labels[ok] = classes[np.argmax(p[ok], axis=1)]
            labels[~ok] = None
            out[:, k] = labels
        return out

    def predict(self, X):
        """Predicted labels.

        Returns
        -------
        ndarray of shape (n_samples, n_attributes)
            Columns in ``attributes_`` order, original labels (dtype object).
            1-D when the estimator was fitted on 1-D y.
        """
        probas, ok = self._predict_probas(X)
        out = self._labels_from(probas, ok)
        if self._one_d:
            return out[:, 0].astype(self.classes_.dtype) if ok.all() else out[:, 0]
        return out

    def predict_frame(self, X, proba=False, age_groups=None):
        """Predictions as a DataFrame with one column per attribute, from one pass over X.

        Parameters
        ----------
        proba : bool, default=False
            Also add a ``<attribute>_proba`` column with the probability of
            the predicted class, and ``age_years`` (see :meth:`predict_age`).
        age_groups : "fairface", int, sequence of int or None, default=None
            Also add an ``age_group`` column: the groups of these bins read
            from the age head's distribution (see :meth:`predict_age_group`).
        """
        if age_groups is not None:
            self._age_index()  # before a pass over X
        probas, ok = self._predict_probas(X)
        labels = self._labels_from(probas, ok)
        frame = pd.DataFrame({a: labels[:, k] for k, a in enumerate(self.attributes_)})
        if proba:
            for a, p in zip(self.attributes_, probas):
                top = np.full(len(ok), np.nan)
                top[ok] = p[ok].max(axis=1)  # unreadable rows stay NaN
                frame[f"{a}_proba"] = top
            if "age" in self.attributes_:
                frame["age_years"] = self._age_from(probas[self._age_index()])
        if age_groups is not None:
            frame["age_group"] = self._age_groups_from(probas, ok, age_groups)
        return frame

    def _age_values(self):
        return class_ages(self.age_binner_, self._class_lists()[self._age_index()])

    def _age_from(self, proba, method="expected"):
        values = self._age_values()
        if method == "expected":
            return proba @ values
        if method == "argmax":
            out = np.full(len(proba), np.nan)
            ok = ~np.isnan(proba).any(axis=1)
            out[ok] = values[np.argmax(proba[ok], axis=1)]
            return out
        raise ValueError(
            f"The 'method' parameter must be 'expected' or 'argmax'. Got {method!r} instead."
        )

    def predict_age(self, X, method="expected"):
        """Estimated age in years.

        Parameters
        ----------
        method : {"expected", "argmax"}, default="expected"
            The expected value of the age head's distribution over each
            class's representative age (exact age, or a group's midpoint), or
            the representative age of the most probable class.

        Returns
        -------
        ndarray of shape (n_samples,) of float
        """
        check_is_fitted(self)
        k = self._age_index()
        probas, _ = self._predict_probas(X)
        return self._age_from(probas[k], method)

    def predict_age_group(self, X, bins="fairface"):
        """Age groups read from the age head's distribution.

        The probabilities of the age classes are summed into the groups that
        hold their representative ages, and the most probable group is
        returned: a model trained on exact ages answers in FairFace's nine
        groups, say.

        Parameters
        ----------
        bins : "fairface", int or sequence of int, default="fairface"
            The groups, as in :class:`~gar_sklearn.preprocessing.AgeBinner`.

        Returns
        -------
        ndarray of shape (n_samples,), dtype object
            None for unreadable images.
        """
        check_is_fitted(self)
        self._age_index()  # before a pass over X
        return self._age_groups_from(*self._predict_probas(X), bins)

    def _age_index(self):
        if "age" not in self.attributes_:
            raise ValueError(f"This estimator predicts {list(self.attributes_)}, not 'age'.")
        return self.attributes_.index("age")

    def _age_groups_from(self, probas, ok, bins):
        group_proba, groups = aggregate_age_proba(
            np.nan_to_num(probas[self._age_index()]), self._age_values(), bins
        )
        out = np.empty(len(ok), dtype=object)
        out[ok] = groups[group_proba[ok].argmax(axis=1)]
        return out

    def transform_targets(self, y):
        """y as this estimator predicts it: a DataFrame of the attributes, ages binned as in fit
        (missing labels stay None where the estimator has ``missing_labels="ignore"``)."""
        check_is_fitted(self)
        missing = getattr(self, "missing_labels", "raise")
        frame, _ = validate_targets(y, self.attributes_, missing_labels=missing)
        return transform_frame(frame, self.attributes_, self.age_binner_)

    def score(self, X, y, sample_weight=None):
        """Mean over attributes of the accuracy of each attribute.

        Ages in y are binned as in fit. Labels never seen in fit count as errors.
        With ``missing_labels="ignore"``, each attribute's accuracy is over the
        rows that have its label (attributes with none are left out).
        """
        check_is_fitted(self)
        source = as_image_source(X)
        truth = self.transform_targets(y)
        if len(truth) != len(source):
            raise ValueError(
                f"X and y have different lengths: X has {len(source)} images, y has "
                f"{len(truth)} rows."
            )
        if sample_weight is not None and len(sample_weight) != len(truth):
            raise ValueError(
                f"sample_weight has {len(sample_weight)} values for {len(truth)} images in X."
            )
        pred = self.predict(source.items).reshape(len(truth), -1)
        weights = None if sample_weight is None else np.asarray(sample_weight)
        accs = []
        for k, a in enumerate(self.attributes_):
            hit = np.asarray([p == t for p, t in zip(pred[:, k], truth[a].tolist())], dtype=float)
            labelled = truth[a].notna().to_numpy()
            if labelled.any():
                w = None if weights is None else weights[labelled]
                accs.append(np.average(hit[labelled], weights=w))
        return float(np.mean(accs)) if accs else float("nan")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False  # images: paths, PIL images, (n, H, W[, 3]) arrays
        tags.input_tags.three_d_array = True
        tags.input_tags.string = True
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.non_deterministic = self.random_state is None
        return tags

    def save(self, path):
        """Save the fitted estimator to ``path`` as data and tensors.

        The file holds the parameters, the fitted attributes, the training
        history and the network's weights; :func:`gar_sklearn.load` reads it
        without running code from it. Parameters that are not data (such as
        an augmenter of another library) are left out with a warning.

        Parameters
        ----------
        path : str or os.PathLike
        """
        check_is_fitted(self)
        save_estimator(self, path)
