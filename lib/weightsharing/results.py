"""What every paper's `run(ctx)` returns: one type for five chapters. The notebook shows its tables and figures where
its prose needs them (`Chapter.show`), glues its values into that prose, and writes its claims, saved tables and ladder
rows into summary.json (`Chapter.finish`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass
class Shown:
    """A table as the chapter shows it: `tables.show`'s formats and decimals, and what to say when it has no rows."""
    frame: pd.DataFrame
    formats: dict[str, str] | None = None
    decimals: int = 3
    empty: str = ""
    title: str = ""    # a line printed above it


@dataclass
class Results:
    tables: dict[str, Shown] = field(default_factory=dict)        # shown in the chapter, by name
    saved: dict[str, list[dict]] = field(default_factory=dict)     # summary.json's tables (the synthesis, the status)
    figures: dict[str, Any] = field(default_factory=dict)         # matplotlib figures, closed until shown
    values: dict[str, Any] = field(default_factory=dict)          # glued into the prose by name
    claims: list[dict] = field(default_factory=list)
    ladder: list[dict] = field(default_factory=list)              # this chapter's rows of the ladder of inductive bias

    def table(self, name: str, frame: pd.DataFrame, formats: dict[str, str] | None = None, *, decimals: int = 3,
              empty: str = "", title: str = "", save: bool = False) -> pd.DataFrame:
        """Show `frame` as `name`; with `save`, also keep its rows in summary.json under the same name."""
        self._new_name(name, self.figures, "figure")
        self.tables[name] = Shown(frame, formats, decimals, empty, title)
        if save:
            self.save(name, frame)
        return frame

    def measured(self, section: str, name: str, formats: dict[str, str] | None = None, *, decimals: int = 3,
                 title: bool = True) -> pd.DataFrame:
        """The table `make bench` stored as `name` in `section` (measurements), shown as `name` with where its numbers
        come from above it (`title`) or, where nothing is stored, in its place. A build times nothing."""
        from . import measurements

        line = measurements.provenance_line()
        return self.table(name, measurements.tables(section).get(name, pd.DataFrame()), formats, decimals=decimals,
                          empty=line, title=line if title else "")

    def save(self, name: str, frame: pd.DataFrame | list[dict]) -> None:
        self.saved[name] = frame.to_dict("records") if isinstance(frame, pd.DataFrame) else list(frame)

    def figure(self, name: str, fig) -> None:
        """Keep `fig` for `Chapter.show`; closed now, so that it is drawn where the chapter shows it, not here."""
        import matplotlib.pyplot as plt

        self._new_name(name, self.tables, "table")
        if fig is not None:  # None: this budget does not draw it
            plt.close(fig)
        self.figures[name] = fig

    @staticmethod
    def _new_name(name: str, other: dict, kind: str) -> None:
        if name in other:  # one name, one thing: `Chapter.show` looks it up in both
            raise ValueError(f"{name!r} is already a {kind} of these results: give it another name")

    def glue(self, name: str, value: Any) -> None:
        self.values[name] = value

    def glue_all(self, values: dict[str, Any], prefix: str = "") -> None:
        for k, v in values.items():
            self.values[f"{prefix}{k}"] = v
