"""Errors a user can cause: the CLI prints them as one line and exits with status 2."""


class UserError(Exception):
    """Bad input from the user (config, argument, file): one line naming what is wrong."""


class ConfigError(UserError):
    """A config key is unknown, has the wrong type, or holds an impossible value."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class CheckpointError(UserError):
    """A checkpoint is missing, truncated or corrupt and is refused rather than loaded."""


class DataError(UserError):
    """A data file or folder given by the user is missing or malformed."""
