"""Text and CSV cells that a file name cannot turn into something else.

A scanned folder may name a file anything: a newline in a name would forge a second verdict
line in ``predict``'s output, an ANSI escape would reach the terminal raw, and a name that
begins with ``=`` would become a formula when the CSV is opened in a spreadsheet. Text output
escapes what is not printable; CSV cells that begin with ``= + - @`` get a leading ``'``
(the usual guard against CSV formula injection). JSON output stays exact.
"""

from __future__ import annotations

#: First characters a spreadsheet reads as the start of a formula.
FORMULA_STARTS = ("=", "+", "-", "@")


def printable(text: str) -> str:
    """``text`` with every non-printable character (newline, tab, ESC...) escaped as
    Python writes it (``\\n``, ``\\x1b``); letters of any script are kept as they are."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def csv_cell(value: object) -> object:
    """A text cell that cannot start a formula (``'`` prepended); numbers pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
