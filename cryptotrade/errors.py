"""Errors in the user's input: a file, a setting, a missing model.

The launcher prints a :class:`UserError` as one line (what is wrong and how to fix it) instead of
a stack trace; the trace still goes to the run's log and ``error/traceback.txt``, and
``HYDRA_FULL_ERROR=1`` shows it on the terminal. Any other exception is unexpected and keeps its
trace. Raise the subclass that says where the problem is; each is also a ``ValueError`` so code
that already catches ``ValueError`` keeps working.
"""

from __future__ import annotations


class UserError(ValueError):
    """Something the user gave is wrong; the message names it and the fix."""


class ConfigError(UserError):
    """A setting or override is invalid (unknown key, value out of range, wrong combination)."""


class DataError(UserError):
    """An input file or downloaded data is malformed or does not fit the settings."""


class ModelError(UserError):
    """A model to load is missing or does not fit the configured agent, data or env."""


class SearchError(UserError):
    """Every candidate of a search failed: there is no winner to pick (the message gives the
    count and the first error; each candidate's child run holds its traceback)."""
