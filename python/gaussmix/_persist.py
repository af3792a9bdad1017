"""A fitted GaussianMixture as a portable file: numpy's .npz, no pickle.

The file holds the fitted arrays by name and one entry ``__meta__``: a JSON
text with the format's name and version, the class, the constructor's
parameters (those JSON can hold; starting values are left out, a fitted
model does not need them), the scalar fitted attributes and the gaussmix
version that wrote it. Loading never unpickles (``allow_pickle=False``), so a
file from elsewhere cannot run code; it checks the format version and every
array's shape against the parameters, and says what is wrong.
"""

import json
import os

import numpy as np

FORMAT = "gaussmix-model"
FORMAT_VERSION = 1
_ARRAYS = ("weights_", "means_", "covariances_", "precisions_cholesky_", "lower_bounds_")
_SCALARS = ("converged_", "n_iter_", "lower_bound_", "n_features_in_")


def _json_params(estimator):
    params = {}
    for name, value in estimator.get_params(deep=False).items():
        if isinstance(value, np.generic):
            value = value.item()
        try:
            json.dumps(value)
        except TypeError:
            continue  # arrays and RandomState instances: not needed to use the fit
        params[name] = value
    return params


def save(estimator, path):
    """Write a fitted GaussianMixture to ``path`` (an .npz file)."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator, "means_")
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "class": type(estimator).__name__,
        "params": _json_params(estimator),
        **{name: np.asarray(getattr(estimator, name)).item() for name in _SCALARS},
    }
    if hasattr(estimator, "feature_names_in_"):
        meta["feature_names_in_"] = [str(v) for v in estimator.feature_names_in_]
    from . import __version__

    meta["gaussmix_version"] = __version__
    arrays = {name: np.asarray(getattr(estimator, name)) for name in _ARRAYS}
    with open(os.fspath(path), "wb") as f:  # the exact name, not name + ".npz"
        np.savez(f, __meta__=np.array(json.dumps(meta)), **arrays)


def load(path):
    """The GaussianMixture saved in ``path``; ValueError if the file is not
    one, is of another format version, or its arrays do not fit its parameters."""
    from ._gaussian_mixture import GaussianMixture, _precision_shape

    try:
        archive = np.load(os.fspath(path), allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not a gaussmix model file: {err}") from None
    if not hasattr(archive, "files"):
        raise ValueError(f"{path} is not a gaussmix model file (not an .npz archive)")
    with archive:
        contents = {name: archive[name] for name in archive.files}
    if "__meta__" not in contents:
        raise ValueError(f"{path} is not a gaussmix model file (no __meta__ entry)")
    meta = json.loads(str(contents.pop("__meta__")))
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a gaussmix model file (format {meta.get('format')!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} has format version {meta.get('format_version')} (written by gaussmix "
            f"{meta.get('gaussmix_version')}); this gaussmix reads version {FORMAT_VERSION}"
        )
    if meta.get("class") != "GaussianMixture":
        raise ValueError(f"{path} holds a {meta.get('class')}; only GaussianMixture files are read")
    missing = [name for name in _ARRAYS if name not in contents]
    if missing:
        raise ValueError(f"{path} lacks the arrays {missing}")
    gm = GaussianMixture(**meta["params"])
    k, d = gm.n_components, meta["n_features_in_"]
    shapes = {
        "weights_": (k,),
        "means_": (k, d),
        "covariances_": _precision_shape(gm.covariance_type, k, d),
        "precisions_cholesky_": _precision_shape(gm.covariance_type, k, d),
    }
    for name, shape in shapes.items():
        if contents[name].shape != shape:
            raise ValueError(
                f"{path}: {name} has shape {contents[name].shape}, but {k} "
                f"{gm.covariance_type!r} components in {d} features need {shape}"
            )
        if contents[name].dtype not in (np.float64, np.float32):
            raise ValueError(f"{path}: {name} has dtype {contents[name].dtype}, not float64 or float32")
    names = None
    if "feature_names_in_" in meta:
        names = np.array(meta["feature_names_in_"], dtype=object)
    params = {name[:-1]: contents[name] for name in shapes}
    return gm._set_fit(
        params, converged=meta["converged_"], n_iter=meta["n_iter_"], lower_bound=meta["lower_bound_"],
        lower_bounds=contents["lower_bounds_"], n_features=d, feature_names=names,
    )
