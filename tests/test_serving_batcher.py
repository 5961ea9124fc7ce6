"""Dynamic batcher: windows and maximum sizes form the batches, the queue is bounded, errors reach callers."""
from __future__ import annotations

import asyncio
import threading

import pytest

from course_lib.serving.batcher import DynamicBatcher, QueueFullError


def run(coro):
    return asyncio.run(coro)


def test_requests_within_the_window_share_a_batch_up_to_the_maximum():
    seen = []

    def fn(items):
        seen.append(list(items))
        return [x * 10 for x in items]

    async def main():
        b = DynamicBatcher(fn, max_batch_size=4, batch_window_ms=200, max_queue=16)
        futures = [b.submit(i) for i in range(6)]                # all arrive together
        results = await asyncio.gather(*futures)
        await b.close()
        return results, b.stats.as_dict()

    results, stats = run(main())
    assert results == [0, 10, 20, 30, 40, 50]                    # each caller gets its own answer, in order
    assert seen == [[0, 1, 2, 3], [4, 5]]                        # closed by the maximum, then by the window
    assert stats["batches"] == 2 and stats["largest_batch"] == 4 and stats["mean_batch_size"] == 3.0


def test_batch_size_one_switches_batching_off():
    seen = []

    async def main():
        b = DynamicBatcher(lambda items: seen.append(len(items)) or items, max_batch_size=1, batch_window_ms=50)
        await asyncio.gather(*[b.submit(i) for i in range(5)])
        await b.close()

    run(main())
    assert seen == [1, 1, 1, 1, 1]


def test_a_lone_request_waits_at_most_the_window():
    async def main():
        b = DynamicBatcher(lambda items: items, max_batch_size=8, batch_window_ms=30)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        assert await b.submit("x") == "x"
        elapsed = loop.time() - t0
        await b.close()
        return elapsed

    assert 0.025 <= run(main()) < 5.0


def test_the_queue_is_bounded_and_refuses_at_once():
    release = threading.Event()

    def slow(items):
        release.wait(10)
        return items

    async def main():
        b = DynamicBatcher(slow, max_batch_size=1, batch_window_ms=0, max_queue=2)
        first, second = b.submit(1), b.submit(2)                 # one running, one waiting
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFullError, match="max_queue=2"):
            b.submit(3)
        assert b.stats.rejected == 1 and b.pending == 2
        release.set()
        assert await asyncio.gather(first, second) == [1, 2]
        assert b.pending == 0
        assert await b.submit(4) == 4                            # room again
        await b.close()

    run(main())


def test_an_exception_fails_every_request_of_its_batch_and_the_batcher_goes_on():
    def fn(items):
        if "bad" in items:
            raise ValueError("model failed")
        return items

    async def main():
        b = DynamicBatcher(fn, max_batch_size=8, batch_window_ms=50)
        results = await asyncio.gather(b.submit("ok"), b.submit("bad"), return_exceptions=True)
        assert all(isinstance(r, ValueError) for r in results)
        assert await b.submit("later") == "later"
        await b.close()

    run(main())


def test_a_cancelled_request_is_dropped_before_its_batch_runs():
    seen = []
    release = threading.Event()

    def fn(items):
        seen.append(list(items))
        release.wait(10)
        return items

    async def main():
        b = DynamicBatcher(fn, max_batch_size=1, batch_window_ms=0, max_queue=8)
        running, waiting = b.submit("a"), b.submit("b")
        await asyncio.sleep(0.05)
        waiting.cancel()                                          # its client went away
        release.set()
        assert await running == "a"
        assert await b.submit("c") == "c"
        await b.close()
        return b.stats

    stats = run(main())
    assert seen == [["a"], ["c"]] and stats.cancelled == 1


def test_bad_settings_raise_clear_errors():
    with pytest.raises(ValueError, match="max_batch_size must be >= 1"):
        DynamicBatcher(lambda x: x, max_batch_size=0)
    with pytest.raises(ValueError, match="batch_window_ms must be a number of milliseconds"):
        DynamicBatcher(lambda x: x, batch_window_ms=-1)
    with pytest.raises(TypeError, match="fn must be a callable"):
        DynamicBatcher("not a function")
