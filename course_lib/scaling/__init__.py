"""Scaling laws (Kaplan et al. 2020; Hoffmann et al. 2022) and compute-optimal allocation."""

from course_lib.scaling.allocation import (
    TOKENS_PER_PARAM,
    chinchilla_optimal,
    chinchilla_parametric_optimal,
    tokens_for_loss,
)
from course_lib.scaling.fit import fit_chinchilla, fit_power_law
from course_lib.scaling.laws import (
    CHINCHILLA_FIT,
    KAPLAN,
    PF_DAY,
    ChinchillaFit,
    KaplanConstants,
    chinchilla_loss,
    kaplan_loss_c,
    kaplan_loss_d,
    kaplan_loss_n,
    kaplan_loss_nd,
    training_flops,
)
from course_lib.scaling.published import (
    BESIROGLU_FIT,
    PublishedRun,
    chinchilla_figures,
    published_runs,
)

__all__ = [
    "BESIROGLU_FIT",
    "CHINCHILLA_FIT",
    "KAPLAN",
    "PF_DAY",
    "PublishedRun",
    "TOKENS_PER_PARAM",
    "ChinchillaFit",
    "KaplanConstants",
    "chinchilla_figures",
    "chinchilla_loss",
    "chinchilla_optimal",
    "chinchilla_parametric_optimal",
    "fit_chinchilla",
    "fit_power_law",
    "kaplan_loss_c",
    "kaplan_loss_d",
    "kaplan_loss_n",
    "kaplan_loss_nd",
    "published_runs",
    "tokens_for_loss",
    "training_flops",
]
