"""Patching scikit-learn and SciPy in place: their names, gaussmix's classes.

``patch_sklearn()`` rebinds, in every module that defines or exports them,

* ``sklearn.mixture.GaussianMixture`` and ``BayesianGaussianMixture``
  (also in ``sklearn.mixture._gaussian_mixture`` / ``._bayesian_mixture``),
* ``sklearn.neighbors.KernelDensity`` (also ``sklearn.neighbors._kde``),
* ``scipy.stats.gaussian_kde`` (also ``scipy.stats._kde``),

to gaussmix's classes, so that code written against scikit-learn or SciPy,
including libraries the user does not own, runs on gaussmix from then on.
gaussmix's classes are themselves drop-in replacements (what they do not
compute natively, such as non-Euclidean kernel density metrics, they hand to
scikit-learn's trees), so patched or not, a call gives gaussmix's result.

What a patch cannot reach: a name bound before it ran (``from
sklearn.mixture import GaussianMixture`` in a module imported earlier) keeps
the original class. ``patch_sklearn`` looks for such names in the loaded
modules and warns about each one it finds.

``GAUSSMIX_NO_PATCH=1`` in the environment turns patching off (the call
warns and changes nothing). With patches in place, each fit of a patched
class that gaussmix's engine computes (a ``gaussian_kde``: its construction)
logs one record at level INFO to the logger ``"gaussmix.patch"``, naming the
scikit-learn or SciPy name that ran on gaussmix.
"""

import contextlib
import importlib
import logging
import os
import sys
import warnings

__all__ = ["patch_sklearn", "unpatch_sklearn", "sklearn_is_patched", "sklearn_patched"]

logger = logging.getLogger("gaussmix.patch")

# name -> (gaussmix module, the modules that define or export it, the public one first)
_TARGETS = {
    "GaussianMixture": (
        "gaussmix._gaussian_mixture",
        ("sklearn.mixture", "sklearn.mixture._gaussian_mixture"),
    ),
    "BayesianGaussianMixture": (
        "gaussmix._bayesian_mixture",
        ("sklearn.mixture", "sklearn.mixture._bayesian_mixture"),
    ),
    "KernelDensity": ("gaussmix._kde", ("sklearn.neighbors", "sklearn.neighbors._kde")),
    "gaussian_kde": ("gaussmix._gaussian_kde", ("scipy.stats", "scipy.stats._kde")),
}

# (module name, attribute) -> the original object, while patched
_originals = {}


def _replacement(name):
    return getattr(importlib.import_module(_TARGETS[name][0]), name)


def _names(names):
    if names is None:
        return list(_TARGETS)
    if isinstance(names, str):
        names = [names]
    names = list(names)
    unknown = [n for n in names if n not in _TARGETS]
    if unknown:
        raise ValueError(f"Cannot patch {unknown!r}: the names gaussmix replaces are {list(_TARGETS)!r}")
    return names


def _disabled():
    return os.environ.get("GAUSSMIX_NO_PATCH", "").strip().lower() not in ("", "0", "false", "no")


def patch_sklearn(names=None):
    """Rebind scikit-learn's and SciPy's names to gaussmix's classes.

    Parameters
    ----------
    names : str or list of str, default=None
        Which of ``"GaussianMixture"``, ``"BayesianGaussianMixture"``,
        ``"KernelDensity"`` and ``"gaussian_kde"`` to patch (None: all).
        Patching twice changes nothing; a library that is not installed is
        left out.

    Returns
    -------
    list of str
        The ``"module.name"`` bindings now pointing at gaussmix.
    """
    names = _names(names)
    if _disabled():
        warnings.warn("GAUSSMIX_NO_PATCH is set: scikit-learn and SciPy are left as they are.",
                      UserWarning, stacklevel=2)
        return []
    done = []
    for name in names:
        ours = _replacement(name)
        for module_name in _TARGETS[name][1]:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            current = getattr(module, name, None)
            if current is None:
                continue
            if current is not ours:
                _originals[(module_name, name)] = current
                setattr(module, name, ours)
            done.append(f"{module_name}.{name}")
    _warn_bound_earlier()
    return done


def unpatch_sklearn(names=None):
    """Restore the original scikit-learn and SciPy objects (all, or ``names``)."""
    for name in _names(names):
        for module_name in _TARGETS[name][1]:
            original = _originals.pop((module_name, name), None)
            if original is not None:
                setattr(sys.modules[module_name], name, original)


def sklearn_is_patched(name=None, return_map=False):
    """Whether ``name`` (None: every name) is patched in all its modules; with
    ``return_map``, a dict of each name's state instead."""
    state = {
        n: all((m, n) in _originals for m in _TARGETS[n][1] if _importable(m, n))
        and any((m, n) in _originals for m in _TARGETS[n][1])
        for n in _names(name)
    }
    return state if return_map else all(state.values())


def _importable(module_name, name):
    module = sys.modules.get(module_name)
    return module is not None and hasattr(module, name)


@contextlib.contextmanager
def sklearn_patched(names=None):
    """``with sklearn_patched(): ...`` runs the block patched, then restores
    what it patched (whatever was patched before stays patched)."""
    before = {key for key in _originals}
    patch_sklearn(names)
    try:
        yield
    finally:
        added = {n for (m, n) in set(_originals) - before}
        if added:
            unpatch_sklearn(sorted(added))


def _warn_bound_earlier():
    """Warn about module-level names bound to an original before patching."""
    originals = {}
    for (module, name), obj in _originals.items():  # the public module's name first
        originals.setdefault(id(obj), f"{module}.{name}")
    if not originals:
        return
    found, seen = [], set()
    for module_name, module in list(sys.modules.items()):
        if module is None or module_name.split(".")[0] in ("sklearn", "scipy", "gaussmix"):
            continue
        if id(module) in seen:  # the same module under a second name
            continue
        seen.add(id(module))
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for attr, value in list(namespace.items()):
            where = originals.get(id(value))
            if where is not None:
                found.append(f"{module_name}.{attr} (bound to {where})")
    if found:
        warnings.warn(
            "These names were bound before patching and still refer to the originals: "
            + ", ".join(sorted(found))
            + ". Patch before importing them, or use the module's attribute "
            "(sklearn.mixture.GaussianMixture) at call time.",
            UserWarning,
            stacklevel=3,
        )


def note_call(estimator, method):
    """Log that a patched name ran on gaussmix (cheap when nothing is patched)."""
    if _originals and logger.isEnabledFor(logging.INFO):
        name = type(estimator).__name__
        for module_name in _TARGETS.get(name, (None, ()))[1]:
            if (module_name, name) in _originals:
                logger.info("%s.%s.%s ran on gaussmix", module_name, name, method)
                return


def original(module_name, name):
    """The object ``module_name.name`` held before patching (itself if unpatched)."""
    return _originals.get((module_name, name), getattr(importlib.import_module(module_name), name))
