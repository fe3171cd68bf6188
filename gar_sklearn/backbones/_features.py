"""A built backbone: its stages, feature size, input statistics and weights."""

from dataclasses import dataclass, field

from ._stages import check_input_size, smallest_input_size
from ._weights import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["BackboneFeatures"]


@dataclass
class BackboneFeatures:
    """A built backbone: stages whose composition maps images to feature vectors.

    Attributes
    ----------
    stages : list of (str, nn.Module)
        Named stages in order; the last one pools to ``(N, n_features)``.
    n_features : int
        Length of the feature vector.
    mean, std : tuple of float
        Input statistics of the weights (ImageNet's for random weights unless
        the backbone declares its own).
    weights : str or None
        What was loaded: a weights name, a file path, or None.
    name : str or None
        The backbone's name.
    input_size : int or None
        The square image side the pretrained weights were trained at (for
        random weights, the architecture's usual one), or None if unknown.
    interpolation : str or None
        The resize interpolation of the weights' preprocessing
        (``"bilinear"``, ``"bicubic"``), or None if unknown.
    stage_names : list of str
        The names of ``stages``.
    """

    stages: list
    n_features: int
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    weights: object = None
    name: str = None
    input_size: int = None
    interpolation: str = None
    stage_names: list = field(init=False)

    def __post_init__(self):
        self.stage_names = [name for name, _ in self.stages]

    def smallest_input_size(self):
        """The smallest square image side the stages accept (see :func:`smallest_input_size`)."""
        return smallest_input_size(self)

    def check_input_size(self, image_size):
        """Raise a ValueError naming the backbone when it cannot take ``image_size`` pixels."""
        check_input_size(self, image_size)
