"""GenderFusionClassifier's shared strategy: one network learns on every face, with a
gender head and, for each other attribute, one head per gender.

Each face's label goes to the column of its own gender (``age@Male`` or
``age@Female``); the other gender's column is missing, and the network
(:class:`MultiAttributeClassifier` with ``missing_labels="ignore"``) averages
each head's loss over the faces of its gender only. The backbone thus learns
from every face, and the age and race decisions are still gender-specific.
"""

import functools

import numpy as np
import pandas as pd

from ._multi_attribute import MultiAttributeClassifier, _dump, _restore
from ._persistence import register_persistence
from ._targets import transform_frame

__all__ = [
    "GenderHeadsNetwork",
    "expand_targets",
    "forget_shared_fit",
    "head_name",
    "route_probas",
    "shared_class_maps",
    "shared_network",
    "shared_probas",
]

STRATEGIES = ("separate", "shared", "finetune")
GENDER_SOURCES = ("auto", "gender_estimator", "shared_network")


def head_name(attribute, gender):
    """The column (and head) of ``attribute`` for the faces of ``gender``: ``"age@Male"``."""
    return f"{attribute}@{gender}"


def head_names(gender_column, attributes, genders):
    """The shared network's attributes: the gender, then each attribute once per gender."""
    return (gender_column,) + tuple(head_name(a, g) for a in attributes for g in genders)


class GenderHeadsNetwork(MultiAttributeClassifier):
    """The shared strategy's network: a :class:`MultiAttributeClassifier` whose
    ``age_sigma`` applies to every per-gender age head (``age@<gender>``).

    Ages reach it already binned (the fusion model's binner, fitted on every
    face), so each age head's classes are age groups or exact ages.
    """

    def _age_soft_targets(self, attributes, classes, binner):
        if self.age_sigma is None:
            return None
        targets = {}
        for k, a in enumerate(attributes):
            if str(a).partition("@")[0] == "age":
                targets[k] = super()._age_soft_targets(("age",), [classes[k]], None)[0]
        return targets or None


register_persistence(GenderHeadsNetwork, _dump, functools.partial(_restore, cls=GenderHeadsNetwork))


def forget_shared_fit(fusion):
    """Mark a fitted fusion model as fitted with ``strategy="separate"``, dropping the
    network of an earlier shared fit."""
    fusion.strategy_ = "separate"
    for name in ("shared_estimator_", "_shared_maps"):
        vars(fusion).pop(name, None)


def shared_network(specialist, gender_column, attributes, genders, age_binned, shares):
    """An unfitted :class:`GenderHeadsNetwork` with the settings of ``specialist``.

    Parameters
    ----------
    specialist : MultiAttributeClassifier
        The template (a clone): its training settings carry over; its
        attributes become one head per gender.
    age_binned : bool
        Whether the ages reach the network binned already (its own
        ``age_bins`` is then None).
    shares : dict
        Each gender's share of the training faces. A gender's head of an
        attribute weighs that share of the attribute's weight in the loss
        (``loss_weights`` of ``specialist``, 1 by default): each head averages
        over its gender's faces only, so the two heads of an attribute then
        weigh about what one head over all faces would, and the gender head
        keeps its weight relative to them.
    """
    if not isinstance(specialist, MultiAttributeClassifier):
        raise ValueError(
            "The 'specialist' parameter must be a MultiAttributeClassifier when strategy is "
            "'shared' or 'finetune' (its settings make the shared network). Got "
            f"{specialist!r} instead."
        )
    params = specialist.get_params(deep=False)
    params = {k: v for k, v in params.items() if k in GenderHeadsNetwork._get_param_names()}
    given = params.get("loss_weights") or {}
    weights = {a: w for a, w in given.items() if a not in attributes}  # the network checks them
    for a in attributes:
        for g in genders:
            weights[head_name(a, g)] = float(given.get(a, 1.0)) * float(shares[g])
    params.update(
        attributes=head_names(gender_column, attributes, genders),
        missing_labels="ignore",
        loss_weights=weights,
        age_bins=None if age_binned else params.get("age_bins"),
    )
    return GenderHeadsNetwork(**params)


def expand_targets(frame, gender_column, attributes, genders, binner, keep=()):
    """y for the shared network: the gender, then each attribute split into one column
    per gender, where a face's label sits in its gender's column and the others are
    missing. Ages are binned by ``binner`` (when given) first. The columns ``keep``
    (the network's ``group_by``: read for balancing and selection, not predicted)
    follow as they are.

    Examples
    --------
    >>> import pandas as pd
    >>> y = pd.DataFrame({"gender": ["Male", "Female"], "race": ["Asian", "White"]})
    >>> expand_targets(y, "gender", ("race",), ("Male", "Female"), None).fillna("-")
       gender race@Male race@Female
    0    Male     Asian           -
    1  Female         -       White
    """
    labels = transform_frame(frame[list(attributes)], attributes, binner)
    gender = frame[gender_column].to_numpy(dtype=object)
    columns = {gender_column: frame[gender_column].to_numpy(dtype=object)}
    for a in attributes:
        values = labels[a].to_numpy(dtype=object)
        for g in genders:
            columns[head_name(a, g)] = np.where(gender == g, values, None)
    for c in keep:
        if c in frame.columns:  # else the network names the missing column itself
            columns.setdefault(c, frame[c].to_numpy(dtype=object))
    return pd.DataFrame(columns)


def shared_class_maps(network, attributes, genders, classes):
    """For each gender, for each attribute: the column in ``classes`` of each class of
    the network's head of that attribute and gender."""
    heads = list(network.attributes_)
    maps = {}
    for g in genders:
        maps[g] = []
        for a, full in zip(attributes, classes):
            labels = network.classes_[heads.index(head_name(a, g))]
            lookup = {v: i for i, v in enumerate(full.tolist())}
            missing = [v for v in labels.tolist() if v not in lookup]
            if missing:
                raise ValueError(
                    f"The shared network's {head_name(a, g)!r} head predicts the class(es) "
                    f"{missing}, which are not among the training set's classes {full.tolist()}."
                )
            maps[g].append(np.asarray([lookup[v] for v in labels.tolist()], dtype=np.intp))
    return maps


def shared_probas(network_probas, heads, attributes, genders, maps, classes):
    """``{gender: [probabilities over classes[i] for each attribute]}`` from the
    network's outputs (one array per head, in ``heads`` order)."""
    heads = list(heads)
    out = {}
    for g in genders:
        out[g] = []
        for a, columns, full in zip(attributes, maps[g], classes):
            p = network_probas[heads.index(head_name(a, g))]
            expanded = np.zeros((len(p), len(full)))
            expanded[:, columns] = p
            out[g].append(expanded)
    return out


def route_probas(p_gender, per_gender, gender_classes, routing):
    """Each attribute's probabilities: under ``"hard"`` routing those of the heads of
    each face's most probable gender, under ``"soft"`` the mixture
    ``sum_g P(g | x) * P_g(class | x)``. Rows with NaN gender probabilities give NaN.

    Parameters
    ----------
    p_gender : ndarray of shape (n, n_genders)
        Columns in ``gender_classes`` order.
    per_gender : dict
        ``{gender: [array (n, n_classes_k) per attribute]}``.
    """
    ok = ~np.isnan(p_gender).any(axis=1)
    n_attributes = len(per_gender[gender_classes[0]])
    out = []
    for i in range(n_attributes):
        shape = per_gender[gender_classes[0]][i].shape
        if routing == "hard":
            choice = np.argmax(np.nan_to_num(p_gender, nan=-1.0), axis=1)
            mixed = np.zeros(shape)
            for j, g in enumerate(gender_classes):
                rows = choice == j
                mixed[rows] = per_gender[g][i][rows]
        else:
            mixed = sum(
                p_gender[:, j : j + 1] * per_gender[g][i] for j, g in enumerate(gender_classes)
            )
        mixed[~ok] = np.nan
        out.append(mixed)
    return out
