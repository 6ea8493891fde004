"""The claims no run of this project can measure: the systems claim (Section 4.1, Figure 8) and
the convergence theorems (Section 3, Appendices A-C). They are listed so that the report
accounts for every claim of the paper, each with why it is not testable here."""
from __future__ import annotations

from analysis import verdicts as v
from analysis.claims.context import Claim


def systems_claim(ctx):
  return v.not_testable("a wall-clock claim on TPUv3 pods; `run.py --config=table1:paper "
                        "--estimate` and Figure 8 give the cost model's prediction, which is a "
                        "model, not a measurement", decide="timed runs on a TPUv3 pod")


CLAIMS = (
    Claim("23", "scaling efficiency 76.8% to 1024 chips (fixed batch per chip), 101.8% mixed",
          "Section 4.1; Figure 8", "a measured speedup on TPU pods", systems_claim),
    Claim("T", "LARS and LAMB converge to a stationary point at rates that depend on the "
          "average smoothness L_avg rather than L_inf (better than SGD when gradients are dense)",
          "Section 3; Theorems 2, 3; Appendices A-C",
          "a theorem: proved in the paper's appendix, not measured",
          lambda ctx: v.not_testable("a theorem, not an experiment: proved in Appendices A and "
                                     "B; no run can confirm or refute it")),
)
