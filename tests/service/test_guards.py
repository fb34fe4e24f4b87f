"""What bounds the server's memory and time per client: the map cache in bytes, the rate limit by jobs, and the result
files a request can name (only the service's own residual maps, by their name)."""

from __future__ import annotations

import numpy as np
import pytest

from controlnet_demo.errors import UserInputError
from controlnet_demo.service.files import ResultFiles
from controlnet_demo.service.guards import MapCache, RateLimiter


def test_the_map_cache_stays_within_its_bytes_and_keeps_the_newest():
    size = 512 * 512 * 3
    cache = MapCache(max_bytes=10 * size)
    for k in range(30):  # 30 maps in a cache of 10 maps' bytes
        cache.get_or_make(k, lambda k=k: np.full((512, 512, 3), k, np.uint8))
        assert cache.nbytes <= cache.max_bytes
    assert len(cache) == 10 and cache.get_or_make(29, lambda: None)[0, 0, 0] == 29  # the newest kept: not made again
    assert cache.nbytes == sum(cache.get_or_make(k, lambda: None).nbytes for k in range(20, 30))


def test_a_map_over_a_quarter_of_the_cache_is_returned_but_not_kept():
    cache = MapCache(max_bytes=4 * 2**20)
    made = []
    for _ in range(2):
        cache.get_or_make("big", lambda: made.append(1) or np.zeros((1024, 1024, 3), np.uint8))
    assert len(made) == 2 and cache.nbytes == 0


def test_a_comparison_counts_as_its_jobs_against_the_rate_limit():
    now = [0.0]
    limiter = RateLimiter(6, clock=lambda: now[0])
    limiter.check("a", cost=5)
    limiter.check("a")
    with pytest.raises(UserInputError, match="6 a minute"):
        limiter.check("a", cost=5)
    limiter.check("b", cost=5)  # another client is counted apart
    now[0] = 61.0
    limiter.check("a", cost=5)  # a minute later the window is free again
    small = RateLimiter(4, clock=lambda: now[0])
    small.check("c")
    with pytest.raises(UserInputError, match="4 a minute"):  # a comparison over the whole limit: words, no IndexError
        small.check("c", cost=5)


def test_residual_maps_are_read_only_from_the_services_own_files_by_their_name(tmp_path):
    class Result:
        residual_maps = {"canny": np.ones((2, 13, 4, 4), np.float32)}

    files = ResultFiles(tmp_path / "results", ttl_s=3600)
    name = files.save_residuals(Result())
    saved = files.residual_maps(name.rsplit("/", 1)[-1])
    np.testing.assert_array_equal(saved["canny"], Result.residual_maps["canny"])
    # a file of the right name that the service did not write, elsewhere, and names that are paths: the same words
    elsewhere = tmp_path / "20260101-000000-0123456789abcdef-residuals.npz"
    np.savez(elsewhere, canny=np.zeros(1))
    for name in ["../" + elsewhere.name, str(elsewhere), "/etc/passwd", elsewhere.name, "", "x" * 5000]:
        with pytest.raises(UserInputError, match="no longer on the server"):
            files.residual_maps(name)


def test_result_files_older_than_their_ttl_are_deleted_at_the_next_write(tmp_path):
    class Result:
        residual_maps = {"canny": np.ones((1, 13, 2, 2), np.float32)}

    files = ResultFiles(tmp_path, ttl_s=0)
    first = files.save_residuals(Result())
    files.prune()
    assert not (tmp_path / first.rsplit("/", 1)[-1]).exists()
