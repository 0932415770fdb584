"""The parties of one job as SecretFlow devices, and vertical frames built from them.

Every party's worker builds the same ``Federation``; a device call runs only at
the process that owns the device, so a callable handed to ``frame`` reads the
running party's own data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd


class Federation:
    """The parties' PYU devices and the vertical frames built from per-party callables."""

    def __init__(self, party_names: list[str], label_party: str) -> None:
        import secretflow as sf

        self.pyus = {p: sf.PYU(p) for p in party_names}
        self.label = self.pyus[label_party]

    def frame(self, build: Callable[[], pd.DataFrame]) -> Any:
        """A VDataFrame over every party; ``build`` runs only where it is local."""
        from secretflow.data import partition
        from secretflow.data.vertical import VDataFrame

        return VDataFrame({pyu: partition(data=build, device=pyu, backend="pandas") for pyu in self.pyus.values()})

    def label_frame(self, build: Callable[[], pd.DataFrame]) -> Any:
        from secretflow.data import partition
        from secretflow.data.vertical import VDataFrame

        return VDataFrame({self.label: partition(data=build, device=self.label, backend="pandas")})
