"""One label set for data sets labelled differently (UTKFace, FairFace, IMDB-WIKI)."""

import pandas as pd

from ..preprocessing import FAIRFACE_AGE_GROUPS, AgeBinner
from ._base import FAIRFACE_RACES, UTKFACE_RACES, _make_bunch

__all__ = ["FAIRFACE_TO_UTKFACE_RACE", "concat_datasets", "harmonize_labels"]

#: FairFace's seven races onto UTKFace's five. Lossy, and a choice: UTKFace's
#: "Asian" covers East and Southeast Asian, and its "Others" is taken to hold
#: Latino/Hispanic and Middle Eastern faces.
FAIRFACE_TO_UTKFACE_RACE = {
    "White": "White",
    "Black": "Black",
    "East Asian": "Asian",
    "Southeast Asian": "Asian",
    "Indian": "Indian",
    "Latino_Hispanic": "Others",
    "Middle Eastern": "Others",
}

# the label family of each source: its races and how its ages are given
_FAMILIES = {
    "utkface": ("utkface", "exact"),
    "fairface": ("fairface", "fairface_groups"),
    "imdb_wiki": (None, "exact"),
}
_ALIASES = {"imdb": "imdb_wiki", "wiki": "imdb_wiki"}
_RACE_SETS = {"utkface": UTKFACE_RACES, "fairface": FAIRFACE_RACES}


def _check_choice(value, name, allowed):
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(
            f"The '{name}' parameter must be one of {list(allowed)}. Got {value!r} instead."
        )
    return value


def _unknown(values, allowed):
    values = pd.Series(values)
    return sorted(map(str, set(values[values.notna()]) - set(allowed)))


def harmonize_labels(target, source, *, races="utkface", age="fairface_groups"):
    """Map a data set's labels onto a common label set.

    UTKFace labels exact ages and five races, FairFace nine age groups and
    seven races, IMDB-WIKI exact ages and no race. To train or evaluate on
    several of them together, map them all onto one set:

    - ``races="utkface"`` maps FairFace's seven races onto UTKFace's five
      through :data:`FAIRFACE_TO_UTKFACE_RACE`: East Asian and Southeast Asian
      -> Asian, Latino_Hispanic and Middle Eastern -> Others, the rest to
      themselves. This loses information and is a choice (UTKFace's
      "Others" is a catch-all, not a definition). UTKFace's five races cannot
      be split into FairFace's seven, so ``races="fairface"`` refuses
      UTKFace labels.
    - ``age="fairface_groups"`` bins exact ages into FairFace's nine groups
      with ``AgeBinner(bins="fairface")``; ``age="exact"`` keeps exact ages
      and refuses FairFace's groups, which cannot be undone.

    Gender is "Male"/"Female" in every loader and passes through unchanged,
    as do columns other than ``age`` and ``race`` (``path``, ...).

    Parameters
    ----------
    target : DataFrame
        Labels as a loader returns them (``target`` or ``frame``).
    source : {"utkface", "fairface", "imdb_wiki"}
        Which label set ``target`` uses (``"imdb"`` and ``"wiki"`` are read as
        ``"imdb_wiki"``).
    races : {"utkface", "fairface"}, default="utkface"
        The race labels to map onto (ignored when ``target`` has no ``race``).
    age : {"fairface_groups", "exact"}, default="fairface_groups"
        The age labels to map onto.

    Returns
    -------
    DataFrame
        A copy of ``target`` with ``race`` and ``age`` mapped.

    See Also
    --------
    concat_datasets : Harmonises several loaded data sets and stacks them.

    Examples
    --------
    >>> import pandas as pd
    >>> from gar_sklearn.datasets import harmonize_labels
    >>> fairface = pd.DataFrame({"age": ["20-29", "3-9"], "gender": ["Male", "Female"],
    ...                          "race": ["Southeast Asian", "Middle Eastern"]})
    >>> harmonize_labels(fairface, "fairface")
         age  gender    race
    0  20-29    Male   Asian
    1    3-9  Female  Others
    >>> utkface = pd.DataFrame({"age": [1, 74], "gender": ["Female", "Male"],
    ...                         "race": ["Indian", "White"]})
    >>> harmonize_labels(utkface, "utkface")
                age  gender    race
    0           0-2  Female  Indian
    1  more than 70    Male   White
    """
    if not isinstance(target, pd.DataFrame):
        raise TypeError(
            f"The 'target' parameter must be a pandas DataFrame. Got {type(target).__name__} instead."
        )
    family = _check_choice(
        _ALIASES.get(source, source), "source", ("utkface", "fairface", "imdb_wiki", "imdb", "wiki")
    )
    _check_choice(races, "races", ("utkface", "fairface"))
    _check_choice(age, "age", ("fairface_groups", "exact"))
    own_races, own_age = _FAMILIES[family]
    out = target.copy()

    if "race" in out.columns:
        if own_races is None:
            raise ValueError(
                f"IMDB-WIKI has no race labels, but the target given as source={source!r} has a 'race' column."
            )
        unknown = _unknown(out["race"], _RACE_SETS[own_races])
        if unknown:
            raise ValueError(
                f"The 'race' column holds labels that {family} does not use: {unknown}. "
                f"Expected {list(_RACE_SETS[own_races])}."
            )
        if own_races == "fairface" and races == "utkface":
            out["race"] = out["race"].map(FAIRFACE_TO_UTKFACE_RACE)
        elif own_races == "utkface" and races == "fairface":
            raise ValueError(
                "UTKFace's races cannot be mapped onto FairFace's seven (its 'Asian' and 'Others' "
                "each cover several FairFace classes); use races='utkface'."
            )

    if "age" in out.columns:
        if own_age == "exact":
            if age == "fairface_groups":
                groups = AgeBinner(bins="fairface").fit_transform(out["age"].to_numpy())
                out["age"] = pd.Series(groups, index=out.index, dtype="str")
        else:
            unknown = _unknown(out["age"], FAIRFACE_AGE_GROUPS)
            if unknown:
                raise ValueError(
                    f"The 'age' column holds labels that are not FairFace's age groups: {unknown}. "
                    f"Expected {list(FAIRFACE_AGE_GROUPS)}."
                )
            if age == "exact":
                raise ValueError(
                    "FairFace gives age groups, which cannot be turned back into exact ages; use "
                    "age='fairface_groups'."
                )
    return out


def concat_datasets(
    datasets, *, races="utkface", age="fairface_groups", columns="common", return_X_y=False
):
    """Stack loaded data sets into one, on a common label set.

    Each data set's labels go through :func:`harmonize_labels` (read its
    notes: the race mapping is lossy), then the frames are stacked with a
    ``source`` column naming where each row came from.

    Parameters
    ----------
    datasets : sequence of Bunch
        Bunches returned by the loaders of this module (their ``source``
        tells which label set they use).
    races : {"utkface", "fairface"}, default="utkface"
        The race labels to map onto.
    age : {"fairface_groups", "exact"}, default="fairface_groups"
        The age labels to map onto.
    columns : {"common", "all"}, default="common"
        ``"common"`` keeps the target columns every data set has (so adding
        IMDB-WIKI drops ``race``) and no extra frame columns; ``"all"`` keeps
        every column, missing values where a data set lacks one (the
        estimators cannot train on a missing label: drop those rows or that
        column first).
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data``, ``target``, ``frame`` (with the ``source`` column),
        ``feature_names``, ``target_names``, ``DESCR`` (the parts' own
        descriptions and licences) and ``source="combined"``.

    (data, target) : tuple if ``return_X_y`` is True

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn.utils import Bunch
    >>> from gar_sklearn.datasets import concat_datasets
    >>> def bunch(source, **labels):
    ...     frame = pd.DataFrame({"path": ["a.jpg"], **labels})
    ...     return Bunch(frame=frame, source=source, DESCR=source)
    >>> both = concat_datasets([
    ...     bunch("utkface", age=[45], gender=["Male"], race=["Asian"]),
    ...     bunch("fairface", age=["3-9"], gender=["Female"], race=["East Asian"])])
    >>> both.frame
        path    age  gender   race    source
    0  a.jpg  40-49    Male  Asian   utkface
    1  a.jpg    3-9  Female  Asian  fairface
    """
    _check_choice(columns, "columns", ("common", "all"))
    datasets = list(datasets)
    if not datasets:
        raise ValueError("The 'datasets' parameter must hold at least one data set. Got none.")
    frames, descrs, names = [], [], []
    for i, bunch in enumerate(datasets):
        source = getattr(bunch, "source", None) if hasattr(bunch, "frame") else None
        if source not in ("utkface", "fairface", "imdb", "wiki", "imdb_wiki"):
            raise ValueError(
                f"The 'datasets' parameter must hold Bunches from load_utkface, load_fairface or "
                f"load_imdb_wiki, with a 'frame' and a 'source'. Item {i} has source {source!r}."
            )
        frame = harmonize_labels(bunch.frame, source, races=races, age=age)
        frame["source"] = pd.Series([source] * len(frame), index=frame.index, dtype="str")
        frames.append(frame)
        descrs.append(getattr(bunch, "DESCR", ""))
        names.append(f"{source} ({len(frame)} rows)")

    present = [[c for c in ("age", "gender", "race") if c in f.columns] for f in frames]
    if columns == "common":
        target_names = [c for c in present[0] if all(c in p for p in present)]
        frames = [f[["path", *target_names, "source"]] for f in frames]
    else:
        target_names = [c for c in ("age", "gender", "race") if any(c in p for p in present)]
    frame = pd.concat(frames, ignore_index=True, sort=False)
    if columns == "all":
        extra = [c for c in frame.columns if c not in ("path", *target_names, "source")]
        frame = frame[["path", *target_names, *extra, "source"]]
    descr = (
        f"Combined data set: {', '.join(names)}; labels harmonised with races={races!r}, "
        f"age={age!r}. Each part keeps its own licence:\n\n" + "\n\n".join(descrs)
    )
    return _make_bunch(frame, target_names, descr, "combined", return_X_y)
