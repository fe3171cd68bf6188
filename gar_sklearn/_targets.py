"""Multi-attribute targets: validation, age binning and label encoding (no torch)."""

import numbers

import numpy as np
import pandas as pd

from .preprocessing._age import AgeBinner, age_group_midpoints

# The code of a missing label: torch's cross-entropy ignores it (its default ignore_index).
MISSING = -100

__all__ = [
    "MISSING",
    "as_target_frame",
    "check_attributes",
    "check_validation_pair",
    "class_ages",
    "encode_targets",
    "fit_encoders",
    "transform_frame",
    "validate_targets",
]


def check_attributes(attributes):
    """The ``attributes`` parameter as a tuple of distinct names."""
    if isinstance(attributes, str):
        attributes = (attributes,)
    try:
        attributes = tuple(attributes)
    except TypeError:
        attributes = None
    if (
        not attributes
        or len(set(attributes)) != len(attributes)
        or not all(isinstance(a, (str, numbers.Integral)) for a in attributes)
    ):
        raise ValueError(
            "The 'attributes' parameter must be a non-empty sequence of distinct column names, "
            f"such as ('gender', 'age', 'race'). Got {attributes!r} instead."
        )
    return attributes


def as_target_frame(y, attributes=None, name="y"):
    """``y`` as a DataFrame with a positional index: the one reading of targets.

    A DataFrame keeps its columns; a named Series becomes that one column; an
    array (or an unnamed Series) gets ``attributes`` as its column names, one
    per column (a 1-D array is one column).

    Examples
    --------
    >>> as_target_frame([["Male", 30], ["Female", 41]], ("gender", "age"))
       gender age
    0    Male  30
    1  Female  41
    """
    if isinstance(y, pd.DataFrame):
        return y.reset_index(drop=True)
    if isinstance(y, pd.Series):
        if y.name is not None:
            return y.reset_index(drop=True).to_frame()
        y = y.to_numpy()
    arr = y if isinstance(y, np.ndarray) else np.asarray(y, dtype=object)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if attributes is None:
        raise ValueError(
            f"{name} is an array of shape {arr.shape}: pass a DataFrame whose columns name the "
            "attributes."
        )
    if arr.ndim != 2 or arr.shape[1] != len(attributes):
        raise ValueError(
            f"{name} must have one column per attribute {list(attributes)}: expected shape "
            f"(n_samples, {len(attributes)}), got {arr.shape}."
        )
    return pd.DataFrame({a: arr[:, k] for k, a in enumerate(attributes)})


def check_validation_pair(validation_data, weights=False):
    """The ``validation_data`` argument of fit as ``(X_valid, y_valid)``, or, with
    ``weights``, also ``(X_valid, y_valid, sample_weight_valid)``."""
    lengths = (2, 3) if weights else (2,)
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in lengths:
        kind = (
            f"a {type(validation_data).__name__} of {len(validation_data)} items"
            if isinstance(validation_data, (tuple, list))
            else f"a {type(validation_data).__name__}"
        )
        triple = " or a triple (X_valid, y_valid, sample_weight_valid)" if weights else ""
        raise ValueError(
            f"validation_data must be a pair (X_valid, y_valid) of images and their labels"
            f"{triple}; got {kind}."
        )
    return validation_data


def validate_targets(y, attributes, n_samples=None, missing_labels="raise"):
    """Check y and return it as a DataFrame with one column per attribute.

    Parameters
    ----------
    y : DataFrame, 2-D array-like or 1-D array-like
        A DataFrame must hold every attribute as a column (others are
        ignored); a 2-D array has the attributes as columns in order; a 1-D
        array is allowed when there is a single attribute.
    attributes : tuple of str
    n_samples : int, optional
        Number of images, to check the lengths agree.
    missing_labels : {"raise", "ignore"}, default="raise"
        Whether a missing label (None or NaN) raises, or is kept as missing.

    Returns
    -------
    frame : DataFrame
    one_d : bool
        Whether y was 1-D (predictions are then 1-D too).
    """
    if y is None:
        raise ValueError(
            "y is required: a DataFrame with the columns "
            f"{list(attributes)} (or a 2-D array with them in that order)."
        )
    one_d = False
    if isinstance(y, pd.DataFrame):
        missing = [a for a in attributes if a not in y.columns]
        repeated = [a for a in attributes if a not in missing and list(y.columns).count(a) > 1]
        if repeated:
            raise ValueError(
                f"y has more than one column named {repeated[0]!r} ({list(y.columns).count(repeated[0])} "
                f"columns): each attribute's labels must be one column. y has columns "
                f"{list(y.columns)}; drop or rename the duplicates."
            )
        if missing:
            raise ValueError(
                f"y is missing the attribute column(s) {missing}: attributes={list(attributes)}, "
                f"y has columns {list(y.columns)}. Set 'attributes' to the columns you have."
            )
        frame = y.loc[:, list(attributes)].reset_index(drop=True)
    else:
        values = y.to_numpy() if isinstance(y, pd.Series) else y  # read by position
        if not isinstance(values, np.ndarray):
            values = np.asarray(values, dtype=object)
        one_d = values.ndim == 1
        if one_d and len(attributes) != 1:
            raise ValueError(
                f"y is 1-D, so it holds one attribute, but attributes={list(attributes)} names "
                f"{len(attributes)}. Pass y as a DataFrame with these columns, or set "
                "attributes to a single name."
            )
        frame = as_target_frame(values, attributes)
    if n_samples is not None and len(frame) != n_samples:
        raise ValueError(
            f"X and y have different lengths: X has {n_samples} images, y has {len(frame)} rows."
        )
    if len(frame) == 0:
        raise ValueError("y is empty: expected at least one labelled image, got 0.")
    if missing_labels == "ignore":
        return frame, one_d
    for a in attributes:
        missing = frame[a].isna().to_numpy()
        if missing.any():
            rows = np.flatnonzero(missing)
            raise ValueError(
                f"y has {len(rows)} missing label(s) in column {a!r} (rows {rows[:10].tolist()}"
                f"{' ...' if len(rows) > 10 else ''}). Drop or fill these rows before fitting, "
                "or set missing_labels='ignore' to learn each attribute from its labelled rows."
            )
    return frame, one_d


def _column_values(col):
    values = col.to_numpy()
    if values.dtype.kind in "iub":
        return values
    if values.dtype.kind == "f":
        infinite = np.flatnonzero(np.isinf(values))
        if len(infinite):
            raise ValueError(
                f"y[{col.name!r}] holds the label {values[infinite[0]]}, which is not a finite "
                f"number (rows {infinite[:10].tolist()}). Drop or fix these rows before fitting."
            )
        return values.astype(np.int64) if np.all(values == np.round(values)) else values
    values = values.astype(object)
    kinds = {type(v) for v in values}
    if len(kinds) > 1 and not all(issubclass(k, numbers.Number) for k in kinds):
        kinds = sorted(k.__name__ for k in kinds)
        raise ValueError(
            f"Labels of column {col.name!r} mix types {kinds}; use one type per column."
        )
    return values


def fit_encoders(frame, attributes, age_bins=None):
    """Classes per attribute, and the fitted AgeBinner when ages are binned.

    Only labelled rows count: a missing label (None or NaN) is no class.

    Returns
    -------
    classes : list of ndarray
    binner : AgeBinner or None
    """
    binner = None
    classes = []
    for a in attributes:
        values = frame[a][frame[a].notna()]
        if len(values) == 0:
            raise ValueError(
                f"y[{a!r}] holds no label at all: nothing to learn the {a!r} head from. Drop "
                "this attribute from 'attributes' or provide labelled rows."
            )
        if a == "age" and age_bins is not None:
            numeric = pd.to_numeric(values, errors="coerce")
            if numeric.isna().any():
                bad = values[numeric.isna()].iloc[0]
                raise ValueError(
                    f"age_bins={age_bins!r} needs numeric ages in y['age']; got {bad!r}. "
                    "Use age_bins=None for ages that are already groups."
                )
            binner = _binned(AgeBinner(bins=age_bins).fit, numeric, age_bins)
            classes.append(binner.classes_)
        else:
            classes.append(_classes(values))
    return classes, binner


def _classes(col):
    """The sorted distinct labels of a column; a ValueError naming it for labels that
    cannot be classes (lists, dicts, complex numbers: unhashable or unordered)."""
    values = _column_values(col)
    try:
        set(values.tolist())
        return np.unique(values)
    except TypeError as exc:
        kinds = sorted({type(v).__name__ for v in values.tolist()})
        raise ValueError(
            f"The labels of y[{col.name!r}] must be strings or numbers; got values of type(s) "
            f"{kinds} ({exc})."
        ) from None


def transform_frame(frame, attributes, binner):
    """Labels as the estimator predicts them (ages binned when a binner is given);
    missing labels stay missing."""
    out = frame.copy()
    if binner is not None and "age" in attributes:
        labelled = frame["age"].notna().to_numpy()
        ages = pd.to_numeric(frame["age"][labelled])
        binned = _binned(binner.transform, ages, binner.bins)
        if labelled.all():
            out["age"] = binned
        else:
            out["age"] = np.full(len(frame), None, dtype=object)
            out.loc[labelled, "age"] = binned
    return out


def _binned(method, ages, age_bins):
    """``method(ages)`` (an AgeBinner's fit or transform), its ValueError naming the column
    and the ``age_bins`` parameter."""
    try:
        return method(ages)
    except ValueError as exc:
        raise ValueError(f"y['age'] cannot be binned with age_bins={age_bins!r}: {exc}") from exc


def encode_targets(frame, attributes, classes, binner=None):
    """Integer codes (n, n_attributes), :data:`MISSING` for a missing label; raises on a
    label outside ``classes``."""
    frame = transform_frame(frame, attributes, binner)
    codes = np.full((len(frame), len(attributes)), MISSING, dtype=np.int64)
    for k, a in enumerate(attributes):
        labelled = frame[a].notna().to_numpy()
        column = frame[a][labelled]
        values = (
            _column_values(column) if not (binner is not None and a == "age") else column.to_numpy()
        )
        lookup = {v: i for i, v in enumerate(classes[k].tolist())}
        try:
            codes[labelled, k] = [lookup[v] for v in values.tolist()]
        except KeyError as exc:
            raise ValueError(
                f"y[{a!r}] holds the label {exc.args[0]!r}, which was not seen in fit; known "
                f"labels: {classes[k].tolist()}."
            ) from None
    return codes


def class_ages(binner, classes):
    """The representative age in years of each age class: the binner's group
    midpoints, else the classes read as ages or groups ("20-29", "70+")."""
    if binner is not None:
        return binner.midpoints_
    return age_group_midpoints(classes)
