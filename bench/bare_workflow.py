"""Workflows that only count: the floor the real-time path is compared with.

In a module of its own, so the workflow sandbox sees nothing but Temporal.
"""

from datetime import timedelta

from temporalio import activity, workflow


@workflow.defn
class BareSignalWorkflow:
    def __init__(self) -> None:
        self.count = 0

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal
    def bump(self) -> None:
        self.count += 1


@activity.defn
async def bare_write(count: int) -> int:
    """Stands for the progress write: a local activity that does nothing."""
    return count


@workflow.defn
class BareSignalLocalActivityWorkflow:
    """Each signal's workflow task also runs a local activity, as a member's event does."""

    def __init__(self) -> None:
        self.count = 0
        self.written = 0

    @workflow.run
    async def run(self) -> None:
        while True:
            await workflow.wait_condition(lambda: self.count > self.written)
            self.written = await workflow.execute_local_activity(
                bare_write, self.count, start_to_close_timeout=timedelta(seconds=10)
            )

    @workflow.signal
    def bump(self) -> None:
        self.count += 1


@workflow.defn
class BareUpdateWorkflow:
    """The same count taken by an Update (a speculative workflow task), with or without the local
    activity."""

    def __init__(self) -> None:
        self.count = 0
        self.write = False

    @workflow.run
    async def run(self, write: bool) -> None:
        self.write = write
        await workflow.wait_condition(lambda: False)

    @workflow.update
    async def bump(self) -> int:
        self.count += 1
        if self.write:
            await workflow.execute_local_activity(bare_write, self.count, start_to_close_timeout=timedelta(seconds=10))
        return self.count
