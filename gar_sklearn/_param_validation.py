"""Declared parameter constraints, checked at the start of ``fit``, the scikit-learn way.

An estimator lists ``_parameter_constraints = {name: [constraint, ...]}``
with scikit-learn's constraint objects (``Interval``, ``StrOptions``,
``Options``, ``HasMethods``), ``None``, ``"boolean"``, a type, or
:class:`Described` for a constraint best said in words.
:func:`validate_params` raises a ValueError naming the parameter, what is
allowed and what was received. ``"no_validation"`` leaves a parameter to the
code that uses it, which checks it with more context (a backbone's stage
names, say). Booleans satisfy ``"boolean"`` and
``Options`` holding them only, never a number's interval.
"""

import numbers

from ._compat import HasMethods, Interval, Options, StrOptions, make_constraint

__all__ = ["Described", "HasMethods", "Interval", "Options", "StrOptions", "validate_params"]


class Described:
    """A constraint said in words: ``Described(constraint, "words")``.

    ``constraint`` is a constraint as above, a tuple of types, or a function
    of the value returning whether it is allowed.
    """

    def __init__(self, constraint, description):
        self.constraint = constraint
        self.description = description

    def is_satisfied_by(self, value):
        if isinstance(self.constraint, tuple):
            return isinstance(value, self.constraint)
        if callable(self.constraint) and not isinstance(self.constraint, type):
            return bool(self.constraint(value))
        return _satisfies(self.constraint, value)

    def __str__(self):
        return self.description


def _satisfies(constraint, value):
    if constraint == "no_validation":  # checked where it is used, with a message of its own
        return True
    if isinstance(constraint, Described):
        return constraint.is_satisfied_by(value)
    if isinstance(value, bool) and isinstance(constraint, Interval):
        return False  # True is an int to Python, not a learning rate or a size
    return make_constraint(constraint).is_satisfied_by(value)


def _number(c):
    integral = c.type is numbers.Integral
    noun, article, fmt = ("int", "an", int) if integral else ("float", "a", float)
    left_in, right_in = c.closed in ("left", "both"), c.closed in ("right", "both")
    if c.right is None and c.left is not None:
        if (c.left == 0 and not left_in) or (integral and c.left == 1 and left_in):
            return f"a positive {noun}"
        return f"{article} {noun} {'>=' if left_in else '>'} {c.left}"
    if c.left is not None:
        lo, hi = "[" if left_in else "(", "]" if right_in else ")"
        return f"{article} {noun} in {lo}{fmt(c.left)}, {fmt(c.right)}{hi}"
    return str(c)


def _describe(constraint):
    if isinstance(constraint, Described):
        return constraint.description
    if constraint is None:
        return "None"
    if constraint == "verbose":
        return "an int >= 0"
    if constraint == "random_state":
        return "None, an int in [0, 2**32 - 1] or a numpy RandomState"
    if isinstance(constraint, Interval):
        return _number(constraint)
    if isinstance(constraint, (StrOptions, Options)):
        options = sorted(constraint.options, key=repr)
        return repr(options[0]) if len(options) == 1 else f"one of {options}"
    if isinstance(constraint, type):
        return {str: "a str", numbers.Real: "a number"}.get(constraint, constraint.__name__)
    return str(constraint)


def _options(constraints):
    """The allowed values when every constraint is a set of them, else None."""
    values = []
    for c in constraints:
        if c is None:
            values.append(None)
        elif c == "boolean":
            values.extend([True, False])
        elif isinstance(c, (StrOptions, Options)):
            values.extend(sorted(c.options, key=repr))
        else:
            return None
    return values


def describe_constraints(constraints):
    """What a list of constraints allows, in words."""
    options = _options(constraints)
    if options is not None:
        return f"one of {options}"
    words = [_describe(c) for c in constraints]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def validate_params(estimator, only=None):
    """Check ``estimator``'s parameters against its ``_parameter_constraints``.

    ``only``: the names to check (default: all).

    Raises
    ------
    ValueError
        "The 'name' parameter must be <allowed>. Got <value> instead."
    """
    params = estimator.get_params(deep=False)
    for name, constraints in estimator._parameter_constraints.items():
        if only is not None and name not in only:
            continue
        value = params[name]
        if not any(_satisfies(c, value) for c in constraints):
            raise ValueError(
                f"The {name!r} parameter must be {describe_constraints(constraints)}. "
                f"Got {value!r} instead."
            )
