"""gaussmix: fast, exact Gaussian mixtures for Python.

A multithreaded C++ engine behind drop-in replacements for scikit-learn's
``GaussianMixture`` and ``KernelDensity`` and SciPy's ``gaussian_kde``.
"""

try:
    from . import _core
except ImportError as err:  # pragma: no cover - depends on the build
    err.add_note(
        "gaussmix's compiled core (gaussmix._core) could not be imported. "
        "Build and install the package with `pip install .` from a source "
        "checkout (a C++17 compiler and CMake are needed); importing from the "
        "source tree without building does not work."
    )
    raise

from ._bayesian_mixture import BayesianGaussianMixture
from ._config import show_config
from ._gaussian_kde import gaussian_kde
from ._kde import KernelDensity, select_bandwidth
from ._gaussian_mixture import GaussianMixture
from ._grouped import GroupedGaussianMixture, fit_many
from ._patch import patch_sklearn, sklearn_is_patched, sklearn_patched, unpatch_sklearn
from ._selection import GaussianMixtureIC

__version__ = "0.1.0"


def get_include():
    """The directory of the engine's C++ headers, for compiled code that uses
    them (``gaussmix/capi.hpp``, declared for Cython in ``gaussmix/capi.pxd``)."""
    import os

    return os.path.join(os.path.dirname(__file__), "include")


__all__ = [
    "BayesianGaussianMixture",
    "GaussianMixture",
    "GaussianMixtureIC",
    "GroupedGaussianMixture",
    "KernelDensity",
    "fit_many",
    "gaussian_kde",
    "get_include",
    "patch_sklearn",
    "select_bandwidth",
    "show_config",
    "sklearn_is_patched",
    "sklearn_patched",
    "unpatch_sklearn",
    "__version__",
]
