"""Errors raised by `nas` for bad user input (genomes, files, options)."""


class NasError(Exception):
    """Base class of the errors `nas` raises for bad input; the CLI prints them as one line."""


class GenomeError(NasError, ValueError):
    """A genome (or a cell, op or parameter inside it) is invalid.

    `where` names the offending field or node, e.g. ``stages[2].cell`` or
    ``cells.normal.nodes.b3``; it is prefixed to the message.
    """

    def __init__(self, where: str, message: str):
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}" if where else message)

    def __reduce__(self):  # picklable (Ray ships a failed trial's exception back to the driver)
        return type(self), (self.where, self.message)


class RegistryError(NasError, KeyError):
    """A name is unknown to, or already taken in, a registry."""

    def __str__(self) -> str:  # KeyError quotes its message; we want plain text
        return str(self.args[0])
