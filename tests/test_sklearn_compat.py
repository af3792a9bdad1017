"""scikit-learn API conformance of gaussmix.GaussianMixture and
BayesianGaussianMixture.

The estimator instances mirror scikit-learn's own test suite for its
GaussianMixture and BayesianGaussianMixture (``INIT_PARAMS`` in
``sklearn/utils/_test_common/instance_generator.py``: ``n_init=2, max_iter=5``,
no expected failures); like ``sklearn/tests/test_common.py`` the checks run with
ConvergenceWarning silenced, as five EM iterations need not converge.
"""

import inspect
import pickle
import warnings

import numpy as np
import pytest
from gmm_data import make_blobs_data
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.mixture import BayesianGaussianMixture as SkBayesianGaussianMixture
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.utils.estimator_checks import parametrize_with_checks

from gaussmix import BayesianGaussianMixture, GaussianMixture

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
FITTED_ATTRIBUTES = [
    "weights_",
    "means_",
    "covariances_",
    "precisions_",
    "precisions_cholesky_",
    "converged_",
    "n_iter_",
    "lower_bound_",
    "lower_bounds_",
    "n_features_in_",
]


@parametrize_with_checks(
    [GaussianMixture(n_init=2, max_iter=5, covariance_type=c) for c in COVARIANCE_TYPES]
    + [GaussianMixture(n_init=2, max_iter=5, init_params="random_from_data", n_jobs=1)]
    + [BayesianGaussianMixture(n_init=2, max_iter=5, covariance_type=c) for c in COVARIANCE_TYPES]
    + [
        BayesianGaussianMixture(
            n_init=2, max_iter=5, weight_concentration_prior_type="dirichlet_distribution",
            init_params="random", n_jobs=1,
        )
    ]
)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


# ------------------------------------------------------------- parameters


def test_get_params_names_match_sklearn_plus_threads_and_online_schedule():
    ours = set(GaussianMixture().get_params())
    theirs = set(SkGaussianMixture().get_params())
    assert ours == theirs | {"n_jobs", "learning_decay", "learning_offset"}


def test_bayesian_params_match_sklearn_names_and_defaults():
    ours = BayesianGaussianMixture().get_params()
    theirs = SkBayesianGaussianMixture().get_params()
    assert set(ours) == set(theirs) | {"n_jobs"}
    for name, value in theirs.items():
        assert ours[name] == value, name
    assert ours["n_jobs"] is None


def test_default_params_match_sklearn():
    ours = GaussianMixture().get_params()
    theirs = SkGaussianMixture().get_params()
    for name, value in theirs.items():
        assert ours[name] == value, name
    assert ours["n_jobs"] is None


def test_get_params_lists_every_constructor_argument():
    signature = inspect.signature(GaussianMixture.__init__)
    names = {p for p in signature.parameters if p != "self"}
    assert set(GaussianMixture().get_params()) == names
    params = {
        "n_components": 3,
        "covariance_type": "diag",
        "tol": 1e-4,
        "reg_covar": 1e-5,
        "max_iter": 50,
        "n_init": 2,
        "init_params": "random",
        "weights_init": [0.2, 0.3, 0.5],
        "means_init": [[0.0], [1.0], [2.0]],
        "precisions_init": [[1.0], [2.0], [3.0]],
        "random_state": 7,
        "warm_start": True,
        "verbose": 0,
        "verbose_interval": 5,
        "n_jobs": 2,
        "learning_decay": 0.6,
        "learning_offset": 3.0,
    }
    assert set(params) == names
    got = GaussianMixture(**params).get_params()
    for name, value in params.items():
        assert got[name] is value, name


def test_set_params_get_params_round_trip():
    gm = GaussianMixture(n_components=2, covariance_type="tied", n_jobs=1, random_state=3)
    params = gm.get_params()
    other = GaussianMixture().set_params(**params)
    assert other.get_params() == params
    assert gm.set_params(**params) is gm
    assert gm.get_params() == params


def test_set_params_changes_only_what_is_given():
    gm = GaussianMixture(n_components=2, random_state=3)
    before = gm.get_params()
    gm.set_params(n_components=4, n_jobs=2)
    after = gm.get_params()
    assert after["n_components"] == 4
    assert after["n_jobs"] == 2
    for name in set(before) - {"n_components", "n_jobs"}:
        assert after[name] == before[name], name


def test_set_params_rejects_unknown_name():
    with pytest.raises(ValueError, match=r"Invalid parameter 'bogus' for estimator GaussianMixture"):
        GaussianMixture().set_params(bogus=1)


def test_clone_of_fitted_model_is_unfitted_with_equal_params():
    X, _ = make_blobs_data(n=120, d=2, k=2, seed=4)
    weights_init = np.array([0.5, 0.5])
    gm = GaussianMixture(n_components=2, weights_init=weights_init, n_jobs=1, random_state=0).fit(X)
    cloned = clone(gm)
    assert cloned is not gm
    assert type(cloned) is GaussianMixture
    params, cloned_params = gm.get_params(), cloned.get_params()
    assert params.keys() == cloned_params.keys()
    for name, value in params.items():
        if isinstance(value, np.ndarray):
            assert_array_equal(cloned_params[name], value)
        else:
            assert cloned_params[name] == value, name
    for attr in FITTED_ATTRIBUTES:
        assert not hasattr(cloned, attr), attr
    with pytest.raises(NotFittedError):
        cloned.predict(X)
    assert_array_equal(cloned.fit(X).means_, gm.means_)


def test_repr_shows_non_default_params():
    text = repr(GaussianMixture(n_components=3, n_jobs=2))
    assert text == "GaussianMixture(n_components=3, n_jobs=2)"


# ---------------------------------------------------------------- pickling


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pickle_round_trip_of_fitted_model(covariance_type, dtype):
    X, _ = make_blobs_data(n=200, d=3, k=3, seed=5, dtype=dtype)
    gm = GaussianMixture(n_components=3, covariance_type=covariance_type, random_state=0).fit(X)
    restored = pickle.loads(pickle.dumps(gm, protocol=pickle.HIGHEST_PROTOCOL))
    assert restored is not gm
    assert restored.get_params() == gm.get_params()
    for attr in FITTED_ATTRIBUTES:
        a, b = getattr(gm, attr), getattr(restored, attr)
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype, attr
        assert_array_equal(b, a, err_msg=attr)
    assert_array_equal(restored.predict(X), gm.predict(X))
    assert_array_equal(restored.predict_proba(X), gm.predict_proba(X))
    assert_array_equal(restored.score_samples(X), gm.score_samples(X))
    assert restored.score(X) == gm.score(X)
    assert restored.bic(X) == gm.bic(X)
    assert restored.aic(X) == gm.aic(X)
    assert_array_equal(restored.sample(7)[0], gm.sample(7)[0])


def test_pickle_round_trip_of_unfitted_model():
    gm = GaussianMixture(n_components=2, weights_init=[0.3, 0.7], n_jobs=1)
    restored = pickle.loads(pickle.dumps(gm))
    assert restored.get_params() == gm.get_params()
    with pytest.raises(NotFittedError):
        restored.predict(np.zeros((2, 2)))


def test_unpickled_model_can_be_refitted_with_warm_start():
    X, _ = make_blobs_data(n=200, d=2, k=2, seed=6)
    gm = GaussianMixture(n_components=2, warm_start=True, random_state=0).fit(X)
    restored = pickle.loads(pickle.dumps(gm))
    gm.fit(X)
    restored.fit(X)
    assert_array_equal(restored.means_, gm.means_)
    assert restored.lower_bound_ == gm.lower_bound_
