"""Image loading, resizing and age binning: numpy and Pillow only."""

from ._age import FAIRFACE_AGE_GROUPS, AgeBinner, age_group_midpoints
from ._images import ImageLoadError, as_image_source, load_image

__all__ = [
    "AgeBinner",
    "FAIRFACE_AGE_GROUPS",
    "ImageLoadError",
    "age_group_midpoints",
    "as_image_source",
    "load_image",
]
