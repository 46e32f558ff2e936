"""one_blas_thread holds numpy's BLAS to one thread for the context and gives its threads
back after, as threadpool_limits does, from a controller made once per process."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from regflow.runtime.cores import one_blas_thread


def _blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_one_thread_inside_and_the_threads_back_after() -> None:
    assert np.ones(3) @ np.ones(3) == 3.0  # numpy's BLAS is loaded
    with threadpool_limits(limits=2, user_api="blas"):  # the same before, on any machine
        before = _blas_threads()
        assert before and all(n == 2 for n in before)
        for _ in range(2):  # the controller is reused
            with one_blas_thread():
                assert all(n == 1 for n in _blas_threads())
            assert _blas_threads() == before
