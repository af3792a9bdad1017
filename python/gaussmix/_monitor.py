"""Watching a long fit: a progress bar and a callback that may stop it.

A fit given ``progress=True`` shows one bar over its iterations (all
``n_init`` runs), with the lower bound beside it, when tqdm is installed (an
optional dependency: ``pip install tqdm``; without it the fit warns once and
runs on). A fit given ``callback`` calls ``callback(info)`` after every
iteration, with ``info`` a dict of ``init`` (the run, from 0), ``n_iter``
(from 1), ``lower_bound`` and ``change`` (from the previous iteration); a
true return value stops the fit cleanly: the run keeps the parameters of its
last complete iteration (``converged_`` False), no further run starts, and
the best run so far is the fit.
"""

import warnings


class Monitor:
    """The progress bar and callback of one fit (both optional)."""

    def __init__(self, callback=None, progress=False, total=None, description=""):
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        self.callback = callback
        self.stopped = False
        self.init = 0
        self._bar = None
        if progress:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                warnings.warn(
                    "progress=True shows a progress bar when tqdm is installed "
                    "(pip install tqdm); fitting without one.",
                    UserWarning,
                    stacklevel=4,
                )
            else:
                self._bar = tqdm(total=total, desc=description, unit="it", leave=False)

    @property
    def active(self):
        return self.callback is not None or self._bar is not None

    def step(self, n_iter, lower_bound, change):
        """After an iteration: True when the fit must stop."""
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(lower_bound=f"{lower_bound:.6g}", refresh=False)
        if self.callback is not None and self.callback(
            {"init": self.init, "n_iter": n_iter, "lower_bound": lower_bound, "change": change}
        ):
            self.stopped = True
        return self.stopped

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


QUIET = Monitor()
