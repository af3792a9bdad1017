"""Build and runtime configuration report."""

import platform
import sys

from . import _core


_KERNELS = {64: "AVX-512 (64-byte vectors)", 32: "AVX2 + FMA (32-byte vectors)", 16: "baseline (16-byte vectors)"}


def show_config(file=None):
    """Print how gaussmix was built and what it will use at run time.

    Reports whether the engine was built with OpenMP, the default thread count
    (OpenMP's default, which honours ``OMP_NUM_THREADS`` and threadpoolctl),
    the processors available, and the instruction set whose kernels run
    (chosen when the engine loads; ``GAUSSMIX_ISA=avx2`` or ``baseline`` caps
    it).

    Parameters
    ----------
    file : file-like, default=None
        Where to print; ``sys.stdout`` when None.

    Returns
    -------
    info : dict
        The same facts as a dictionary.

    Examples
    --------
    >>> import gaussmix
    >>> info = gaussmix.show_config(file=open("/dev/null", "w"))
    >>> sorted(info)
    ['available_cores', 'default_threads', 'kernels', 'openmp', 'python', 'version']
    """
    from . import __version__

    info = {
        "version": __version__,
        "python": sys.version.split()[0] + " " + platform.machine(),
        "openmp": bool(_core.openmp_enabled()),
        "default_threads": int(_core.default_threads()),
        "available_cores": int(_core.available_cores()),
        "kernels": _KERNELS.get(int(_core.vector_bytes()), "unknown"),
    }
    out = file if file is not None else sys.stdout
    print(f"gaussmix {info['version']} (Python {info['python']})", file=out)
    print(f"  built with OpenMP : {info['openmp']}", file=out)
    print(f"  default threads   : {info['default_threads']}", file=out)
    print(f"  available cores   : {info['available_cores']}", file=out)
    print(f"  vector kernels    : {info['kernels']}", file=out)
    return info
