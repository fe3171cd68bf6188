"""Synthetic "faces" whose labels are drawn into the picture: for tests, docs and examples."""

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

__all__ = ["make_synthetic_faces"]

_RACES = ("White", "Black", "Asian", "Indian", "Others")
_AGE_EDGES = (0, 3, 10, 20, 30, 40, 50, 60, 70, 90)  # FairFace's nine groups, capped at 89
_COLOURS = np.array([[220, 60, 60], [60, 200, 60], [60, 60, 220], [220, 200, 60], [180, 60, 200]])


def make_synthetic_faces(
    n_samples=200,
    *,
    image_size=32,
    n_age_groups=9,
    n_races=5,
    gender_dependent=False,
    noise=20.0,
    random_state=None,
):
    """Images in which gender, age group and race are each visible.

    Gender sets which half of the image holds a bright vertical bar (left:
    Male, right: Female); the age group sets the height of a horizontal
    stripe; race sets the colour of a square in the top-left corner. Noise is
    added everywhere. Labels use UTKFace's vocabulary, ages are exact years
    drawn inside FairFace's nine groups.

    Parameters
    ----------
    n_samples : int, default=200
    image_size : int, default=32
        Side of the square images (at least 16).
    n_age_groups : int, default=9
        How many of FairFace's nine age groups occur (the youngest ones).
    n_races : int, default=5
        How many of the five races occur.
    gender_dependent : bool, default=False
        When True the same cue means a different class for women: their
        stripe heights and square colours map to the age groups and races in
        reverse order. A model must then know the gender to read them.
    noise : float, default=20.0
        Standard deviation of Gaussian pixel noise.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    X : ndarray of shape (n_samples, image_size, image_size, 3), uint8
    y : DataFrame with columns gender, age, race

    Examples
    --------
    >>> from gar_sklearn.datasets import make_synthetic_faces
    >>> X, y = make_synthetic_faces(10, random_state=0)
    >>> X.shape, list(y.columns)
    ((10, 32, 32, 3), ['gender', 'age', 'race'])
    """
    if image_size < 16:
        raise ValueError(f"image_size must be at least 16 pixels. Got {image_size} instead.")
    if not 1 <= n_age_groups <= 9 or not 1 <= n_races <= 5:
        raise ValueError(
            f"n_age_groups must be in [1, 9] and n_races in [1, 5]. Got {n_age_groups} and {n_races}."
        )
    rng = check_random_state(random_state)
    s = image_size
    female = rng.randint(0, 2, n_samples).astype(bool)
    age_group = rng.randint(0, n_age_groups, n_samples)
    race = rng.randint(0, n_races, n_samples)
    lo, hi = np.asarray(_AGE_EDGES[:-1]), np.asarray(_AGE_EDGES[1:])
    ages = lo[age_group] + (rng.random_sample(n_samples) * (hi - lo)[age_group]).astype(int)

    # the cue drawn for each sample; reversed for women when gender_dependent
    age_cue = np.where(female & gender_dependent, n_age_groups - 1 - age_group, age_group)
    race_cue = np.where(female & gender_dependent, n_races - 1 - race, race)

    X = np.full((n_samples, s, s, 3), 90.0)
    band = max(1, (s // 2) // 9)
    for i in range(n_samples):
        x0 = s // 2 if female[i] else 0
        X[i, :, x0 + s // 8 : x0 + s // 8 + s // 8] = 230.0
        row = s // 2 + age_cue[i] * band
        X[i, row : row + band, :] = 20.0
        X[i, : s // 3, : s // 3] = _COLOURS[race_cue[i]]
    X += rng.normal(0.0, noise, X.shape)
    X = np.clip(X, 0, 255).round().astype(np.uint8)
    y = pd.DataFrame(
        {
            "gender": np.where(female, "Female", "Male"),
            "age": ages,
            "race": np.asarray(_RACES)[race],
        }
    )
    return X, y
