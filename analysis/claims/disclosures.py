"""Every choice made by looking at measured results, with the claims it can bias (the report's
"Choices made by looking at results"). A verdict is only as good as the choices behind it: each
one that was made, or changed, after seeing runs is listed here, so that a reader can discount
the claims it touches; the rule sets' sensitivity table shows the verdicts under the rules
before each such change."""
from __future__ import annotations

import dataclasses

from analysis import rules as rule_sets
from analysis.catalogue import E

_V1, _V2 = rule_sets.version(1), rule_sets.version(2)


@dataclasses.dataclass
class Disclosure:
  choice: str
  claims: tuple


DISCLOSURES = (
    Disclosure("Rule set v2 (`analysis/rulesets/v2.toml`) was written after the v1 verdicts "
               "were seen and criticised: the step floor now binds every run a claim reads (it "
               "turns claims 17, 18, 19 and 22, judged on 8-116-step runs, into 'not testable'); "
               "a run that ends at chance after its loss peaked at 1.2x its start or more is "
               "diverged (the 1.2 set after seeing LARS's BERT peaks, 1.49-4.62x, and healthy "
               "runs' 1.11x or less); the trust-ratio spread is read between the 10th and 90th "
               "percentile layers instead of the two extremes; each rule must fail its declared "
               "negative control; a 'same' or 'no worse' claim whose evaluation set alone "
               "(per-example records) is wider than its margin is 'not testable'; and where "
               "Bartlett's test rejects one seed spread across a task's settings, the default "
               "margin is the larger compared arm's spread, not the pooled one. The controls "
               "were chosen knowing the committed runs: claim 5c's (LARS at 4K below the "
               "baseline) and claim 21's (AdamW's mixed runs end below their phase-2 start) "
               "were known to hold, which makes those claims not testable. The report's "
               "sensitivity table gives every verdict under v1 and v2.",
               ("5b", "5c", "12", "13a", "14", "15", "16", "17", "18", "19", "21", "22")),
    Disclosure("Claim 13b compares N-LAMB and NN-LAMB with the momentum ladder's 32K run "
               "(Goyal et al.'s rule, the same task and budget as Figure 1) instead of Figure "
               "1's momentum, after Figure 1's momentum at the paper's printed rate was seen to "
               "diverge on every seed.", ("13b",)),
    Disclosure("BERT cpu scale multiplies every printed learning rate by a factor for the tiny "
               "model (`learning_rate_multiplier`). The ladder of Tables 1, 2 and 4 (and Figure "
               "6) runs each optimizer's own, chosen on a validation split of the training "
               f"novels (see below): LAMB x8 and LARS x32 at 4K (`{E.LADDER_MULTIPLIERS}`), "
               f"AdamW x4 at 512 (`{E.BERT_MULTIPLIERS}`, on the shorter budget, with BERT's own "
               "AdamW; Table 8 runs it too). That grid was run after "
               f"LAMB at x16 (`{E.BERT_MULTIPLIERS}`' choice at batch 8) was seen to end its "
               "first 4K run at the unigram guess on the reported novel; that run was "
               "discarded. LAMB's x8 is the top of its grid. The mixed batch, Figure 7 and "
               f"`{E.NADO_BERT}` run LAMB's and AdamW's choices at 32K instead (see the top-rung "
               "disclosure). The config not yet rerun at the ladder's shape "
               f"({E.NOISE_SCALE_BERT}) still "
               "runs x8 for every "
               "optimizer, chosen for LAMB alone on Sense and Sensibility, the split the tables "
               "report.",
               ("1", "2", "5a", "5b", "5c", "6", "20")),
    Disclosure("Tuned rows pick each optimizer's best setting on the split they report (as the "
               "paper did: 'dev set = test data'). A maximum over a grid is biased upward, the "
               "more the larger the grid: Table 6 tries 34 rates for LAMB, Adam and Adagrad, "
               "170 settings for AdamW and one for momentum; Figure 1 picks Nadam's best of 7 "
               "rates (19 at paper scale). Claims 17 and 18 are judged instead on "
               f"`{E.TABLE6_REPLICATES}` and `{E.TABLE7_REPLICATES}`: each choice rerun on 3 "
               "fresh seeds and read on the 9000 test images no choice looked at. Claim 6 reads "
               f"AdamW's best Table 8 cell on 3 fresh seeds (`{E.TABLE8_REPLICATES}`), on the "
               "held-out text "
               "the choice looked at: the choice's luck there favours AdamW, against the claim.",
               ("6", "17", "18", "19")),
    Disclosure("The mixed batch at the cpu scale divides 64K/32K by 128, not 64 (512 then 256), "
               f"so that it trains 282 steps instead of 141 (the floor is {_V2.min_steps}); LAMB "
               "runs its rules' rates at the batches that run, those of 32K then 16K. This was "
               "set before any of its runs, knowing that the ladder's 32K rung (the same batch "
               "and rule as phase 1 here) ends at the unigram guess at the ladder's multiplier. "
               "Claim 21 (the mixed "
               "run's curve) is not judged on a run at the chance level: that rule was added "
               "after seeing the mixed runs end at the unigram guess.", ("3", "4", "7", "21")),
    Disclosure(f"The mixed batch (claims 3, 4, 7, 21) and `{E.NADO_BERT}` (claim 6b) run each "
               f"optimizer's multiplier chosen at 32K by `{E.TOP_RUNG_MULTIPLIERS}` (4 multipliers "
               "each, one seed, on the validation split of the training novels; the reported "
               "novel is never read for it): LAMB x4, where the ladder's rule gives x8. This rule "
               "replaced the 4K choice carried up by the square-root rule after the mixed runs "
               "at that rate (9 runs, kept in the history) were seen on the reported novel: "
               "every LAMB run, with and without re-warm-up, at the unigram guess (0.0608), "
               "AdamW at 2e-4 x4 at 0.0608, 0.0957 and 0.0608, which had judged claim 3 not "
               "held, against the paper, and left claims 4, 7 and 21 untested; and after LAMB's "
               "grid at 32K (run as a diagnosis of claim 1) was seen to put x4 first (0.124 on "
               "the validation split). AdamW's grid, the same 4 multipliers of Devlin et al.'s "
               f"1e-4 on LAMB's 32K schedule, and `{E.NADO_BERT}`'s design were fixed after the "
               "change and before any of AdamW's grid results. Claims 1, 2, 5a-c and 20 still "
               "run the ladder's rule.", ("3", "4", "6b", "7", "21")),
    Disclosure("Claim 15b (BERT without the adam-correction) runs at the cpu scale on Table 4's "
               "4K rung, not its 32K as at the paper scale, because the 32K rung was seen to end "
               "at the unigram guess on every seed, where no drop could show. 4K was fixed "
               "before any run without the correction.", ("15b",)),
    Disclosure("cpu-scale runs divide the paper's batches by 64. Each optimizer follows its "
               "own rule, but the rules are anchored differently: LAMB's square-root rule (and "
               "LARS's references) at the paper's base batch, 512 / 64 = 8 examples here, so they "
               "run their printed rates; Goyal et al.'s momentum rule at 256 real examples, so "
               "momentum runs 0.1 at batch 256, 1/64 of its printed 6.4. That rule was adopted "
               "after the earlier cpu runs at 6.4 were seen to diverge or end at chance. Figure "
               "1 still keeps the printed rates, so its momentum runs 64x above Goyal et al.'s "
               "rule.", ("9", "10", "11", "13b")),
    Disclosure("Table 3's adaptive baselines at the cpu scale take the best setting of their "
               "cpu-scale grid (Tables 9-25), chosen by looking at those grids' accuracy on the "
               "first 1000 test images; Table 3 reports the other 9000. The grids train 48 "
               "steps on 6144 images and Table 3 512 steps on 32768, so a setting best for the "
               "short run may not be for the long one (Adam's best, 0.01, is the top of its "
               "grid); LAMB and momentum are not tuned at all.", ("8", "8b", "9", "10")),
    Disclosure(f"Claim 10b's settings are the best of `{E.NADO_TUNING}` (6 learning rates per "
               "optimizer, one seed, chosen on the first 1000 test images): LAMB x0.5 of its "
               "rule, Nesterov x2 of Goyal et al.'s. The grids (x1/4 to x8 of each optimizer's "
               "own rule), the budget and everything else (Nesterov's warmup, decay and L2; "
               "LAMB's Table 5 schedule) were fixed before any run; the reported runs read the "
               "other 9000 test images on seeds 1-3, not the tuning's seed 0. A best of 6 on "
               "one seed is noisy: neither choice is sure to be its grid's best on this task.",
               ("10b",)),
    Disclosure("The intervals' degrees of freedom became Welch-Satterthwaite's (the binomial "
               "part counting as known) after seeing that t(0.975, 2) applied to the whole "
               "standard error made every 3-seed ImageNet interval about 2x wider than its seed "
               "spread and test-set size warrant; it narrows every interval that has a test-set "
               "part, whichever way the difference points.", ("8", "8b", "9", "10", "10b", "11", "12",
                                                              "13a", "13b", "14", "15", "16",
                                                              "17", "18")),
    Disclosure("The ImageNet ladder's cpu budget (32768 images x 4 epochs, 256 steps at 32K) "
               "and its rungs (4K-32K) were set from the throughput and the step floor, before "
               "any of its runs, knowing the stand-in's measured critical batch (about 260 "
               f"examples, `{E.NOISE_SCALE}`).", ("12", "12b")),
    Disclosure(f"A loss ending more than {_V1.blow_up:.0%} above its start counts as "
               "diverged; the 5% was set after seeing that runs which never learned (too small "
               "a rate) end about 1% above their start.", ("5b", "8", "8b", "9", "10", "13b",
                                                           "17")),
    Disclosure(f"The floor of {_V2.min_steps} steps for a ladder's largest batch was set knowing "
               "that the then committed top rungs trained 18-63 steps (not from their scores): "
               "it turned those claims from verdicts on the step budget into 'not testable' "
               "(the ladders have since been sized from the top to train 256 steps there).",
               ("1", "2", "3", "4", "5a", "5b", "5c", "6", "7", "12", "20", "21")),
    Disclosure("A claimed winner left at the chance level where the other side learned, both "
               f"with {_V2.min_steps} steps or more, is judged on its interval (it was 'not "
               "testable'); the rule was changed after seeing that LAMB's 32K rung ends at the "
               "unigram guess on every seed with 256 steps while its 4K rung and the baseline "
               "learn, and it turns claims 1 and 2 against the paper. A baseline at the chance "
               "level still leaves a claim untested, which leans the other way.",
               ("1", "2", "4", "7")),
    Disclosure("Figure 1's Nadam grid at the cpu scale is 1, 2 and 5 per decade from 1e-3 to "
               "0.1, not the paper's 19 rates from 1e-4 to 1e-2: that grid was run first and its "
               "best (0.01, 0.813 on the reported images) sat at its top edge, rising from "
               "0.395 at 1e-4, so the paper's grid did not tune Nadam here. The grid draws "
               "Figure 1's Nadam curve; no claim reads it.", ()),
)
