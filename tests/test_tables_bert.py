"""The BERT tables (1, 2, 4, 8): every printed row, the paper's value beside the measured
masked-LM accuracy of the matching run."""
import json

from analysis import tables


def _fake_run(root, experiment, run, config, summary, metrics=()):
  path = root / experiment / "cpu" / run
  path.mkdir(parents=True)
  (path / "config.json").write_text(json.dumps({"scale": "cpu", **config}))
  (path / "summary.json").write_text(json.dumps({"scale": "cpu", **summary}))
  (path / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))


def _done(accuracy, steps):
  return {"status": "completed", "steps": steps, "train_time_s": 60.0,
          "final": {"masked_lm_accuracy": accuracy, "masked_lm_loss": 7.0}}


def test_bert_tables_put_measured_beside_printed(tmp_path):
  # Table 1's LAMB rows are Table 4's ladder; table1 holds the baseline and the mixed batch
  _fake_run(tmp_path, "table4", "batch32K", {"variant": "32K", "batch_size": 512}, _done(0.25, 40))
  _fake_run(tmp_path, "table1", "lamb_64K-32K", {"variant": "lamb_64K-32K", "batch_size": 1024},
            _done(0.2, 22))
  t1 = tables.table1(tmp_path, "cpu").frame
  assert len(t1) == 9 and list(t1.solver)[:2] == ["Baseline", "LAMB"]
  row = t1[t1.batch == "32k"].iloc[0]
  assert row["paper F1"] == 91.475 and row[tables.BERT_METRIC_LABEL].startswith("0.2500")
  assert row["steps run"] == 40 and row["measured train minutes"] == 1.0
  assert row[tables.BERT_LOSS_LABEL].startswith("7.0000")
  assert t1[t1.batch == "64k/32k"].iloc[0]["paper steps"] == "8599"
  assert t1[t1.batch == "64k/32k"].iloc[0][tables.BERT_METRIC_LABEL].startswith("0.2000")
  assert t1[t1.batch == "512"].iloc[0][tables.BERT_METRIC_LABEL] == "not run"
  # tidy: the measured accuracy beside the paper's F1, which says it is another metric
  cell = next(c for c in tables.table1(tmp_path, "cpu").cells
              if c["row_keys"] == "solver=LAMB, batch=32k"
              and c["column"] == tables.BERT_METRIC_LABEL)
  assert cell["reported"] == 91.475 and cell["reported_text"] == "SQuAD F1 91.475"
  assert cell["measured"] == 0.25 and cell["seeds"] == 1 and cell["status"] == "completed"
  # a run whose summary cannot be read is named in its cells
  _fake_run(tmp_path, "table4", "batch1K", {"variant": "1K", "batch_size": 16}, _done(0.3, 1000))
  (tmp_path / "table4/cpu/batch1K/summary.json").write_text("{")
  row = tables.table1(tmp_path, "cpu").frame.set_index("batch").loc["1k"]
  assert row[tables.BERT_METRIC_LABEL] == "batch1K unreadable"
  assert row["steps run"] == "unreadable"
  (tmp_path / "table4/cpu/batch1K/summary.json").write_text(json.dumps(
      {"scale": "cpu", **_done(0.3, 1250)}))

  _fake_run(tmp_path, "table2", "lars_32K", {"variant": "lars_32K"},
            {"status": "diverged", "steps": 7})
  t2 = tables.table2(tmp_path, "cpu").frame.set_index("batch")
  assert t2.loc["32K", "paper LARS F1"] == "diverge"
  assert t2.loc["32K", f"LARS: {tables.BERT_METRIC_LABEL}"] == "diverged"
  assert t2.loc["32K", f"LAMB: {tables.BERT_METRIC_LABEL}"].startswith("0.2500")  # Table 4's
  assert any("lars_32K: a non-finite value" in n for n in tables.table2(tmp_path, "cpu").notes)

  t4 = tables.table4(tmp_path, "cpu").frame.set_index("batch (paper)")
  assert len(t4) == 7 and t4.loc["1K", "paper EM"] == 85.26 and t4.loc["1K", "batch run"] == 16
  assert t4.loc["1K", tables.BERT_METRIC_LABEL].startswith("0.3000")

  _fake_run(tmp_path, "table8", "warmup0.1_lr0.0002",
            {"optimizer": {"learning_rate": 0.0002, "schedule": {"warmup_ratio": 0.1}}},
            _done(0.1, 79), [{"step": 79, "split": "train", "loss": 7.5}])
  t8 = tables.table8(tmp_path, "cpu").frame
  row = t8[(t8.warmup == "0.10×31250") & (t8["learning rate"] == "0.0002")].iloc[0]
  assert row["paper F1"] == 88.54 and row["last step run"] == 79 and row["last train loss"] == 7.5
  loss = next(c for c in tables.table8(tmp_path, "cpu").cells
              if c["row_keys"] == "warmup=0.05×31250, learning_rate=0.0001"
              and c["column"] == "last train loss")
  assert loss["reported"] == 8.04471 and loss["status"] == "not run" and loss["seeds"] == 0
  assert list(t8[t8.warmup == "0.05×31250"]["paper F1"]) == ["diverged"] * 3
  # a cpu-scale run: its rate is the printed one x its learning_rate_multiplier
  _fake_run(tmp_path, "table8", "warmup0.2_lr0.0024",
            {"learning_rate_multiplier": 8.0,
             "optimizer": {"learning_rate": 0.0024, "schedule": {"warmup_ratio": 0.2}}},
            _done(0.2, 63), [{"step": 63, "split": "train", "loss": 6.5}])
  t8 = tables.table8(tmp_path, "cpu").frame
  row = t8[(t8.warmup == "0.20×31250") & (t8["learning rate"] == "0.0003")].iloc[0]
  assert row["learning rate run"] == "0.0024" and row["last step run"] == 63
  assert row[tables.BERT_METRIC_LABEL].startswith("0.2000")
  assert (t8["status"] == "completed").sum() == 2  # nothing else matched the 8x run
  for name in ("table1", "table2", "table4", "table8"):
    assert name in tables.TABLES
    text = tables.to_markdown(tables.TABLES[name](tmp_path, "cpu"))
    assert "SQuAD v1.1 F1" in text


def test_bert_tables_mark_the_rows_this_scale_leaves_out(tmp_path):
  """Runs that record `paper.rows_at_scale` make the other rows 'not at this scale', not 'not
  run'; a run of an older config (no recorded rows) beside them is set aside and named."""
  ladder = {"rows_at_scale": ["4K", "32K"]}
  for label, batch in (("4K", 64), ("32K", 512)):
    _fake_run(tmp_path, "table4", f"batch{label}_seed0",
              {"variant": label, "batch_size": batch, "seed": 0, "paper": ladder},
              _done(0.2, 256))
  _fake_run(tmp_path, "table4", "batch512", {"variant": "512", "batch_size": 8}, _done(0.1, 2000))
  _fake_run(tmp_path, "table1", "baseline_seed0",
            {"variant": "baseline", "batch_size": 8, "seed": 0,
             "paper": {"rows_at_scale": ["baseline"]}}, _done(0.15, 16384))
  t4 = tables.table4(tmp_path, "cpu")
  frame = t4.frame.set_index("batch (paper)")
  assert frame.loc["16K", tables.BERT_METRIC_LABEL] == "not at this scale"
  assert frame.loc["512", tables.BERT_METRIC_LABEL] == "not at this scale"  # set aside
  assert frame.loc["32K", tables.BERT_METRIC_LABEL].startswith("0.2000")
  assert any("Set aside, as runs of an older config: batch512" in n for n in t4.notes)
  t1 = tables.table1(tmp_path, "cpu").frame
  assert t1[t1.batch == "64k/32k"].iloc[0][tables.BERT_METRIC_LABEL] == "not at this scale"
  assert t1[t1.batch == "4k"].iloc[0][tables.BERT_METRIC_LABEL].startswith("0.2000")
  assert t1[t1.batch == "2k"].iloc[0][tables.BERT_METRIC_LABEL] == "not at this scale"
  assert t1[t1.solver == "Baseline"].iloc[0][tables.BERT_METRIC_LABEL].startswith("0.1500")
  t2 = tables.table2(tmp_path, "cpu").frame.set_index("batch")
  assert t2.loc["16K", f"LAMB: {tables.BERT_METRIC_LABEL}"] == "not at this scale"
  assert t2.loc["32K", f"LARS: {tables.BERT_METRIC_LABEL}"] == "not run"  # no LARS runs yet


def test_squad_fine_tunes_of_a_rows_runs_give_its_f1(tmp_path):
  """`squad:...,pretrained=table4` fine-tunes record their pre-training run; the row of those
  runs shows their mean F1 and exact match beside the paper's F1."""
  for seed in (0, 1):
    _fake_run(tmp_path, "table4", f"batch32K_seed{seed}",
              {"variant": "32K", "batch_size": 512, "seed": seed}, _done(0.25, 256))
  t4 = tables.table4(tmp_path, "cpu").frame
  assert tables.SQUAD_F1_LABEL not in t4  # no fine-tune anywhere: no column
  for seed, f1 in ((0, 80.0), (1, 84.0)):
    _fake_run(tmp_path, "squad", f"table4_batch32K_seed{seed}",
              {"variant": f"table4_batch32K_seed{seed}",
               "pretrained_run": f"table4/cpu/batch32K_seed{seed}"},
              {"status": "completed", "steps": 100, "final": {"f1": f1, "exact_match": f1 - 10}})
  rendered = tables.table4(tmp_path, "cpu")
  t4 = rendered.frame.set_index("batch (paper)")
  assert t4.loc["32K", tables.SQUAD_F1_LABEL].startswith("82.00")
  assert t4.loc["32K", tables.SQUAD_EM_LABEL].startswith("72.00")
  assert t4.loc["16K", tables.SQUAD_F1_LABEL] in ("not run", "not at this scale")
  cell = next(c for c in rendered.cells if c["row_keys"] == "batch=32K"
              and c["column"] == tables.SQUAD_F1_LABEL)
  assert cell["reported"] == 91.475 and cell["measured"] == 82.0 and cell["seeds"] == 2


def test_table1s_mixed_row_at_the_cpu_scale_is_mixed_batchs_run_and_names_its_multiplier(
    tmp_path):
  rows = {"paper": {"rows_at_scale": ["baseline"]}}
  _fake_run(tmp_path, "table1", "baseline_seed0", {"variant": "baseline", "batch_size": 8, **rows},
            _done(0.16, 16384))
  _fake_run(tmp_path, "mixed_batch", "lamb_rewarmup_seed0",
            {"variant": "lamb_rewarmup", "seed": 0, "learning_rate_multiplier": 4.0},
            _done(0.13, 282))
  rendered = tables.table1(tmp_path, "cpu")
  row = rendered.frame[rendered.frame.batch == "64k/32k"].iloc[0]
  assert row[tables.BERT_METRIC_LABEL].startswith("0.1300")
  assert any("The 64K/32K row is mixed_batch's re-warm-up run, at LAMB x4" in n
             for n in rendered.notes), rendered.notes
