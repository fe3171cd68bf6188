"""GenderFusionClassifier: a gender classifier routing each face to a gender-specific model."""

import functools
import inspect
import numbers
import os
import warnings

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._fusion_finetune import finetune_part
from ._fusion_shared import (
    GENDER_SOURCES,
    STRATEGIES,
    expand_targets,
    forget_shared_fit,
    route_probas,
    shared_class_maps,
    shared_network,
    shared_probas,
)
from ._multi_attribute import MultiAttributeClassifier
from ._outputs import MultiAttributeOutputMixin
from ._param_validation import Described, HasMethods, Interval, StrOptions, validate_params
from ._persistence import check_fields, register_persistence
from ._progress import write_line
from ._split import holdout_split, n_holdout
from ._targets import (
    check_attributes,
    check_validation_pair,
    fit_encoders,
    transform_frame,
    validate_targets,
)
from ._training import training_finished
from ._training._groups import check_sample_weight
from .augmentation import AugmentedView, AugmentingOverSampler
from .augmentation._view import pipeline_augmenter
from .preprocessing._images import as_image_source

__all__ = ["GenderFusionClassifier"]

_ROUTINGS = ("hard", "soft")


def _is_column_name(value):
    return isinstance(value, (str, numbers.Integral)) and not isinstance(value, bool)


def _is_two_labels(value):
    if isinstance(value, str) or not hasattr(value, "__len__") or len(value) != 2:
        return False
    return value[0] != value[1]


_part_constraint = Described(
    HasMethods(["fit", "predict_proba"]),
    "an estimator with fit and predict_proba methods, such as MultiAttributeClassifier",
)
_PARTS = ("gender_estimator", "specialist")
_DEFAULT_SPECIALIST_ATTRIBUTES = ("age", "race")


class GenderFusionClassifier(MultiAttributeOutputMixin, BaseEstimator):
    """Classify gender first, then age and race with heads or models trained for that gender.

    By default (``strategy="shared"``) one network learns on every image,
    with a gender head and one age and one race head per gender, each of
    these learning from its gender's images only; the write-up's design, a
    gender classifier on all images and a clone of ``specialist`` learning age
    and race on each gender's images only, is ``strategy="separate"``. At
    predict time each image gets the age and race decisions of its predicted
    gender (``routing="hard"``), or both genders' probabilities mixed,
    weighted by the gender probabilities (``routing="soft"``). The outputs
    have the format of :class:`MultiAttributeClassifier`'s: the columns are
    the gender, then the specialist's attributes.

    Parameters
    ----------
    gender_estimator : estimator or None, default=None
        Predicts ``gender_column``; fitted on all images with y's columns.
        None means ``MultiAttributeClassifier(attributes=(gender_column,))``
        with its defaults.
    specialist : estimator or None, default=None
        Template of the per-gender model: a :class:`MultiAttributeClassifier`
        (or an estimator with its ``attributes``, ``fit(X, y,
        validation_data)``, ``predict_proba`` and ``classes_``). None means
        ``MultiAttributeClassifier(attributes=("age", "race"))``, whose
        defaults classify ages in FairFace's nine groups. Its ``age_bins``
        also bins the ages of this model's ``classes_``, and its
        ``validation_fraction`` the per-gender validation hold-out.
        Nested parameters reach both parts, e.g. ``specialist__lr``; setting
        one on a part left as None creates the default part first.
    gender_column : str, default="gender"
        The column of y naming each image's gender.
    genders : sequence of two labels, default=("Male", "Female")
        The values of ``gender_column``: one specialist is trained for each.
    grow_subsets : bool, default=True
        Grow each gender's training images with augmented copies (see
        :class:`~gar_sklearn.augmentation.AugmentingOverSampler`) to as many
        rows as a ``specialist`` fitted on all of X would train on, so each
        specialist trains as much per epoch as the end-to-end model. False
        trains each on its own images only.
    augment : augmenter or None, default=None
        Makes the copies when ``grow_subsets``; None means the augmenter of
        the Pipeline step before this estimator, if any, else
        :class:`~gar_sklearn.augmentation.FaceAugmenter` with its defaults.
        (Per-epoch augmentation is the parts' own ``augment`` parameter, or
        an augmenter step before this estimator in a Pipeline, which every
        part then applies.)
    routing : {"hard", "soft"}, default="hard"
        ``"hard"``: each image gets the probabilities of the specialist of its
        most probable gender. ``"soft"``: ``sum_g P(g | x) * P_g(class | x)``,
        which limits the cost of a wrong gender call. Only prediction reads
        it, so a fitted model can switch.
    random_state : int, RandomState instance or None, default=None
        Seeds the parts whose own ``random_state`` is None, the per-gender
        validation splits and the augmented copies.
    strategy : {"separate", "shared", "finetune"}, default="shared"
        How the gender-specific age and race models learn. ``"separate"``: a
        clone of ``specialist`` per gender, each on its gender's images only
        (see ``grow_subsets``). ``"shared"``: one network with the
        specialist's settings learns on every image, with a gender head and,
        for each of the specialist's attributes, one head per gender that
        learns from that gender's images only (to it the other gender's
        labels are missing, see ``missing_labels`` of
        :class:`MultiAttributeClassifier`): the backbone learns from all the
        faces, the age and race decisions stay gender-specific, and
        prediction is one pass. ``"finetune"``: that network, then a
        specialist per gender that starts from it (its backbone and its heads
        of that gender) and is fine-tuned on the gender's images with the
        learning rate times ``finetune_lr``, stopping early on the gender's
        validation images (patience 2 when the specialist has none).
        ``grow_subsets`` and ``augment`` apply to ``"separate"`` only.
        ``"shared"`` is the default because it measured as good as
        :class:`MultiAttributeClassifier` on every attribute on UTKFace
        (``docs/fusion.md``), where ``"separate"`` lost several points of age
        and race accuracy, at a third of its fit time.
    gender_from : {"auto", "gender_estimator", "shared_network"}, default="auto"
        What decides each image's gender (the gender column, and the route):
        the ``gender_estimator``, a network of its own fitted on all images,
        or, with ``strategy="shared"`` or ``"finetune"``, the shared network's
        gender head, at no extra training. ``"auto"``: the shared network's
        head with those strategies, else the gender estimator.
    finetune_lr : float, default=0.1
        With ``strategy="finetune"``, the specialists' learning rates
        (``lr``, ``backbone_lr``) are the specialist's times this factor.

    Attributes
    ----------
    gender_estimator_ : estimator or None
        The fitted gender classifier. When the shared network's gender head
        decides (``gender_from``): None with ``strategy="shared"``, the
        shared network itself with ``strategy="finetune"``.
    specialists_ : dict
        For each value of ``genders``, the fitted clone of ``specialist``
        (``strategy="separate"``, or fine-tuned with ``"finetune"``).
    shared_estimator_ : MultiAttributeClassifier
        With ``strategy="shared"``, the fitted network: attributes
        ``gender_column`` then ``"<attribute>@<gender>"`` for each of the
        specialist's attributes and each gender (e.g. ``"age@Female"``).
    strategy_ : str
        The strategy of the fit.
    attributes_ : tuple of str
        ``(gender_column,)`` followed by the specialist's attributes.
    classes_ : list of ndarray
        The labels of each attribute in the whole training set (ages: the
        groups of the fitted ``age_binner_``). A specialist's probability of a
        class it never saw is 0.
    age_binner_ : AgeBinner or None
        Fitted on all training ages, when the specialist bins ages.
    subset_sizes_ : dict
        For each gender, its number of images in X.
    train_sizes_ : dict
        For each gender, the rows its specialist trained on (its images less
        the validation hold-out, plus the augmented copies;
        ``strategy="separate"``).

    Notes
    -----
    Each specialist's validation images are held out from its gender's
    original images before the copies are made (``validation_fraction`` of
    them, stratified on the specialist's first attribute when possible; one
    of a class that no other image of the gender has stays in training, and
    when that leaves none, the specialist trains without validation, with a
    warning), so that early stopping never sees an augmented copy of a
    training image.
    ``fit(..., validation_data=...)`` instead gives each specialist the
    validation images of its gender, and the gender classifier all of them.
    A ``checkpoint_dir`` of the specialist becomes one subfolder per gender
    (``specialist_gender=Male``, ...), so that each resumes its own fit.

    Like :class:`MultiAttributeClassifier`, the estimator is not a
    scikit-learn "classifier": pass a shuffled or group-aware splitter to
    ``GridSearchCV`` when the rows are ordered.

    See Also
    --------
    MultiAttributeClassifier : one network predicting every attribute at once.

    Examples
    --------
    >>> from gar_sklearn import GenderFusionClassifier, MultiAttributeClassifier
    >>> from gar_sklearn.datasets import make_synthetic_faces
    >>> X, y = make_synthetic_faces(60, image_size=16, gender_dependent=True, random_state=0)
    >>> tiny = dict(backbone="tiny", weights=None, image_size=16, max_epochs=1, verbose=0)
    >>> clf = GenderFusionClassifier(
    ...     gender_estimator=MultiAttributeClassifier(attributes=("gender",), **tiny),
    ...     specialist=MultiAttributeClassifier(attributes=("age", "race"), **tiny),
    ...     random_state=0,
    ... ).fit(X, y)
    >>> clf.attributes_
    ('gender', 'age', 'race')
    >>> clf.predict(X[:2]).shape, [len(c) for c in clf.classes_]
    ((2, 3), [2, 9, 5])
    >>> clf.set_params(routing="soft").predict_proba(X[:2])[1].sum(axis=1).round(6).tolist()
    [1.0, 1.0]
    """

    _parameter_constraints = {
        "gender_estimator": [None, _part_constraint],
        "specialist": [None, _part_constraint],
        "gender_column": [Described(_is_column_name, "a column name")],
        "genders": [
            Described(
                _is_two_labels, "a sequence of two distinct labels, such as ('Male', 'Female')"
            )
        ],
        "grow_subsets": [Described("boolean", "True or False")],
        "augment": [
            None,
            Described(
                HasMethods(["augment"]),
                "an augmenter with an augment(image, rng) method (see gar_sklearn.augmentation)",
            ),
        ],
        "routing": [StrOptions(set(_ROUTINGS))],
        "random_state": ["random_state"],
        "strategy": [StrOptions(set(STRATEGIES))],
        "gender_from": [StrOptions(set(GENDER_SOURCES))],
        "finetune_lr": [Interval(numbers.Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        gender_estimator=None,
        specialist=None,
        gender_column="gender",
        genders=("Male", "Female"),
        grow_subsets=True,
        augment=None,
        routing="hard",
        random_state=None,
        strategy="shared",
        gender_from="auto",
        finetune_lr=0.1,
    ):
        self.gender_estimator = gender_estimator
        self.specialist = specialist
        self.gender_column = gender_column
        self.genders = genders
        self.grow_subsets = grow_subsets
        self.augment = augment
        self.routing = routing
        self.random_state = random_state
        self.strategy = strategy
        self.gender_from = gender_from
        self.finetune_lr = finetune_lr

    # ------------------------------------------------------------------ parts
    def _default_part(self, name, gender_column=None):
        if name == "gender_estimator":
            column = self.gender_column if gender_column is None else gender_column
            return MultiAttributeClassifier(attributes=(column,))
        return MultiAttributeClassifier(attributes=_DEFAULT_SPECIALIST_ATTRIBUTES)

    def set_params(self, **params):
        """Set parameters, also of the parts (``specialist__lr``, ``gender_estimator__backbone``).

        A nested parameter of a part that is None creates the default part
        first, so the defaults can be tuned like explicit parts.
        """
        for name in _PARTS:
            nested = any(key.startswith(f"{name}__") for key in params)
            if nested and params.get(name, getattr(self, name)) is None:
                params[name] = self._default_part(name, params.get("gender_column"))
        return super().set_params(**params)

    def _check_params(self):
        validate_params(self)
        if self.gender_from == "shared_network" and self.strategy == "separate":
            raise ValueError(
                "The 'gender_from' parameter must be 'auto' or 'gender_estimator' with "
                "strategy='separate' (there is no shared network). Got 'shared_network' instead."
            )
        return tuple(self.genders)

    def _check_routing(self):
        # a predict-time parameter: checked again at predict, after set_params on a fitted model
        validate_params(self, only=("routing",))
        return self.routing

    def _parts(self):
        """Unfitted clones of the parts, the defaults where None."""
        gender_estimator = self.gender_estimator
        specialist = self.specialist
        gender_estimator = (
            self._default_part("gender_estimator")
            if gender_estimator is None
            else clone(gender_estimator)
        )
        specialist = self._default_part("specialist") if specialist is None else clone(specialist)
        params = specialist.get_params(deep=False)
        if "attributes" not in params:
            raise ValueError(
                "The 'specialist' parameter must be an estimator with an 'attributes' parameter "
                f"naming what it predicts, such as MultiAttributeClassifier. Got {self.specialist!r} instead."
            )
        gender_attributes = gender_estimator.get_params(deep=False).get("attributes")
        if gender_attributes is not None and self.gender_column not in check_attributes(
            gender_attributes
        ):
            raise ValueError(
                f"The 'gender_estimator' parameter must predict the gender column "
                f"{self.gender_column!r}. Got attributes={list(check_attributes(gender_attributes))} instead."
            )
        attributes = check_attributes(params["attributes"])
        if self.gender_column in attributes:
            raise ValueError(
                f"The 'specialist' parameter must predict attributes other than the gender column "
                f"{self.gender_column!r}: each specialist sees one gender only. Got "
                f"attributes={list(attributes)} instead; the gender_estimator predicts the gender."
            )
        return gender_estimator, specialist, attributes

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, validation_data=None, sample_weight=None):
        """Fit the gender classifier on all images and a specialist on each gender's images.

        Parameters
        ----------
        X : sequence of paths, PIL images or uint8 arrays, or uint8 ndarray (n, H, W[, 3])
            The images. An :class:`~gar_sklearn.augmentation.AugmentedView`
            (what an augmenter step of a Pipeline passes on) gives each part
            its images with the view's augmenter, applied every epoch.
        y : DataFrame or 2-D array
            The gender column and the specialist's attributes (a 2-D array:
            these columns in ``attributes_`` order).
        validation_data : tuple (X_valid, y_valid), optional
            Images for early stopping: all of them for the gender classifier,
            each gender's for its specialist, instead of held-out fractions of X.
        sample_weight : array-like of shape (n_samples,), default=None
            Each image's weight, passed to the parts' ``fit``: all of them to
            the gender classifier, each gender's (the augmented copies taking
            their original's) to its specialist, held-out ones with its
            validation images.

        Returns
        -------
        self
        """
        genders = self._check_params()
        gender_estimator, specialist, spec_attributes = self._parts()
        # an augmenter step of a Pipeline: each part augments its images every epoch
        X, view_augmenter = pipeline_augmenter(X, None, type(self).__name__)
        column = self.gender_column
        attributes = (column,) + spec_attributes
        source = as_image_source(X)
        frame, _ = validate_targets(y, attributes, len(source))
        weight = check_sample_weight(sample_weight, len(source))
        if len(source) < 2:
            raise ValueError(f"At least 2 training images are needed; got n_samples={len(source)}.")
        gender = self._check_gender_values(frame[column], genders, "y")
        age_bins = specialist.get_params(deep=False).get("age_bins")
        classes, binner = fit_encoders(frame, attributes, age_bins)
        valid = self._validation_data(validation_data, attributes, genders)
        rng = check_random_state(self.random_state)
        seeds = rng.randint(np.iinfo(np.int32).max, size=1 + 3 * len(genders))
        if self.strategy != "separate":
            X = _augmented(X, view_augmenter)
            return self._fit_shared(X, frame, valid, (classes, binner), seeds, weight)
        # everything checkable is checked before the first (expensive) fit
        plans = self._plan_subsets(
            frame,
            gender,
            genders,
            specialist,
            binner,
            spec_attributes,
            valid,
            split_seeds=seeds[1::3],
        )
        specialists, train_sizes = self._fit_parts(
            (gender_estimator, specialist),
            X,
            source,
            frame,
            valid,
            plans,
            seeds,
            weight,
            view_augmenter,
        )

        self.gender_estimator_ = gender_estimator
        self.specialists_ = specialists
        self.attributes_ = attributes
        self.classes_ = classes
        self.age_binner_ = binner
        self._one_d = False
        self.genders_ = genders
        self.subset_sizes_ = {g: int(np.sum(gender == g)) for g in genders}
        self.train_sizes_ = train_sizes
        forget_shared_fit(self)  # strategy_ = "separate"
        self._gender_map = _gender_columns(gender_estimator, column, classes[0])
        self._class_maps = {
            g: self._class_map(specialists[g], spec_attributes, classes[1:], binner)
            for g in genders
        }
        return self

    def _validation_data(self, validation_data, attributes, genders):
        """``(images, labels, genders)`` of ``validation_data``, checked; None without it."""
        if validation_data is None:
            return None
        X_val, y_val = check_validation_pair(validation_data)
        val_source = as_image_source(X_val)
        val_frame, _ = validate_targets(y_val, attributes, len(val_source))
        val_gender = self._check_gender_values(val_frame[self.gender_column], genders, "y_valid")
        return val_source, val_frame, val_gender

    def _fit_parts(self, parts, X, source, frame, valid, plans, seeds, weight, view_augmenter):
        """Fit the gender classifier (``parts[0]``, in place) and a clone of the specialist
        (``parts[1]``) per gender; returns the specialists and their training sizes.

        ``view_augmenter``: a Pipeline step's augmenter, which each part applies every
        epoch. A part interrupted by Ctrl-C stops the fit with a warning naming the parts
        that were complete, and the KeyboardInterrupt goes on to the caller.
        """
        gender_estimator, specialist = parts
        genders = tuple(plans)
        progress = _Progress(["the gender classifier"] + [f"the {g!r} specialist" for g in genders])
        try:
            _seed_part(gender_estimator, seeds[0])
            self._fit_router(
                gender_estimator, _augmented(X, view_augmenter), frame, valid, weight, progress
            )
            specialists, train_sizes = {}, {}
            for k, g in enumerate(genders):
                X_fit, y_fit, fit_kwargs = self._specialist_data(
                    plans[g], source, frame, valid, seeds[2 + 3 * k], weight, view_augmenter
                )
                fit_kwargs.update(
                    _weight_kwargs(specialist, fit_kwargs.pop("sample_weight"), "specialist")
                )
                X_fit = _augmented(X_fit, view_augmenter)
                specialists[g] = self._fit_specialist(
                    specialist, g, plans[g], X_fit, y_fit, fit_kwargs, seed=seeds[3 + 3 * k]
                )
                progress.done(specialists[g])
                train_sizes[g] = len(X_fit)
        except KeyboardInterrupt:
            warnings.warn(progress.interrupted(self, parts), UserWarning, stacklevel=3)
            raise
        return specialists, train_sizes

    def _fit_router(self, gender_estimator, X, frame, valid, weight, progress):
        """Fit the gender classifier on every image, under its heading, and mark it complete."""
        _heading(gender_estimator, f"gender classifier ({self.gender_column}, {len(X)} images)")
        _fit_gender_estimator(gender_estimator, X, frame, valid, weight)
        progress.done(gender_estimator)

    def _fit_shared_parts(self, X, frame, valid, parts, targets, weight):
        """Fit the gender classifier (None: the network's own head routes) and the
        shared network on ``targets(frame)``. Ctrl-C in either stops the whole fit, as
        in :meth:`_fit_separate`: the estimator is left as it was."""
        gender_estimator, network = parts
        routers = [] if gender_estimator is None else ["the gender classifier"]
        progress = _Progress([*routers, "the shared network"])
        try:
            if gender_estimator is not None:
                self._fit_router(gender_estimator, X, frame, valid, weight, progress)
            _heading(network, f"shared network ({', '.join(network.attributes)}, {len(X)} images)")
            kwargs = _weight_kwargs(network, weight, "specialist")
            if valid is not None:
                kwargs["validation_data"] = (valid[0].items, targets(valid[1]))
            network.fit(X, targets(frame), **kwargs)
            progress.done(network)
        except KeyboardInterrupt:
            fitting = [p for p in parts if p is not None]
            warnings.warn(progress.interrupted(self, fitting), UserWarning, stacklevel=4)
            raise

    def _fit_shared(self, X, frame, valid, encoders, seeds, weight=None):
        """``strategy="shared"`` or ``"finetune"``: one network with gender-specific heads
        on every image (and the gender classifier when it decides the gender), then for
        ``"finetune"`` a specialist per gender started from it; sets the fitted attributes.

        ``frame`` and ``valid`` as checked by :meth:`fit`; ``encoders``: its
        ``(classes, binner)``; ``weight``: the sample weights or None."""
        gender_estimator, specialist, spec_attributes = self._parts()
        classes, binner = encoders
        column, genders = self.gender_column, tuple(self.genders)
        gender = frame[column].to_numpy(dtype=object)
        finetune = None
        if self.strategy == "finetune" and weight is not None:
            raise ValueError(
                "sample_weight is not supported with strategy='finetune'; use "
                "strategy='shared' or 'separate' to fit with sample weights."
            )
        if self.strategy == "finetune":  # its splits are checked before the first fit
            finetune = self._finetune_plans(
                frame, valid, specialist, spec_attributes, binner, seeds
            )
        shares = {g: float(np.mean(gender == g)) for g in genders}
        network = shared_network(
            specialist, column, spec_attributes, genders, binner is not None, shares
        )
        _seed_part(network, seeds[1])
        _own_checkpoint_dir(network, "shared_network")
        own_head = self.gender_from != "gender_estimator"
        if not own_head:
            _seed_part(gender_estimator, seeds[0])
        groups = network.group_by
        targets = functools.partial(
            expand_targets,
            gender_column=column,
            attributes=spec_attributes,
            genders=genders,
            binner=binner,
            keep=(groups,) if isinstance(groups, str) else tuple(groups or ()),
        )
        parts = (None if own_head else gender_estimator, network)
        self._fit_shared_parts(X, frame, valid, parts, targets, weight)
        router = network if own_head else gender_estimator
        fitted = {
            "gender_estimator_": router if finetune else (None if own_head else router),
            "strategy_": self.strategy,
            "attributes_": (column,) + spec_attributes,
            "classes_": classes,
            "age_binner_": binner,
            "genders_": genders,
            "subset_sizes_": {g: int(np.sum(gender == g)) for g in genders},
            "_one_d": False,
            "_gender_map": _gender_columns(router, column, classes[0]),
        }
        if finetune:
            parts = (network, specialist, spec_attributes)
            fitted.update(self._fit_finetuned(X, parts, finetune, classes, seeds))
        else:
            fitted["shared_estimator_"] = network
            fitted["_shared_maps"] = shared_class_maps(
                network, spec_attributes, genders, classes[1:]
            )
        stale = [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]
        for name in stale + ["_class_maps", "_shared_maps"]:
            vars(self).pop(name, None)
        vars(self).update(fitted)
        return self

    def _finetune_plans(self, frame, valid, specialist, spec_attributes, binner, seeds):
        """``strategy="finetune"``: the labels binned as the shared network learns them, and
        each gender's training and validation rows (as for separate specialists)."""
        binned = transform_frame(frame, (self.gender_column,) + spec_attributes, binner)
        if valid is not None:
            attributes = (self.gender_column,) + spec_attributes
            valid = (valid[0], transform_frame(valid[1], attributes, binner), valid[2])
        plans = self._plan_subsets(
            binned,
            frame[self.gender_column].to_numpy(dtype=object),
            tuple(self.genders),
            specialist,
            None,
            spec_attributes,
            valid,
            split_seeds=seeds[2::3],
        )
        return binned, valid, plans

    def _fit_finetuned(self, X, parts, finetune, classes, seeds):
        """The fitted attributes of the specialists fine-tuned from the fitted network
        (``parts``: it, the specialist template and its attributes)."""
        network, specialist, spec_attributes = parts
        binned, valid, plans = finetune
        source = as_image_source(X)
        specialist = clone(specialist).set_params(age_bins=None)  # ages come binned
        specialists, train_sizes = {}, {}
        for k, g in enumerate(self.genders):
            X_fit, y_fit, fit_kwargs = self._specialist_data(
                plans[g], source, binned, valid, sampler_seed=0, grow=False
            )
            part = finetune_part(specialist, network, g, spec_attributes, self.finetune_lr)
            specialists[g] = self._fit_specialist(
                part, g, plans[g], X_fit, y_fit, fit_kwargs, seed=seeds[3 + 3 * k]
            )
            train_sizes[g] = len(X_fit)
        return {
            "specialists_": specialists,
            "train_sizes_": train_sizes,
            "_class_maps": {
                g: self._class_map(specialists[g], spec_attributes, classes[1:], None)
                for g in self.genders
            },
        }

    def _shared_predict_probas(self, X, routing):
        """Per-attribute probabilities and readable-image mask of a shared fit: one pass of
        the network, the gender from its head or the gender classifier, then the routing."""
        source = as_image_source(X)
        network = self.shared_estimator_
        probas = _as_list(network.predict_proba(source.items))
        if self.gender_estimator_ is None:
            k, columns = self._gender_map
            p_gender = np.zeros((len(source), len(self.classes_[0])))
            p_gender[:, columns] = probas[k]
        else:
            p_gender = self._gender_proba(source.items)
        per_gender = shared_probas(
            probas,
            network.attributes_,
            self.attributes_[1:],
            self.genders_,
            self._shared_maps,
            self.classes_[1:],
        )
        probas = [p_gender] + route_probas(p_gender, per_gender, self.classes_[0].tolist(), routing)
        ok = ~np.any([np.isnan(p).any(axis=1) for p in probas], axis=0)
        for p in probas:
            p[~ok] = np.nan
        return probas, ok

    def _specialist_data(
        self, plan, source, frame, valid, sampler_seed, weight=None, view_augmenter=None, grow=None
    ):
        """The images, labels and fit arguments (validation data, sample weights) of one
        specialist; ``grow`` (default: ``grow_subsets``) adds the augmented copies."""
        train_idx, val_idx = plan["train"], plan["valid"]
        rows = train_idx
        if self.grow_subsets if grow is None else grow:
            mask = np.zeros(len(source), dtype=bool)
            mask[train_idx] = True
            sampler = AugmentingOverSampler(
                augmenter=self.augment if self.augment is not None else view_augmenter,
                target_size=max(plan["target"], len(train_idx)),
                subset=mask,
                random_state=int(sampler_seed),
            )
            X_fit, y_fit = sampler.fit_resample(source.items, frame)
            rows = sampler.sample_indices_  # a copy weighs what its original does
        else:
            X_fit = source.subset(train_idx).items
            y_fit = frame.iloc[train_idx].reset_index(drop=True)
        fit_kwargs = {"sample_weight": None if weight is None else weight[rows]}
        if plan["valid_from"] in ("X", "validation_data"):
            images, labels = (source, frame) if plan["valid_from"] == "X" else valid[:2]
            fit_kwargs["validation_data"] = (
                images.subset(val_idx).items,
                labels.iloc[val_idx].reset_index(drop=True),
            )
            if weight is not None and plan["valid_from"] == "X":
                fit_kwargs["validation_data"] += (weight[val_idx],)
        return X_fit, y_fit, fit_kwargs

    def _fit_specialist(self, specialist, g, plan, X_fit, y_fit, fit_kwargs, seed):
        """A fitted clone of ``specialist`` for gender ``g``."""
        part = clone(specialist)
        _seed_part(part, seed)
        if plan["valid_from"] == "none":
            part.set_params(validation_fraction=0.0)
        _own_checkpoint_dir(part, f"specialist_{self.gender_column}={g}")
        what = ", ".join(map(str, check_attributes(part.get_params(deep=False)["attributes"])))
        _heading(part, f"specialist {self.gender_column}={g} ({what}, {len(X_fit)} images)")
        try:
            part.fit(X_fit, y_fit, **fit_kwargs)
        except ValueError as exc:
            raise ValueError(
                f"Fitting the specialist for {self.gender_column}={g!r} on {len(X_fit)} image(s) "
                f"failed: {exc}"
            ) from exc
        return part

    def _check_gender_values(self, values, genders, name):
        values = values.to_numpy(dtype=object)
        try:
            found = list(dict.fromkeys(values.tolist()))
        except TypeError:  # unhashable labels (lists, dicts) cannot be genders
            kinds = sorted({type(v).__name__ for v in values.tolist()})
            raise ValueError(
                f"{name}[{self.gender_column!r}] must hold the values of the 'genders' parameter "
                f"{list(genders)}; got values of type(s) {kinds}."
            ) from None
        allowed = set(genders)
        outside = [v for v in found if v not in allowed]
        if outside:
            raise ValueError(
                f"{name}[{self.gender_column!r}] holds the value(s) {outside}, outside the 'genders' "
                f"parameter {list(genders)}; values found: {found}. Set 'genders' to the two values "
                "your labels use."
            )
        if name == "y" and len(found) < 2:
            raise ValueError(
                f"y[{self.gender_column!r}] holds only {found[0]!r}: GenderFusionClassifier needs "
                f"images of both genders {list(genders)} to train a specialist for each."
            )
        return values

    def _plan_subsets(
        self, frame, gender, genders, specialist, binner, spec_attributes, valid, split_seeds
    ):
        """Each gender's training and validation rows and grown size; raises on too small subsets."""
        params = specialist.get_params(deep=False)
        takes_validation = "validation_data" in inspect.signature(specialist.fit).parameters
        fraction = params.get("validation_fraction") or 0.0
        # an invalid fraction is left for the specialist's own fit to report
        valid_fraction = isinstance(fraction, numbers.Real) and 0 < fraction < 1
        hold_out = valid is None and takes_validation and valid_fraction
        n = len(frame)
        # rows a specialist fitted on all of X would train on: what the grown subsets match
        target = n - n_holdout(n, fraction) if hold_out else n
        labels = (
            transform_frame(frame[list(spec_attributes)], spec_attributes, binner)
            .astype(str)
            .to_numpy()
        )
        plans = {}
        for g, seed in zip(genders, split_seeds):
            rows = np.flatnonzero(gender == g)
            plan = dict(train=rows, valid=None, valid_from=None, target=target)
            if hold_out:
                n_valid = n_holdout(len(rows), fraction)
                if len(rows) - n_valid < 1:
                    raise ValueError(
                        f"Too few images to hold out a validation split for the {g!r} specialist: "
                        f"{len(rows)} image(s) with {self.gender_column}={g!r} and "
                        f"validation_fraction={fraction}. Provide more images of this gender, "
                        "validation_data, or specialist__validation_fraction=0."
                    )
                train, val = holdout_split(labels[rows], n_valid, seed, keep_classes_in_train=True)
                train, val = rows[train], rows[val]
                if len(val):
                    plan.update(train=train, valid=val, valid_from="X")
                else:
                    warnings.warn(
                        f"The {g!r} specialist trains without a validation split (early stopping "
                        "watches its training loss): each image that could be held out is the only "
                        f"one of this gender with some class. {len(rows)} image(s) with "
                        f"{self.gender_column}={g!r}; provide more images or validation_data.",
                        UserWarning,
                        stacklevel=3,
                    )
                    plan.update(valid_from="none")
            elif valid is not None and takes_validation:
                val_rows = np.flatnonzero(valid[2] == g)
                if len(val_rows) == 0:
                    raise ValueError(
                        f"validation_data holds no image with {self.gender_column}={g!r}: each "
                        "specialist needs validation images of its gender."
                    )
                plan.update(valid=val_rows, valid_from="validation_data")
            plans[g] = plan
        return plans

    @staticmethod
    def _class_map(part, spec_attributes, classes, binner):
        """For each attribute, the column in ``classes`` of each of the part's classes."""
        part_attributes = tuple(getattr(part, "attributes_", spec_attributes))
        part_classes = part.classes_ if isinstance(part.classes_, list) else [part.classes_]
        maps = []
        for a, full in zip(spec_attributes, classes):
            labels = part_classes[part_attributes.index(a)]
            part_binner = getattr(part, "age_binner_", None)
            if a == "age" and binner is not None and part_binner is not None:
                # bins fitted on one gender's ages may end earlier ("80+" where all ages
                # give "80-89", "90+"): a group maps to the full group of its lower edge
                labels = binner.transform(part_binner.edges_)
            lookup = {v: i for i, v in enumerate(full.tolist())}
            try:
                maps.append(
                    np.asarray([lookup[v] for v in np.asarray(labels).tolist()], dtype=np.intp)
                )
            except KeyError as exc:
                raise ValueError(
                    f"The specialist predicts the {a!r} class {exc.args[0]!r}, which is not among the "
                    f"training set's classes {full.tolist()}."
                ) from None
        return maps

    # ------------------------------------------------------------------ predict
    def _gender_proba(self, X):
        probas = _as_list(self.gender_estimator_.predict_proba(X))
        k, columns = self._gender_map
        out = np.zeros((len(probas[k]), len(self.classes_[0])))
        out[:, columns] = probas[k]
        return out

    def _specialist_probas(self, g, X):
        probas = _as_list(self.specialists_[g].predict_proba(X))
        out = []
        for p, columns, classes in zip(probas, self._class_maps[g], self.classes_[1:]):
            full = np.zeros((len(p), len(classes)))
            np.add.at(full.T, columns, p.T)
            out.append(full)
        return out

    def _predict_probas(self, X):
        """Per-attribute probability arrays and a mask of readable images."""
        check_is_fitted(self)
        routing = self._check_routing()
        if getattr(self, "strategy_", "separate") == "shared":
            return self._shared_predict_probas(X, routing)
        source = as_image_source(X)
        n = len(source)
        p_gender = self._gender_proba(source.items)
        ok = ~np.isnan(p_gender).any(axis=1)
        rest = [np.full((n, len(c)), np.nan) for c in self.classes_[1:]]
        ok_rows = np.flatnonzero(ok)
        gender_classes = self.classes_[0].tolist()

        def images(rows):
            return source.items if len(rows) == n else source.subset(rows).items

        if routing == "hard":
            # each image is computed by the specialist it goes to only
            route = np.argmax(p_gender[ok_rows], axis=1)
            for j, g in enumerate(gender_classes):
                rows = ok_rows[route == j]
                if len(rows):
                    for out, p in zip(rest, self._specialist_probas(g, images(rows))):
                        out[rows] = p
        elif len(ok_rows):
            mixed = [np.zeros((len(ok_rows), len(c))) for c in self.classes_[1:]]
            for j, g in enumerate(gender_classes):
                weight = p_gender[ok_rows, j : j + 1]
                for acc, p in zip(mixed, self._specialist_probas(g, images(ok_rows))):
                    acc += weight * p
            for out, p in zip(rest, mixed):
                out[ok_rows] = p
        probas = [p_gender] + rest
        ok &= ~np.any([np.isnan(p).any(axis=1) for p in probas], axis=0)
        for p in probas:
            p[~ok] = np.nan
        return probas, ok

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.single_output = False  # y always holds gender and the specialist's columns
        return tags


class _Progress:
    """Which parts of a fit are complete; a part whose training was interrupted (skorch
    ends its fit quietly on Ctrl-C) stops the whole fit with a KeyboardInterrupt."""

    def __init__(self, names):
        self.names = list(names)
        self.complete = 0

    def done(self, part):
        net = getattr(part, "net_", None)
        if net is not None and not training_finished(net):
            raise KeyboardInterrupt(f"training {self.names[self.complete]} was interrupted")
        self.complete += 1

    def interrupted(self, fusion, parts):
        complete = ", ".join(self.names[: self.complete]) or "none"
        untrained = ", ".join(self.names[self.complete + 1 :]) or "none"
        before = "its previous model" if hasattr(fusion, "attributes_") else "unfitted"
        folders = any(p.get_params(deep=False).get("checkpoint_dir") is not None for p in parts)
        resume = (
            "Fitting again with the same checkpoint_dir restores the complete parts "
            "without training and resumes the interrupted one."
            if folders
            else "Give the parts a checkpoint_dir to keep complete parts across fits."
        )
        return (
            f"GenderFusionClassifier.fit was interrupted (KeyboardInterrupt) while training "
            f"{self.names[self.complete]}; complete: {complete}; not trained: {untrained}. "
            f"The estimator is left as it was ({before}). {resume}"
        )


def _augmented(images, augmenter):
    return images if augmenter is None else AugmentedView(images, augmenter)


def _heading(part, title):
    """Name the part whose epoch table follows, when the part prints one."""
    verbose = part.get_params(deep=False).get("verbose", 0)
    if isinstance(verbose, numbers.Real) and verbose >= 1:
        write_line(f"== {title} ==")


def _as_list(probas):
    return list(probas) if isinstance(probas, (list, tuple)) else [probas]


def _fit_gender_estimator(part, X, frame, valid, weight):
    """Fit the gender classifier on all images, with the validation images and weights given."""
    kwargs = _weight_kwargs(part, weight, "gender_estimator")
    if valid is not None:
        kwargs["validation_data"] = (valid[0].items, valid[1])
    part.fit(X, frame, **kwargs)


def _weight_kwargs(part, weight, name):
    """``{"sample_weight": weight}`` for the part's ``fit``, nothing without weights."""
    if weight is None:
        return {}
    if "sample_weight" not in inspect.signature(part.fit).parameters:
        raise ValueError(
            f"The '{name}' parameter must be an estimator whose fit takes sample_weight to fit "
            f"with sample weights. Got {type(part).__name__} instead."
        )
    return {"sample_weight": weight}


def _seed_part(part, seed):
    params = part.get_params(deep=False)
    if "random_state" in params and params["random_state"] is None:
        part.set_params(random_state=int(seed))


def _own_checkpoint_dir(part, name):
    """Give a specialist its own subfolder of a shared ``checkpoint_dir``: each resumes its own fit."""
    folder = part.get_params(deep=False).get("checkpoint_dir")
    if folder is not None:
        part.set_params(checkpoint_dir=os.path.join(os.fspath(folder), name))


def _gender_columns(gender_estimator, column, gender_classes):
    """Which of the gender classifier's outputs is the gender, and where its classes go."""
    attributes = getattr(gender_estimator, "attributes_", None)
    classes = gender_estimator.classes_
    if isinstance(classes, list):
        if attributes is None or column not in attributes:
            raise ValueError(
                f"The 'gender_estimator' must predict the gender column {column!r}; it predicts "
                f"{list(attributes) if attributes is not None else 'unnamed attributes'}."
            )
        k = list(attributes).index(column)
        classes = classes[k]
    else:
        k = 0
    lookup = {v: i for i, v in enumerate(np.asarray(gender_classes).tolist())}
    try:
        columns = np.asarray([lookup[v] for v in np.asarray(classes).tolist()], dtype=np.intp)
    except KeyError as exc:
        raise ValueError(
            f"The 'gender_estimator' predicts the gender {exc.args[0]!r}, which is not among "
            f"{np.asarray(gender_classes).tolist()}."
        ) from None
    return k, columns


# what prediction reads: a file lacking one is refused at load
_SAVED_FITTED = ("attributes_", "classes_", "age_binner_", "_one_d", "genders_", "_gender_map")
# and what each strategy's prediction reads besides
_SAVED_BY_STRATEGY = {
    "separate": ("gender_estimator_", "specialists_", "_class_maps"),
    "shared": ("gender_estimator_", "shared_estimator_", "_shared_maps"),
    "finetune": ("gender_estimator_", "specialists_", "_class_maps"),
}


def _restore(data, device):
    check_fields(data, ("params", "fitted"), "GenderFusionClassifier")
    strategy = data["fitted"].get("strategy_", "separate")
    needed = _SAVED_FITTED + _SAVED_BY_STRATEGY.get(strategy, ())
    check_fields(data["fitted"], needed, "GenderFusionClassifier", "the fitted attribute(s)")
    estimator = GenderFusionClassifier(**data["params"])
    vars(estimator).update(data["fitted"])
    return estimator


# its fitted parts are saved (and checked) through their own entry
register_persistence(GenderFusionClassifier, restore=_restore)
