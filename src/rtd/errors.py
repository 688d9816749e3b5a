"""Errors that the stage entry points turn into one clear message and a non-zero exit."""


class RTDError(Exception):
    """A user-facing error: bad params, missing data or weights, a diverged run.

    The message must say what is wrong and how to fix it; stages print it without a traceback.
    """


class ParamError(RTDError):
    """An invalid value in params.yaml."""
