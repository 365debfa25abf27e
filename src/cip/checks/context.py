"""What every check reads from: the change, the options, and registry reads made once.

Checks run concurrently and several need the same facts (the staging and size checks both
read an added image's manifests), so registry reads are memoised here as tasks: the first
check to ask starts the read, the others await the same result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from cip.checks.change import Change
from cip.model.inventory import Inventory
from cip.plan.edges import EdgeGroup
from cip.plan.planner import Plan, plan
from cip.promote.imagesize import ImageFacts, inspect_image
from cip.promote.inventory import InventoryReader
from cip.promote.validate import StagingReader
from cip.registry.pool import RegistryPool
from cip.trust.judge import Judgement, StagingPolicy
from cip.vuln.gate import VulnGate

DEFAULT_MAX_IMAGE_SIZE = 2048  # MiB: legacy upstream's default for --max-image-size

T = TypeVar("T")


@dataclass(frozen=True)
class CheckOptions:
    forbid_removal: bool = False
    max_image_size: int = DEFAULT_MAX_IMAGE_SIZE  # MiB
    concurrency: int = 32
    vuln_gate: VulnGate | None = None  # the vulnerabilities check is skipped without one
    staging: StagingPolicy | None = None  # the signature and provenance checks need one


@dataclass
class CheckContext:
    change: Change
    pool: RegistryPool
    options: CheckOptions = field(default_factory=CheckOptions)
    _tasks: dict[tuple[str, ...], asyncio.Future[object]] = field(default_factory=dict)
    _gate: asyncio.Semaphore | None = None
    _staging: StagingReader | None = None

    async def _once(self, key: tuple[str, ...], make: Callable[[], Awaitable[T]]) -> T:
        task = self._tasks.get(key)
        if task is None:
            task = self._tasks[key] = asyncio.ensure_future(make())
        result: T = await task  # type: ignore[assignment]  # keyed by what `make` returns
        return result

    async def plan(self) -> tuple[Inventory, Plan]:
        """The planner's verdicts for the selected digests, with the facts it judged them by
        (destinations read first, then sources for what a destination lacks)."""
        groups = self.change.selected

        async def make() -> tuple[Inventory, Plan]:
            reader = InventoryReader(self.pool, concurrency=self.options.concurrency)
            inventory = await reader.read(groups)
            return inventory, plan(groups, inventory)

        return await self._once(("plan",), make)

    async def source_image(self, group: EdgeGroup) -> ImageFacts:
        """The staging side of one digest: present, its index children, its size."""
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.options.concurrency)
        gate = self._gate
        client, repository = self.pool.locate(group.source, group.image)
        return await self._once(
            ("image", group.source.name, group.image, group.digest),
            lambda: inspect_image(client, repository, group.digest, gate),
        )

    async def staging_judgement(self, group: EdgeGroup) -> Judgement | str:
        """Staging's signatures and provenance of one source digest (read once for both
        checks), or why staging could not be read."""
        policy = self.options.staging
        assert policy is not None, "only the signature and provenance checks ask, with a policy"
        if self._staging is None:
            self._staging = StagingReader(self.pool, policy, self.options.concurrency)
        reader = self._staging
        return await self._once(
            ("trust", group.source.name, group.image, group.digest),
            lambda: reader.judge(group.source, group.image, group.digest),
        )
