"""The one loader: every run under `results/` as one pandas DataFrame (no jax: reads files only).

One row per run folder: experiment, scale, run, status, the config flattened to dotted
columns (``config.optimizer.name``, ``config.seed``...), and the summary's final/best metrics as
``final.accuracy``, ``best.accuracy`` etc. A folder without a summary is a row with status
``incomplete``, one whose config.json or summary.json cannot be read a row with status
``unreadable`` (its ``error`` says which file and why), one whose files name another experiment
or scale than its folder (copied there by hand) a row with status ``misplaced``; nothing is
dropped silently.

Divergence is decided here, as the paper means it (its "diverge" rows in Tables 2 and 8 are
runs whose loss blew up to a finite value): a run is ``diverged`` when the runner stopped it at a
non-finite value, or when its training loss ends (mean of the last 5% of recorded steps) more than
5% above where it started (the first recorded step) or above the chance level ln(classes) of a
classifier. The 5% keeps a run that never left its start (too small a rate: its loss wanders
about 1% around the start) from being called diverged; such a run sits at chance, which the
claims check separately.
``runner_status`` keeps the runner's own word and ``diverged_because`` says which rule fired.

Files are parsed once per process and read again only when they change on disk.
"""
from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Optional

import pandas as pd

from analysis import vocabulary as vocab
from lamb.train import results  # file formats only: no jax

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"


def _flatten(obj, prefix="") -> dict:
  out = {}
  for key, value in (obj or {}).items():
    name = f"{prefix}{key}"
    if isinstance(value, dict):
      out.update(_flatten(value, name + "."))
    elif isinstance(value, list):
      out[name] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
    else:
      out[name] = value
  return out


def _read(path: Path) -> tuple:
  """(the object in `path` or None, why it could not be read or '')."""
  try:
    return results.read_json(path), ""
  except results.UnreadableError as e:
    return None, str(e)


def check_results_dir(results_dir) -> Optional[str]:
  """The one-line error for a results folder that does not exist (None when it does)."""
  if not Path(results_dir).is_dir():
    return (f"--results_dir={results_dir} is not a folder; give the folder runs wrote to "
            f"(default {RESULTS})")
  return None


SUMMARY_KEYS = ("steps", "total_steps", "epochs", "wall_time_s", "train_time_s", "examples_per_s",
                "diverged_at_step", "device_kind", "device_count", "data", "error")
# Rows every frame has, so that selectors never meet a missing column.
COLUMNS = ("experiment", "scale", "run", "path", "status", "runner_status", "diverged_because",
           "divergence_unchecked", "noise_records", "loss_start", "loss_end", "chance_accuracy",
           "chance_loss", "eval_examples", *SUMMARY_KEYS)
DIVERGED_MEANS = ("the runner stopped at a non-finite value, or the training loss ended (mean of the "
                  "last 5% of steps) more than 5% above where it started or above the chance "
                  "level ln(classes); a run that never left its start is not diverged but sits "
                  "at chance")
BLOW_UP = 0.05  # how far above its start (or chance) a training loss must end to count as diverged
_CACHE: dict = {}  # run folder -> (signature of its files, row)


def _signature(run_dir: Path) -> tuple:
  out = []
  for name in (results.CONFIG, results.SUMMARY, results.METRICS):
    try:
      st = (run_dir / name).stat()
      out.append((st.st_mtime_ns, st.st_size))
    except OSError:
      out.append(None)
  return tuple(out)


def _records(run_dir: Path | str) -> Optional[list]:
  try:
    return results.read_jsonl(Path(run_dir) / results.METRICS)
  except (results.UnreadableError, OSError):
    return None


def _losses(records: list) -> list:
  return [float(r["loss"]) for r in records
          if r.get("split") == "train" and isinstance(r.get("loss"), (int, float))]


def train_losses(run_dir: Path | str) -> Optional[list]:
  """Every recorded training loss of a run, in order; None when metrics.jsonl is missing or
  cannot be read."""
  records = _records(run_dir)
  return None if records is None else _losses(records)


def tail(losses: list) -> list:
  """The last 5% of a loss curve (one step at least): where it ends, so that one noisy step
  does not decide."""
  return losses[-max(1, len(losses) // 20):]


def tail_mean(losses: list) -> float:
  end = tail(losses)
  return sum(end) / len(end)


def _chance(config: dict, summary: dict) -> tuple:
  """(accuracy, loss) of guessing: uniformly for a classifier; for BERT the unigram accuracy its
  evaluation records (the most frequent masked token every time), with no loss level."""
  classes = (config.get("model") or {}).get("num_classes")
  if isinstance(classes, int) and classes > 1:
    return 1.0 / classes, math.log(classes)
  return (summary.get("final") or {}).get("unigram_masked_lm_accuracy"), None


def _divergence(row: dict, run_dir: Path) -> None:
  """Fills loss_start, loss_end and, when a rule fires, status 'diverged' with the reason; a
  completed run without readable training losses is marked `divergence_unchecked`."""
  if row["status"] not in (vocab.COMPLETED, vocab.DIVERGED):
    return
  records = _records(run_dir) or []
  # Read once here: the critical-batch section reads again only runs that measured noise.
  row["noise_records"] = sum(r.get("split") == "noise" for r in records)
  losses = _losses(records)
  row["divergence_unchecked"] = not losses and row["status"] == vocab.COMPLETED
  if losses:
    row["loss_start"], row["loss_end"] = losses[0], tail_mean(losses)
  if row["status"] == vocab.DIVERGED:
    at = row.get("diverged_at_step")
    row["diverged_because"] = "a non-finite value" + (f" at step {at}" if at is not None else "")
  elif row["status"] == vocab.COMPLETED and losses:
    start, end, chance = row["loss_start"], row["loss_end"], row["chance_loss"]
    if end > (1 + BLOW_UP) * start:
      row["diverged_because"] = (f"training loss ended at {end:.4g}, more than "
                                 f"{BLOW_UP:.0%} above its start {start:.4g}")
    elif chance is not None and end > (1 + BLOW_UP) * chance:
      row["diverged_because"] = (f"training loss ended at {end:.4g}, more than {BLOW_UP:.0%} "
                                 f"above the chance level ln({round(math.exp(chance))}) = "
                                 f"{chance:.4g}")
    if row["diverged_because"]:
      row["status"] = vocab.DIVERGED


def _misplaced(run_dir: Path, config: dict, summary: dict) -> str:
  """Why the run's own files say it belongs elsewhere ('' when they agree with its folder): a
  run copied into another experiment's or scale's folder must not count there."""
  where = {"experiment": run_dir.parent.parent.name, "scale": run_dir.parent.name}
  said = {"experiment": [config.get("name"), summary.get("experiment")],
          "scale": [config.get("scale"), summary.get("scale")]}
  for key, values in said.items():
    for value in values:
      if value is not None and value != where[key]:
        return (f"its files say {key} {value!r}, but it sits in the folder of {key} "
                f"{where[key]!r}; move it back or remove it")
  return ""


def _row(run_dir: Path) -> dict:
  config, config_error = _read(run_dir / results.CONFIG)
  summary, summary_error = _read(run_dir / results.SUMMARY)
  config, summary = config or {}, summary or {}
  misplaced = "" if config_error or summary_error else _misplaced(run_dir, config, summary)
  unreadable = config_error or summary_error
  status = vocab.UNREADABLE if unreadable else summary.get("status", vocab.INCOMPLETE)
  chance_accuracy, chance_loss = _chance(config, summary)
  row = dict.fromkeys(COLUMNS)
  row.update({"experiment": run_dir.parent.parent.name, "scale": run_dir.parent.name,
              "run": run_dir.name, "path": str(run_dir), "status": status,
              "runner_status": status, "diverged_because": "",
              "chance_accuracy": chance_accuracy, "chance_loss": chance_loss})
  row.update({f"config.{k}": v for k, v in _flatten(config).items()
              if k != "sweep" and not k.startswith("variants")})
  for key in ("final", "best"):
    row.update({f"{key}.{k}": v for k, v in _flatten(summary.get(key)).items()})
  for key in SUMMARY_KEYS:
    row[key] = summary.get(key)
  row["eval_examples"] = (summary.get("final") or {}).get("examples")
  if unreadable:
    row["error"] = unreadable
  if misplaced:
    row["status"], row["error"] = vocab.MISPLACED, misplaced
  _divergence(row, run_dir)
  return row


def load(results_dir: Path | str = RESULTS, experiment: Optional[str] = None) -> pd.DataFrame:
  """Every run of `experiment` (all experiments when None), one row each, sorted by folder."""
  results_dir = Path(results_dir)
  pattern = f"{experiment or '*'}/*/*/"
  run_dirs = sorted({p.parent for name in (results.CONFIG, results.SUMMARY)
                     for p in results_dir.glob(pattern + name)})
  rows = []
  for run_dir in run_dirs:
    signature = _signature(run_dir)
    cached = _CACHE.get(run_dir)
    if cached is None or cached[0] != signature:
      cached = _CACHE[run_dir] = (signature, _row(run_dir))
    rows.append(dict(cached[1]))
  return pd.DataFrame(rows, columns=None if rows else list(COLUMNS))


def of_scale(results_dir: Path | str, experiment: str, scale: str) -> pd.DataFrame:
  """The runs of one experiment at one scale (an empty frame with every column when none)."""
  frame = load(results_dir, experiment)
  return frame[frame.scale == scale].reset_index(drop=True)


def metrics(run_path: Path | str) -> pd.DataFrame:
  """One run's metrics.jsonl as a DataFrame. The file grows by appending while a run trains, so
  a last line without its newline is a record still being written: it is left out."""
  return pd.DataFrame(results.read_jsonl(Path(run_path, "metrics.jsonl")))


def trust_ratios(run_path: Path | str) -> pd.DataFrame:
  """One run's trust_ratios.csv (step, path, slice, ratio); a row still being written is left out."""
  rows = results.read_trust_rows(Path(run_path, "trust_ratios.csv"))
  return pd.read_csv(io.StringIO(results.TRUST_HEADER + "".join(r + "\n" for r in rows)))


def rows_at_scale(frame: pd.DataFrame) -> Optional[set]:
  """The paper rows the runs' config runs at their scale (`paper.rows_at_scale`; the union over
  the runs, since a rung added to a ladder does not retrain the others), None when the runs do
  not record it (every row is then expected)."""
  column = "config.paper.rows_at_scale"
  values = frame[column].dropna() if column in frame else ()
  return set().union(*(set(v) for v in values)) if len(values) else None


def recorded_rows(frame: pd.DataFrame) -> tuple:
  """(the runs that record `paper.rows_at_scale`, the names of the others) when any run records
  it: runs of an older config of the same experiment (another shape, no recorded rows) left in
  the folder are set aside and named, never mixed into the ladder."""
  column = "config.paper.rows_at_scale"
  if column not in frame or not frame[column].notna().any():
    return frame, []
  keep = frame[column].notna() | frame.status.isin(vocab.BLOCKING)
  return frame[keep], sorted(frame.run[~keep])


# Arms of a figure that another experiment trains as it is: the same config but for its name
# and how often it evaluates (the training records are the same to the bit). The analysis reads
# them there, so the reproduction trains them once ("one run, many views", as Figure 6 reads
# Table 4). figure: (source experiment, the source's variant, the column that names the arm in
# the figure, the arm's value there).
SHARED_ARMS = {
    "figure1": ("table5", "32K", "config.optimizer.name", "lamb"),
    "figure2": ("table3", "lamb", "config.variant", "correction_warmup"),
    "figure3": ("table3", "lamb", "config.optimizer.kwargs.norm", "l2"),
}


def shared_arm_hint(experiment: str) -> Optional[str]:
  """What to run for `experiment`'s shared arm (None when it has none)."""
  if experiment not in SHARED_ARMS:
    return None
  source, variant, _, value = SHARED_ARMS[experiment]
  return (f"its {value} arm is {source}'s {variant} runs: python experiments/run.py "
          f"--config={source} --only={variant}")


def with_shared_arm(experiment: str, own: pd.DataFrame, every: pd.DataFrame) -> pd.DataFrame:
  """`own` (the runs of `experiment`) with its shared arm read from the source experiment's runs
  in `every` (one scale), labelled as the figure labels the arm, when `own` has no run of that
  arm (runs of an older config that trained it are read as they are). A source run whose config
  cannot be read could be the arm's, so it comes along and holds the choice back."""
  if experiment not in SHARED_ARMS or not len(every):
    return own
  source, variant, column, value = SHARED_ARMS[experiment]
  if len(own) and column in own and (own[column] == value).any():
    return own
  theirs, _ = recorded_rows(every[every.experiment == source].reset_index(drop=True))
  if not len(theirs):
    return own
  named = theirs["config.variant"] == variant if "config.variant" in theirs else False
  lost = theirs.status == vocab.UNREADABLE
  shared = theirs[named | lost].copy()
  if not len(shared):
    return own
  shared.loc[~lost.loc[shared.index], column] = value
  return pd.concat([own, shared], ignore_index=True) if len(own) else shared.reset_index(
      drop=True)


def mixed_curve(figure7: pd.DataFrame, mixed_batch: pd.DataFrame) -> pd.DataFrame:
  """Figure 7's run: figure7's own where one has finished, else mixed_batch's re-warm-up run of
  seed 0, the same config, which the cpu scale logs as often (one run, two views); figure7's
  runs (finished or not) when mixed_batch has no such run."""
  finished = (figure7[figure7.status.isin((vocab.COMPLETED, vocab.DIVERGED))] if len(figure7)
              else figure7)
  if len(finished) or not len(mixed_batch) or not {"config.variant", "config.seed"} <= set(
      mixed_batch.columns):
    return figure7
  seed = pd.to_numeric(mixed_batch["config.seed"], errors="coerce")
  rewarm = mixed_batch[(mixed_batch["config.variant"] == "lamb_rewarmup") & (seed == 0)]
  return rewarm if len(rewarm) else figure7
