"""Image loading, resizing and age binning."""

from ._age import (
    FAIRFACE_AGE_GROUPS,
    AgeBinner,
    age_group_bounds,
    age_group_midpoints,
    aggregate_age_proba,
)
from ._faces import FaceCropper, FaceCrops, NoFaceWarning
from ._images import ImageLoadError, as_image_source, load_image, read_image
from ._transformers import ImageLoader

__all__ = [
    "AgeBinner",
    "FAIRFACE_AGE_GROUPS",
    "FaceCropper",
    "FaceCrops",
    "NoFaceWarning",
    "ImageLoadError",
    "ImageLoader",
    "age_group_bounds",
    "age_group_midpoints",
    "aggregate_age_proba",
    "as_image_source",
    "load_image",
    "read_image",
]
