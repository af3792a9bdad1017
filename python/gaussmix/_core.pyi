"""Type stubs for the compiled engine (private: use the gaussmix package)."""

from typing import Any

import numpy as np
import numpy.typing as npt

_Float = np.float32 | np.float64
_FArray = npt.NDArray[Any]
_Weights = npt.NDArray[np.float64] | None

def openmp_enabled() -> bool: ...
def default_threads() -> int: ...
def vector_bytes() -> int: ...
def isa_dispatch() -> bool: ...
def _vector_exp(x: np.ndarray, out: np.ndarray) -> None: ...
def all_finite(X: np.ndarray, n_threads: int) -> bool: ...

class NonFiniteInput(ValueError): ...

class SuffStats:
    def __init__(
        self,
        covariance_type: str,
        nk: npt.NDArray[np.float64],
        a: npt.NDArray[np.float64],
        s: npt.NDArray[np.float64],
        shift: npt.NDArray[np.float64],
        sum_w: float = 0.0,
        loglik: float = 0.0,
    ) -> None: ...
    @property
    def covariance_type(self) -> str: ...
    @property
    def nk(self) -> npt.NDArray[np.float64]: ...
    @property
    def a(self) -> npt.NDArray[np.float64]: ...
    @property
    def s(self) -> npt.NDArray[np.float64]: ...
    @property
    def shift(self) -> npt.NDArray[np.float64]: ...
    @property
    def sum_w(self) -> float: ...
    @property
    def loglik(self) -> float: ...
    def __add__(self, other: SuffStats) -> SuffStats: ...
    def __iadd__(self, other: SuffStats) -> SuffStats: ...
    def centred(self) -> SuffStats: ...
    def normalised(self) -> SuffStats: ...
    def blend(self, other: SuffStats, eta: float) -> SuffStats: ...
    @staticmethod
    def of_parameters(
        weights: npt.NDArray[np.float64],
        means: npt.NDArray[np.float64],
        covariances: npt.NDArray[np.float64],
        covariance_type: str,
        reg_covar: float,
    ) -> SuffStats: ...
    def m_step(
        self, reg_covar: float, *, single_precision: bool = False, initial: bool = False
    ) -> dict[str, npt.NDArray[np.float64]]: ...

def precisions_init_factor(
    precisions: npt.NDArray[np.float64], covariance_type: str
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None: ...
def available_cores() -> int: ...
def e_step(
    X: _FArray,
    sample_weight: _Weights,
    covariance_type: str,
    weights: npt.NDArray[np.float64],
    means: npt.NDArray[np.float64],
    precisions_cholesky: npt.NDArray[np.float64],
    *,
    log_prob_norm: _FArray | None = None,
    resp: _FArray | None = None,
    labels: npt.NDArray[np.int64] | None = None,
    n_threads: int = 1,
    check_finite: bool = False,
    skip_zero: bool = True,
    log_constants: npt.NDArray[np.float64] | None = None,
) -> float: ...
def em_fit(
    X: _FArray,
    sample_weight: _Weights,
    covariance_type: str,
    weights: npt.NDArray[np.float64],
    means: npt.NDArray[np.float64],
    precisions_cholesky: npt.NDArray[np.float64],
    *,
    tol: float,
    max_iter: int,
    reg_covar: float,
    prev_lower_bound: float,
    n_threads: int = 1,
    check_finite: bool = False,
) -> dict[str, Any]: ...
def em_stats(
    X: _FArray,
    sample_weight: _Weights,
    covariance_type: str,
    weights: npt.NDArray[np.float64],
    means: npt.NDArray[np.float64],
    precisions_cholesky: npt.NDArray[np.float64],
    *,
    n_threads: int = 1,
    skip_zero: bool = True,
    log_constants: npt.NDArray[np.float64] | None = None,
) -> SuffStats: ...
def kmeans_column_stats(X: _FArray) -> tuple[_FArray, _FArray]: ...
def kmeans_plusplus(
    X: _FArray,
    sample_weight: _Weights,
    shift: _FArray | None,
    weight_sum: float,
    n_clusters: int,
    n_local_trials: int,
    draws: npt.NDArray[np.float64],
    n_threads: int = 1,
) -> npt.NDArray[np.int64]: ...
def kmeans_choice(weights: _FArray, weight_sum: float, u: float) -> int: ...
def kmeans_cumsum_search(
    closest: _FArray, weights: _FArray | None, values: npt.NDArray[np.float64]
) -> npt.NDArray[np.int64]: ...
def kmeans_sq_dists(
    X: _FArray,
    shift: _FArray | None,
    candidates: npt.NDArray[np.int64],
    closest: _FArray | None,
    out: _FArray,
    n_threads: int = 1,
) -> None: ...
def kmeans_assign(
    X: _FArray,
    sample_weight: _FArray | None,
    shift: _FArray | None,
    centers: npt.NDArray[np.float64],
    labels: npt.NDArray[np.int64],
    sums: npt.NDArray[np.float64] | None = None,
    weight_sums: npt.NDArray[np.float64] | None = None,
    n_threads: int = 1,
) -> int: ...
def stats_from_labels(
    X: _FArray,
    sample_weight: _Weights,
    labels: npt.NDArray[np.int64],
    shifts: npt.NDArray[np.float64],
    covariance_type: str,
    n_threads: int = 1,
) -> SuffStats: ...
def stats_from_resp(
    X: _FArray,
    sample_weight: _Weights,
    resp: _FArray,
    covariance_type: str,
    n_threads: int = 1,
) -> SuffStats: ...

class KdeIndex:
    def __init__(
        self,
        train: _FArray,
        train_weight: _Weights,
        whiten: npt.NDArray[np.float64],
        leaf_size: int = 40,
        n_threads: int = 1,
    ) -> None: ...
    def log_sum(
        self,
        queries: _FArray,
        kernel: str,
        scale: float,
        log_atol: float,
        rtol: float,
        exclude_self: bool,
        method: int,
        out: _FArray,
        n_threads: int = 1,
    ) -> dict[str, int]: ...
    def build_tree(self) -> None: ...
    def build_grid(self) -> None: ...
    @property
    def train(self) -> _FArray: ...
    @property
    def whiten(self) -> npt.NDArray[np.float64]: ...
