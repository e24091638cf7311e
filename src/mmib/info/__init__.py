"""Information measurement: neural MI estimators and bounds, Gaussian closed forms and generators with known MI,
discrete measures and partial information decomposition, VIB KL terms. All values in nats unless ``base`` says
otherwise. Guide: ``docs/guide/information.md``; validation: ``mmib info validate`` (``docs/results/estimators.md``).
"""

from mmib.info.bounds import (
    club_upper_bound,
    infonce_lower_bound,
    mine_lower_bound,
    nce_club_upper_bound,
    nwj_lower_bound,
)
from mmib.info.conditioning import same_condition_mask
from mmib.info.critics import CRITICS, BilinearCritic, ConcatCritic, Critic, SeparableCritic, build_critic
from mmib.info.discrete import (
    PID_METHODS,
    PIDResult,
    co_information,
    conditional_mutual_information,
    discretize,
    dual_total_correlation,
    entropy,
    joint_from_samples,
    mutual_information,
    pid,
    plugin_mutual_information,
    total_correlation,
)
from mmib.info.estimate import MIEstimateResult, estimate_mi
from mmib.info.estimators import (
    ESTIMATORS,
    CLUBEstimator,
    InfoNCEEstimator,
    MIEstimator,
    MINEEstimator,
    NCECLUBEstimator,
    NWJEstimator,
    build_estimator,
)
from mmib.info.gaussian import (
    conditional_gaussians,
    conditional_gaussians_covariance,
    correlated_gaussians,
    correlated_gaussians_covariance,
    correlation_for_mi,
    gaussian_club_value,
    gaussian_cmi,
    gaussian_dual_total_correlation,
    gaussian_entropy,
    gaussian_mi,
    gaussian_one_vs_all_mi,
    gaussian_total_correlation,
)
from mmib.info.vib import gaussian_kl

__all__ = [
    "infonce_lower_bound", "nwj_lower_bound", "mine_lower_bound", "nce_club_upper_bound", "club_upper_bound",
    "Critic", "SeparableCritic", "ConcatCritic", "BilinearCritic", "CRITICS", "build_critic",
    "MIEstimator", "InfoNCEEstimator", "NWJEstimator", "MINEEstimator", "CLUBEstimator", "NCECLUBEstimator",
    "ESTIMATORS", "build_estimator", "estimate_mi", "MIEstimateResult", "same_condition_mask",
    "gaussian_entropy", "gaussian_club_value", "gaussian_mi", "gaussian_cmi", "gaussian_total_correlation",
    "gaussian_dual_total_correlation", "gaussian_one_vs_all_mi", "correlation_for_mi", "correlated_gaussians",
    "correlated_gaussians_covariance", "conditional_gaussians", "conditional_gaussians_covariance",
    "entropy", "mutual_information", "conditional_mutual_information", "co_information", "total_correlation",
    "dual_total_correlation", "pid", "PIDResult", "PID_METHODS", "joint_from_samples", "discretize",
    "plugin_mutual_information", "gaussian_kl",
]
