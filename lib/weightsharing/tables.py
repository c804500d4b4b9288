"""One table style for every page: readable headers, fixed decimals per column, integers as integers, no index
noise, and ours beside the paper's with the difference."""
from __future__ import annotations

import math
import numbers

import pandas as pd

HEADERS = {"ours_std": "ours std", "ours_se": "ours s.e.", "n_seeds": "runs", "paper_std": "paper std",
           "acc": "accuracy", "test_acc": "test accuracy", "train_acc": "train accuracy", "lr": "learning rate",
           "p": "p", "rho": "ρ", "se": "s.e.", "std": "std", "per_class": "per class", "n_train": "n train"}
DIFFERENCE = "ours − paper"
NUMBER_CSS = [{"selector": "td", "props": "padding: 0.2em 0.7em; font-variant-numeric: tabular-nums; vertical-align: top;"},
              {"selector": "th", "props": "padding: 0.2em 0.7em; text-align: left; vertical-align: bottom;"},
              {"selector": "", "props": "font-size: 0.85em; border-collapse: collapse; margin: 0.5em 0 1em 0;"}]


def header(name) -> str:
    """`ours_std` -> `ours std`: a reader's words, not a variable's."""
    if isinstance(name, tuple):
        return " ".join(header(n) for n in name if n != "")
    text = str(name)
    return HEADERS.get(text, text.replace("_", " "))


def _is_integral(s: pd.Series) -> bool:
    values = [v for v in s if isinstance(v, numbers.Number) and not isinstance(v, bool) and not (isinstance(v, float) and math.isnan(v))]
    return bool(values) and all(float(v).is_integer() for v in values) and max(abs(float(v)) for v in values) >= 2


def _fmt(spec: str):
    def f(v):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "—"
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, numbers.Number):
            return spec.format(v)
        return str(v)
    return f


def with_difference(df: pd.DataFrame, ours: str = "ours", paper: str = "paper") -> pd.DataFrame:
    """Put the paper's column right after ours (and its spread), followed by ours − paper, where both exist."""
    if ours not in df or paper not in df or df[paper].isna().all():
        return df
    out = df.copy()
    if not any(c in out for c in ("diff", "difference", DIFFERENCE)):
        out[DIFFERENCE] = pd.to_numeric(out[ours], errors="coerce") - pd.to_numeric(out[paper], errors="coerce")
    cols = [c for c in out.columns if c not in (paper, DIFFERENCE)]
    last_ours = max(i for i, c in enumerate(cols) if str(c).startswith(ours))
    extra = [paper] + ([DIFFERENCE] if DIFFERENCE in out else [])
    return out[cols[:last_ours + 1] + extra + cols[last_ours + 1:]]


def show(df: pd.DataFrame, formats: dict[str, str] | None = None, *, decimals: int = 3, index: bool | None = None):
    """A Styler for `df`: each column formatted by `formats` (a format spec, e.g. "{:+.3f}"), else integers as
    integers and other numbers with `decimals` places; missing values as a dash; headers in words. The index is
    shown only if it means something (not 0..n-1)."""
    formats = dict(formats or {})
    df = with_difference(df) if "ours" in df and "paper" in df else df
    if DIFFERENCE in df and DIFFERENCE not in formats:
        formats[DIFFERENCE] = "{:+." + str(decimals) + "f}"
    noise = df.index.name is None and not isinstance(df.index, pd.MultiIndex) and pd.api.types.is_integer_dtype(df.index)
    if noise:  # 0..n-1, or the row numbers a concat or a filter left behind: they mean nothing to a reader
        df = df.reset_index(drop=True)
    elif not df.index.is_unique:
        df = df.reset_index()
    if index is None:
        index = not isinstance(df.index, pd.RangeIndex)
    cell = {}
    for col in df.columns:
        spec = formats.get(col) or formats.get(str(col))
        if spec is None:
            s = df[col]
            spec = "{:,.0f}" if (pd.api.types.is_integer_dtype(s) or _is_integral(s)) else "{:." + str(decimals) + "f}"
        cell[col] = _fmt(spec)
    shown = df.rename(columns=header) if not isinstance(df.columns, pd.MultiIndex) else df
    styler = shown.style.format({header(c) if not isinstance(df.columns, pd.MultiIndex) else c: f for c, f in cell.items()})
    if isinstance(df.columns, pd.MultiIndex):
        styler = styler.format_index(lambda v: header(v), axis=1)
    styler = styler.format_index(lambda v: header(v) if isinstance(v, str) else _fmt("{:g}")(v), axis=0)
    styler = styler.set_table_styles(NUMBER_CSS)
    numeric = [header(c) if not isinstance(df.columns, pd.MultiIndex) else c for c in df.columns
               if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
    styler = styler.set_properties(subset=numeric, **{"text-align": "right", "white-space": "nowrap"})
    text = [c for c in styler.data.columns if c not in numeric]
    if text:
        styler = styler.set_properties(subset=text, **{"text-align": "left"})
    return styler if index else styler.hide(axis="index")
