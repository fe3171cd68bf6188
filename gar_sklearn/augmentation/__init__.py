"""Train-time augmentation: numpy and Pillow only.

Augmenters return a randomly changed copy of one image, drawing every random
number from the generator they are given. The estimators call them in their
training data loader only, afresh every epoch; they are never applied at
predict, score or validation time. An augmenter is given to an estimator as
its ``augment`` parameter, or as the Pipeline step before it (its
``transform`` leaves images as they are; its ``fit_transform`` returns an
:class:`AugmentedView` that the estimator's fit augments).
:class:`AugmentingOverSampler` grows a training set with augmented copies in
the imbalanced-learn style (``fit_resample``), so an imbalanced-learn
pipeline also skips it at predict.
"""

from ._base import BaseAugmenter
from ._basic import RandomCrop, RandomFlip, RandomLight
from ._composite import AugmentationPipeline, FaceAugmenter
from ._oversampling import AugmentedImages, AugmentingOverSampler
from ._view import AugmentedView

__all__ = [
    "AugmentationPipeline",
    "AugmentedImages",
    "AugmentedView",
    "AugmentingOverSampler",
    "BaseAugmenter",
    "FaceAugmenter",
    "RandomCrop",
    "RandomFlip",
    "RandomLight",
]
