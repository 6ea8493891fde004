"""The one loader: every run under `results/` as one pandas DataFrame (no jax: reads files only).

One row per run folder: experiment, scale, run, status, the config flattened to dotted
columns (``config.optimizer.name``, ``config.seed``...), and the summary's final/best metrics as
``final.accuracy``, ``best.accuracy`` etc. A folder without a summary is a row with status
``incomplete``, one whose config.json or summary.json cannot be read a row with status
``unreadable`` (its ``error`` says which file and why); a folder that is not the run its files
say (``misplaced``, ``renamed``, ``duplicate``, ``edited``: `analysis.join`) is a row with that
status and an error naming what disagrees. Nothing is dropped silently: every such status keeps
the run out of every choice and gets it named (`vocabulary.BLOCKING`).

Divergence is decided here, under a rule set (`analysis.rules`), as the paper means it: its
"diverge" rows (Table 2's LARS at 32K, Table 8's AdamW runs whose last loss sits on BERT's
unigram plateau after the good runs reached 1-2) are runs that did not end where a trained model
ends. A run is ``diverged`` when
  (a) the runner stopped it at a non-finite value; or
  (b) its training loss ends (mean of the last 5% of recorded steps) more than ``blow_up`` above
      where it started (the first recorded step) or above the chance level ln(classes) of a
      classifier; the margin keeps a run that never left its start (too small a rate: its loss
      wanders about 1% around the start) from being called diverged; such a run sits at chance,
      which the claims check separately; or
  (c) it ends at the chance level (its final accuracy, for BERT its masked-LM accuracy against the
      unigram accuracy, within ``z_chance`` binomial errors of chance or below) after its training
      loss peaked at ``spike`` times its start or more, or (a classifier) after its loss had gone
      more than ``left_plateau`` below ln(classes) and come back (its end inside that band
      again): a run that blew up, or learned and then collapsed, back onto the plateau, which
      the paper calls diverged though its loss ends below its start.
Rule set v1 leaves (c) out (``spike = left_plateau = inf``). ``runner_status`` keeps the runner's
own word and ``diverged_because`` says which rule fired, with its numbers; ``loss_peak``,
``peak_ratio`` (peak / start) and ``at_chance`` are on every row that has them.

Files are parsed once per process and rule set, and read again only when they change on disk.
"""
from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Optional

import pandas as pd

from analysis import catalogue, join
from analysis import rules as rule_sets
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
                "diverged_at_step", "device_kind", "device_count", "data", "error",
                "git_commit", "resumed_from_step", "resumed_from_commit")
# Rows every frame has, so that selectors never meet a missing column.
COLUMNS = ("experiment", "scale", "run", "path", "status", "runner_status", "diverged_because",
           "divergence_unchecked", "noise_records", "loss_start", "loss_end", "loss_peak",
           "peak_ratio", "at_chance", "chance_accuracy", "chance_loss", "eval_examples",
           "config_unchecked", *SUMMARY_KEYS)


def diverged_means(rules: Optional[rule_sets.Rules] = None) -> str:
  """What "diverged" means under `rules` (the current rule set when None), as the report says it."""
  rules = rules or rule_sets.current()
  text = ("the runner stopped at a non-finite value, or the training loss ended (mean of the "
          f"last 5% of steps) more than {rules.blow_up:.0%} above where it started or above the "
          "chance level ln(classes)")
  after = []
  if math.isfinite(rules.spike):
    after.append(f"its training loss had peaked at {rules.spike:g}x its start or more")
  if math.isfinite(rules.left_plateau):
    after.append(f"(a classifier) its loss had gone more than {rules.left_plateau:.0%} below "
                 "ln(classes) and come back")
  if after:
    text += (", or the run ended at the chance level (its final accuracy, for BERT its masked-LM "
             f"accuracy against the unigram level; within {rules.z_chance:g} binomial errors or "
             "below) after " + " or after ".join(after))
  return text + "; a run that never left its start is not diverged but sits at chance"


DIVERGED_MEANS = diverged_means()
BLOW_UP = rule_sets.current().blow_up  # how far above its start (or chance) a loss must end
_CACHE: dict = {}  # (run folder, rule set) -> (signature of its files, row, its run's identity)


def _signature(run_dir: Path) -> tuple:
  out = []
  # The results folder's manifest too: a rewritten one changes what the join finds.
  names = (results.CONFIG, results.SUMMARY, results.METRICS, join.EVAL_EXAMPLES)
  for path in [run_dir / name for name in names] + [run_dir.parents[2] / "MANIFEST.json"]:
    try:
      st = path.stat()
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


def binomial_units(row) -> tuple:
  """(n, unit) of the binomial error of a run's final metric: the recorded units (images,
  questions), except masked tokens, which count by sequence (the tokens of one sequence are not
  independent), and the evaluated examples for runs that record no units. The chance test here
  and the comparisons' fallback (`analysis.evidence`) count the same way."""
  unit, units = row.get("final.eval_unit"), row.get("final.eval_units")
  if isinstance(unit, str) and unit != "masked tokens" and isinstance(units, (int, float)) \
      and units == units:
    return units, unit
  bert = unit == "masked tokens" or row.get("config.model.name") == "bert"
  return row.get("final.examples"), "sequences" if bert else "examples"


def _at_chance(row: dict, rules: rule_sets.Rules) -> tuple:
  """(whether the final metric cannot be told above chance, the metric, chance), None for the
  first when the metric, chance or the number of evaluated units is not on record. A run below
  chance has not learned either, so at chance means "not above it", as the claims read it."""
  metric = "final.accuracy" if row["chance_loss"] is not None else "final.masked_lm_accuracy"
  value, chance = row.get(metric), row["chance_accuracy"]
  n, _ = binomial_units(row)
  numbers = (value, chance, n)
  if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
    return None, value, chance
  if not (math.isfinite(value) and 0 < chance < 1 and n > 0):
    return None, value, chance
  error = rules.z_chance * math.sqrt(chance * (1 - chance) / n)
  return bool(value <= chance + error), value, chance


def _divergence(row: dict, records: list, rules: rule_sets.Rules) -> None:
  """Fills loss_start, loss_end, loss_peak, peak_ratio and, when a rule fires, status 'diverged'
  with the reason; a completed run without readable training losses is marked
  `divergence_unchecked`."""
  if row["status"] not in (vocab.COMPLETED, vocab.DIVERGED):
    return
  # Read once here: the critical-batch section reads again only runs that measured noise.
  row["noise_records"] = sum(r.get("split") == "noise" for r in records)
  losses = _losses(records)
  finite = [l for l in losses if math.isfinite(l)]
  row["divergence_unchecked"] = not losses and row["status"] == vocab.COMPLETED
  if losses:
    row["loss_start"], row["loss_end"] = losses[0], tail_mean(losses)
  if finite:
    row["loss_peak"] = max(finite)
    if math.isfinite(losses[0]) and losses[0] > 0:
      row["peak_ratio"] = row["loss_peak"] / losses[0]
  if row["status"] == vocab.DIVERGED:
    at = row.get("diverged_at_step")
    row["diverged_because"] = "a non-finite value" + (f" at step {at}" if at is not None else "")
  elif row["status"] == vocab.COMPLETED and losses:
    row["diverged_because"] = _ended_above(row, rules) or _back_at_chance(row, finite, rules)
    if row["diverged_because"]:
      row["status"] = vocab.DIVERGED


def _ended_above(row: dict, rules: rule_sets.Rules) -> str:
  """Rule (b): the loss ended above its start or above chance loss."""
  start, end, chance = row["loss_start"], row["loss_end"], row["chance_loss"]
  if end > (1 + rules.blow_up) * start:
    return (f"training loss ended at {end:.4g}, more than {rules.blow_up:.0%} above its start "
            f"{start:.4g}")
  if chance is not None and end > (1 + rules.blow_up) * chance:
    return (f"training loss ended at {end:.4g}, more than {rules.blow_up:.0%} above the chance "
            f"level ln({round(math.exp(chance))}) = {chance:.4g}")
  return ""


def _back_at_chance(row: dict, finite: list, rules: rule_sets.Rules) -> str:
  """Rule (c): the run ended at chance after a spike, or after its loss had left chance."""
  at_chance, value, chance = _at_chance(row, rules)
  if not at_chance or not finite:
    return ""
  level = "chance" if row["chance_loss"] is not None else "unigram"
  ended = f"ended at the {level} level ({value:.4f} against {chance:.4f})"
  ratio = row["peak_ratio"]
  if ratio is not None and ratio >= rules.spike:
    return f"training loss peaked at {ratio:.2f}x its start and {ended}"
  # Left the plateau and came back onto it: the loss went below the band around ln(classes)
  # and its end is inside the band again. A loss still below the band at the end (a run whose
  # evaluation sits at chance while its training loss fell) did not come back: not this rule.
  loss, floor = row["chance_loss"], (1 - rules.left_plateau) * (row["chance_loss"] or 0.0)
  if loss is not None and min(finite) < floor <= row["loss_end"]:
    return (f"training loss went down to {min(finite):.4g}, more than {rules.left_plateau:.0%} "
            f"below the chance level ln({round(math.exp(loss))}) = {loss:.4g}, and came back "
            f"(to {row['loss_end']:.4g}): it {ended}")
  return ""


def _row(run_dir: Path, rules: rule_sets.Rules) -> tuple:
  """(the run's row, its run's identity or None when its config cannot be read)."""
  config, config_error = _read(run_dir / results.CONFIG)
  summary, summary_error = _read(run_dir / results.SUMMARY)
  config, summary = config or {}, summary or {}
  unreadable = config_error or summary_error
  status = vocab.UNREADABLE if unreadable else summary.get("status", vocab.INCOMPLETE)
  chance_accuracy, chance_loss = _chance(config, summary)
  row = dict.fromkeys(COLUMNS)
  row.update({"experiment": run_dir.parent.parent.name, "scale": run_dir.parent.name,
              "run": run_dir.name, "path": str(run_dir), "status": status,
              "runner_status": status, "diverged_because": "", "config_unchecked": True,
              "chance_accuracy": chance_accuracy, "chance_loss": chance_loss})
  row.update({f"config.{k}": v for k, v in _flatten(config).items()
              if k != "sweep" and not k.startswith("variants")})
  for key in ("final", "best"):
    row.update({f"{key}.{k}": v for k, v in _flatten(summary.get(key)).items()})
  for key in SUMMARY_KEYS:
    row[key] = summary.get(key)
  row["eval_examples"] = (summary.get("final") or {}).get("examples")
  row["at_chance"] = _at_chance(row, rules)[0]
  if unreadable:
    row["error"] = unreadable
  records = _records(run_dir)
  _divergence(row, records or [], rules)
  if not unreadable:
    join.check(row, run_dir, config, summary, records)
  return row, None if config_error else join.fingerprint(config)


def load(results_dir: Path | str = RESULTS, experiment: Optional[str] = None,
         rules: Optional[rule_sets.Rules] = None) -> pd.DataFrame:
  """Every run of `experiment` (all experiments when None), one row each, sorted by folder,
  with divergence decided under `rules` (the current rule set when None)."""
  results_dir = Path(results_dir)
  rules = rules or rule_sets.current()
  pattern = f"{experiment or '*'}/*/*/"
  run_dirs = sorted({p.parent for name in (results.CONFIG, results.SUMMARY)
                     for p in results_dir.glob(pattern + name)})
  rows, fingerprints = [], []
  for run_dir in run_dirs:
    signature = _signature(run_dir)
    cached = _CACHE.get((run_dir, rules))
    if cached is None or cached[0] != signature:
      cached = _CACHE[(run_dir, rules)] = (signature, *_row(run_dir, rules))
    rows.append(dict(cached[1]))
    fingerprints.append(cached[2])
  join.duplicates(rows, fingerprints)  # across folders: never cached with one folder's row
  return pd.DataFrame(rows, columns=None if rows else list(COLUMNS))


def of_scale(results_dir: Path | str, experiment: str, scale: str,
             rules: Optional[rule_sets.Rules] = None) -> pd.DataFrame:
  """The runs of one experiment at one scale (an empty frame with every column when none)."""
  frame = load(results_dir, experiment, rules)
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


# Arms of a figure that another experiment trains as it is, read there so that the reproduction
# trains them once ("one run, many views", as Figure 6 reads Table 4): declared in the catalogue.
SHARED_ARMS = catalogue.SHARED_ARMS


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
