"""Numbers reported in the LAMB paper (You et al., "Large Batch Optimization for Deep
Learning: Training BERT in 76 minutes"), as tidy data.

The CSV files live in ``analysis/reported/`` (see the README there). This module only
reads them and types the columns; it must never import jax.

    >>> from analysis import reported
    >>> t5 = reported.load(5)
    >>> t5[t5.metric == "top1_accuracy"][["batch_size", "value"]]
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

DATA_DIR = Path(__file__).resolve().with_name("reported")
TABLES = tuple(range(1, 26))
STATUSES = ("ok", "diverge", "diverged")

# Column order used by load_all(); each table CSV holds the subset that applies to it.
COLUMNS = (
    "table", "row",
    "optimizer", "optimizer_text",
    "batch_size", "batch_size_text",
    "epochs", "steps", "tpus",
    "learning_rate", "learning_rate_text",
    "warmup", "warmup_text", "warmup_unit",
    "weight_decay", "weight_decay_text", "l2_regularization",
    "metric", "value", "status", "value_text", "note",
)
_FLOAT = ("value", "learning_rate", "warmup", "weight_decay")
_INT = ("epochs", "steps", "tpus")  # nullable Int64


def _read_str(path: Path) -> pd.DataFrame:
    # Everything as text first, so that printed strings ("0.010", "disable", "") survive.
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")


def _batch_size(text: str):
    return int(text) if text.isdigit() else text  # "64k/32k" stays a string


def load(table: int) -> pd.DataFrame:
    """One table as a tidy DataFrame (one record per printed number)."""
    if table not in TABLES:
        raise ValueError(f"the paper has Tables 1-25, not {table!r}")
    df = _read_str(DATA_DIR / f"table{table:02d}.csv")
    df["table"] = df["table"].astype("int64")
    df["row"] = df["row"].astype("int64")
    for c in _FLOAT:
        if c in df:
            df[c] = pd.to_numeric(df[c].replace("", None), errors="raise").astype("float64")
    for c in _INT:
        if c in df:
            df[c] = pd.to_numeric(df[c].replace("", None), errors="raise").astype("Int64")
    if "batch_size" in df:
        vals = [_batch_size(v) for v in df["batch_size"]]
        if all(isinstance(v, int) for v in vals):
            df["batch_size"] = pd.Series(vals, index=df.index, dtype="int64")
        else:
            df["batch_size"] = pd.Series(vals, index=df.index, dtype=object)
    return df


def load_all() -> pd.DataFrame:
    """All 25 tables stacked; columns a table does not have are missing (NaN/NA)."""
    frames = [load(t) for t in TABLES]
    df = pd.concat(frames, ignore_index=True, sort=False)
    if df["batch_size"].dtype != object:
        df["batch_size"] = df["batch_size"].astype(object)
    return df[[c for c in COLUMNS if c in df.columns]]


def tables() -> pd.DataFrame:
    """One row per table: caption_short, row_count (printed data rows), experiment, ..."""
    df = _read_str(DATA_DIR / "tables.csv")
    df["table"] = df["table"].astype("int64")
    df["row_count"] = df["row_count"].astype("int64")
    return df


def defaults() -> pd.DataFrame:
    """LAMB defaults (Appendix H) and N-LAMB/NN-LAMB settings (Appendix D)."""
    df = _read_str(DATA_DIR / "appendix_h_defaults.csv")
    df["value"] = df["value"].astype("float64")
    return df


def nado2021() -> pd.DataFrame:
    """What could be read of Nado et al. 2021's published numbers (secondary sources, named)."""
    df = _read_str(DATA_DIR / "nado2021.csv")
    df["value"] = pd.to_numeric(df["value"].replace("", None)).astype("float64")
    return df


def critical_batch() -> pd.DataFrame:
    """The critical batch of the paper's tasks as the literature gives it (cited, quoted; empty
    bounds where none was found), against which the report places the paper's ladders."""
    df = _read_str(DATA_DIR / "critical_batch.csv")
    for column in ("batch_low", "batch_high"):
        df[column] = pd.to_numeric(df[column].replace("", None)).astype("float64")
    return df


def figures() -> pd.DataFrame:
    """Numbers stated in figure captions and in the running text."""
    df = _read_str(DATA_DIR / "figures.csv")
    df["value"] = pd.to_numeric(df["value"].replace("", None)).astype("float64")
    return df
