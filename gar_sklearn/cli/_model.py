"""The estimator the settings describe, and what the command says about a fitted one."""

from .._defaults import auto_frozen_stages
from ._errors import CommandError

__all__ = ["build_estimator", "check_backbone", "fit_summary", "parts"]


def check_backbone(args):
    """Build ``--backbone`` with ``--weights`` once, so that an unknown name or unavailable
    weights fail before any image is read; returns the backbone (its stages decide
    ``--freeze auto``)."""
    from gar_sklearn._multi_attribute import checked_backbone

    return checked_backbone(args.backbone, args.weights)


def resolve_age_bins(choice, ages):
    """``--age-bins auto``: FairFace's nine groups for numeric ages, the labels as they are
    otherwise."""
    import pandas as pd

    if choice != "auto":
        return choice
    numeric = pd.to_numeric(ages, errors="coerce").notna().all()
    return "fairface" if numeric else None


def resolve_freeze(choice, backbone, weights, device="cpu"):
    """What ``--freeze`` freezes on ``device``; ``auto`` is the library's ``freeze="auto"``
    (see :func:`gar_sklearn._defaults.auto_frozen_stages`): with pretrained weights on a
    CPU, the first 75% of the stages, else none (None)."""
    if choice != "auto":
        return choice
    return auto_frozen_stages(len(backbone.stage_names), weights, device) or None


def _device(choice):
    from gar_sklearn._training import resolve_device

    return resolve_device(choice)


def _augmenter(choice, freeze):
    if choice == "none":
        return None
    from gar_sklearn.augmentation import RandomFlip

    # with cached features (a frozen prefix) the second cached view is the mirror image;
    # trained end to end, each image is mirrored at random every epoch
    return RandomFlip(p=1.0 if freeze not in (None, 0) else 0.5)


def _genders(values):
    found = sorted(set(values.dropna().astype(str)))
    if set(found) == {"Male", "Female"}:
        return ("Male", "Female")
    if len(found) != 2:
        raise CommandError(f"--model fusion needs exactly two gender values; the data has {found}.")
    return tuple(found)


def _part_params(args, backbone):
    # the estimator resolves --freeze auto itself; the flip augmentation depends on its result
    frozen = resolve_freeze(args.freeze, backbone, args.weights, _device(args.device))
    return dict(
        backbone=args.backbone,
        weights=args.weights,
        image_size=args.image_size,
        freeze=args.freeze,
        dropout=args.dropout,
        lr=args.lr,
        weight_decay=args.weight_decay,
        optimizer=args.optimizer,
        lr_schedule=None if args.lr_schedule == "none" else args.lr_schedule,
        max_epochs=args.epochs,
        patience=args.patience,
        batch_size=args.batch_size,
        validation_fraction=args.validation_fraction,
        label_smoothing=args.label_smoothing,
        augment=_augmenter(args.augment, frozen),
        cache_views=args.cache_views,
        cache_dir=args.cache_dir,
        test_time_flip=args.test_time_flip,
        weight_averaging=args.weight_averaging,
        ema_decay=args.ema_decay,
        averaging_start=args.averaging_start,
        calibrate=args.calibrate,
        device=args.device,
        on_error="skip",
        verbose=args.verbosity,
    )


def build_estimator(args, target, backbone):
    """A MultiAttributeClassifier or GenderFusionClassifier for the labels of ``target``."""
    from gar_sklearn import GenderFusionClassifier, MultiAttributeClassifier

    attributes = list(target.columns)
    common = _part_params(args, backbone)
    age = {}
    if "age" in attributes:
        age = dict(
            age_bins=resolve_age_bins(args.age_bins, target["age"]), age_sigma=args.age_sigma
        )
    if args.model == "multi":
        return MultiAttributeClassifier(
            attributes=tuple(attributes), random_state=args.random_state, **age, **common
        )
    others = tuple(a for a in attributes if a != "gender")
    if "gender" not in attributes or not others:
        raise CommandError(
            f"--model fusion needs a gender label and at least one of age, race; the data has "
            f"{list(attributes)}. Use --model multi."
        )
    return GenderFusionClassifier(
        gender_estimator=MultiAttributeClassifier(attributes=("gender",), **common),
        specialist=MultiAttributeClassifier(attributes=others, **age, **common),
        genders=_genders(target["gender"]),
        random_state=args.random_state,
    )


def parts(estimator):
    """``(name, MultiAttributeClassifier)`` pairs of a fitted model."""
    if hasattr(estimator, "specialists_"):  # separate or fine-tuned specialists
        return [
            ("gender classifier", estimator.gender_estimator_),
            *((f"{g} specialist", part) for g, part in estimator.specialists_.items()),
        ]
    if getattr(estimator, "shared_estimator_", None) is not None:  # one network, per-gender heads
        router = estimator.gender_estimator_
        own = [("gender classifier", router)] if router is not None else []
        return [*own, ("shared network", estimator.shared_estimator_)]
    return [("model", estimator)]


def fit_summary(name, part):
    """One line: how many epochs ran, which was kept, its validation accuracies."""
    history = list(getattr(part, "history_", []))
    if not history:
        return f"{name}: not trained"
    # early stopping restores the best epoch's weights; without it the last epoch's stay
    restores = getattr(part, "patience", None) is not None
    best = [row for row in history if row.get("valid_loss_best")] if restores else []
    row = best[-1] if best else history[-1]
    accs = [
        f"{k[len('valid_acc_') :]} {v:.3f}" for k, v in row.items() if k.startswith("valid_acc_")
    ]
    scores = f"validation accuracy {', '.join(accs)}" if accs else "no validation split"
    return f"{name}: {len(history)} epochs; epoch {row['epoch']} kept: {scores}"
