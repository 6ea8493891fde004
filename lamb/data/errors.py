"""Errors raised by the data loaders."""
from __future__ import annotations


class DatasetNotFoundError(RuntimeError):
  """A data set is not available locally; the message says which one and how to provide it.

  The message is always a single line (any newlines or runs of whitespace in it are collapsed),
  because the command-line runner prints it as-is and exits with status 2.
  """

  def __init__(self, message: str):
    super().__init__(" ".join(str(message).split()))
