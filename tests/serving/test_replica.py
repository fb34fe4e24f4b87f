"""A Serve replica's own logic, without Ray: what it does when Serve cancels a request (the front's Stop)."""

from __future__ import annotations

import asyncio

from controlnet_demo.service import Failed, StepDone
from controlnet_demo.serving.ray_serve import Replica
from controlnet_demo.settings import Settings
from tests.apiclient import counting_steps, wait_for
from tests.builders import small_spec


def test_a_cancelled_request_stops_the_replicas_job_at_its_next_step(astronaut):
    """Serve cancels the replica's coroutine when the front cancels its stream; the job must then stop, not run
    its 100 steps to the end while the replica counts as free."""
    replica = Replica(Settings(preset="tiny", preview_every=0))
    service = replica.service

    async def consume(started: asyncio.Event):
        async for _, event in replica.generate(small_spec(astronaut, steps=100)):
            assert not isinstance(event, Failed), event.error
            if isinstance(event, StepDone):
                started.set()

    async def main():
        started = asyncio.Event()
        task = asyncio.create_task(consume(started))
        await asyncio.wait([task, asyncio.ensure_future(started.wait())], return_when=asyncio.FIRST_COMPLETED)
        assert not task.done(), task.result()  # it ended (or failed) before its first step
        task.cancel()  # what Serve does on the front's cancel
        await asyncio.gather(task, return_exceptions=True)

    with counting_steps(service, pause_s=0.02) as steps:
        asyncio.run(main())
        assert wait_for(lambda: not service.engine._lock.locked(), 60), "the job kept running"
    assert 1 <= max(steps) < 100
