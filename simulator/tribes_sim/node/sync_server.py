"""The sync mesh, server side: who may pull, and answering long-polls with the events a caller
lacks. Mixed into ``SimNode``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from tribes_sim.store import LEGION_ORIGIN, SyncEvent


class SyncServerMixin:
    """SimNode's part: who may pull and what a long-poll answers (uses the attributes SimNode sets up)."""

    def _delivered_directly(self, origin: str) -> bool:
        """Whether every node gets ``origin``'s events without a relay from us.

        Legion writes to every node itself and an active member serves its own events to all its
        subscribers, so such events don't wake our waiting long-polls: waking them would answer
        every poll once per event (N² answers in an N-node mesh, mostly duplicates). A caller
        that still lacks one gets it at once from its next poll (see ``events_for``).
        """
        if origin == LEGION_ORIGIN:
            return True
        row = self.store.member(origin)
        return row is not None and row["status"] == "active"

    def _without_direct_origins(self, vector: dict[str, int]) -> dict[str, int]:
        """``vector`` as a long-poll that waited answers it: direct origins count as held.

        Events that reached us while the caller waited, from Legion or an active member, reach
        the caller directly too; its vector is as old as its request, so sending them would be
        mostly duplicates. Its next poll asks with a fresh vector and gets at once any it lacks.
        """
        view = {str(k): int(v) for k, v in vector.items()}
        direct = {row["node_id"] for row in self.store.members() if row["status"] == "active"}
        direct.add(LEGION_ORIGIN)
        direct.discard(self.node_id)
        for origin, mine in self.store.version_vector.items():
            if origin in direct and mine > view.get(origin, 0):
                view[origin] = mine
        return view

    def peer_allowed(self, peer_id: str) -> bool:
        if peer_id in self.blocked_peers:
            return False
        row = self.store.member(peer_id)
        if row is not None and self.config.has_fault("decommissioned-keeps-syncing"):
            return True  # Fault: a decommissioned member is still served.
        return row is not None and row["status"] != "decommissioned"

    def advertised_high_water_mark(self) -> dict[str, int]:
        return dict(self.store.version_vector)

    async def events_for(self, vector: dict[str, int], wait_s: float) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + wait_s
        asked = vector
        while True:
            events = self.store.events_after(asked, withhold_own_after=self.outage_after_seq)
            if events or self._closed:
                break
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            async with self.changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), remaining)
            asked = self._without_direct_origins(vector)
        more = (
            len(
                self.store.events_after(
                    self._merged(asked, events), limit=1, withhold_own_after=self.outage_after_seq
                )
            )
            > 0
        )
        return {
            "events": [event.to_wire() for event in events],
            "high_water_mark": self.advertised_high_water_mark(),
            "eose": not more,
        }

    @staticmethod
    def _merged(vector: dict[str, int], events: list[SyncEvent]) -> dict[str, int]:
        merged = {k: int(v) for k, v in vector.items()}
        for event in events:
            merged[event.origin] = max(merged.get(event.origin, 0), event.seq)
        return merged
