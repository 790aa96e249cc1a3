"""The study layer's errors: both are UserErrors, which the CLI prints as one line (exit 2)."""

from __future__ import annotations

from archlab.errors import UserError

__all__ = ["StudyError", "StudyFileError"]


class StudyFileError(UserError):
    """A study file or a study override is invalid; one line naming the file and key path."""


class StudyError(UserError):
    """A study cannot proceed (unknown study in the storage, tuning found nothing, ...)."""
