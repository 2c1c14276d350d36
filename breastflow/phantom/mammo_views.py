"""Views and categories of a four-view screening mammogram."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from breastflow.vocabulary import Laterality, ViewPosition


class Density(str, Enum):
    """BI-RADS breast density category (5th edition, A = fatty ... D = extremely dense)."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"

    @property
    def dense_fraction(self) -> float:
        """Target fibroglandular share of the breast area (middle of the category band)."""
        return {"A": 0.12, "B": 0.35, "C": 0.60, "D": 0.82}[self.value]


@dataclass(frozen=True)
class MammoView:
    """One of the four screening views."""

    laterality: Laterality
    position: ViewPosition

    @property
    def name(self) -> str:
        """``"LCC"``, ``"RMLO"`` ..."""
        return f"{self.laterality.value}{self.position.value}"


VIEWS: tuple[MammoView, ...] = tuple(
    MammoView(lat, pos) for lat in Laterality for pos in ViewPosition
)  # LCC, LMLO, RCC, RMLO
