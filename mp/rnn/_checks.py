"""Argument checks shared by the modules of `mp.rnn`: each error names the argument and value."""

import numbers


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def count(name, value, minimum=1):
    """`value` as an int, if it is an integer >= `minimum`; else a ValueError naming it."""
    if not _is_int(value) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {what}. Received: {name}={value}")
    return int(value)


def positive(name, value):
    """`value` as a float, if it is a number > 0; else a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"{name} must be positive. Received: {name}={value}")
    return float(value)
