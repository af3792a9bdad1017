import numpy as np
import pytest
import sklearn

import gaussmix
from gaussmix import _core
from gmm_data import make_blobs_data


def pytest_report_header(config):
    return (
        f"gaussmix {gaussmix.__version__}, scikit-learn {sklearn.__version__}, "
        f"numpy {np.__version__}; OpenMP {'on' if _core.openmp_enabled() else 'OFF'}, "
        f"default threads {_core.default_threads()}, cores {_core.available_cores()}, "
        f"vector kernels {_core.vector_bytes()} bytes"
    )


@pytest.fixture
def blobs():
    return make_blobs_data()
