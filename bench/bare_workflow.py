"""A workflow that only counts signals: the floor the real-time path is compared with.

In a module of its own, so the workflow sandbox sees nothing but Temporal.
"""

from temporalio import workflow


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
