"""How the toolkit says numbers in its lines: counts with their noun in the right number,
and accuracies as README's tables show them."""
from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """'1 epoch', '2 epochs', '0 faces'; ``plural`` where adding an s is wrong."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def percent(share: float) -> str:
    """An accuracy (0-1) as README's tables give it: 0.686 -> '68.60%'."""
    return f"{100 * share:.2f}%"
