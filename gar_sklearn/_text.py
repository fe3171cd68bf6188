"""Wording shared by the package's messages (no torch)."""

__all__ = ["shown"]


def shown(names, limit=10, describe=repr):
    """The first ``limit`` of ``names``, each through ``describe``, and how many more.

    Examples
    --------
    >>> shown(["a.jpg", "b.jpg", "c.jpg"], limit=2)
    "'a.jpg', 'b.jpg' and 1 more"
    >>> shown([("x.jpg", "no face")], describe=lambda pair: f"{pair[0]!r} ({pair[1]})")
    "'x.jpg' (no face)"
    """
    names = list(names)
    text = ", ".join(describe(n) for n in names[:limit])
    return text + (f" and {len(names) - limit} more" if len(names) > limit else "")
