"""Errors whose message is written for the person using FitStudio, not for a developer."""


class FitStudioError(Exception):
    """A problem the user can fix; the message says what to fix."""


class DatasetError(FitStudioError):
    """A folder that cannot be trained on: missing, no classes, empty class, class mismatch."""


class ConfigError(FitStudioError):
    """A setting outside what the engine accepts."""
