"""Fault hooks the nemesis drives on a node: partitions, publish outages, clock skew.

Mixed into ``SimNode``.
"""

from __future__ import annotations


class NodeNemesisMixin:
    """SimNode's part: the nemesis hooks (uses the attributes SimNode sets up)."""

    def partition(self, peers: list[str]) -> None:
        if self.partitioned_since_seq is None:
            self.partitioned_since_seq = self.store.version_vector.get(self.node_id, 0)
        self.blocked_peers.update(peers)
        for state in self.servers.values():
            if state.node_id in self.blocked_peers:
                state.connected = False
                state.failing_reason = "partitioned: traffic dropped"
        self.note(f"partitioned from {sorted(peers)}")

    async def heal(self) -> None:
        was = self.partitioned_since_seq
        self.blocked_peers.clear()
        self.partitioned_since_seq = None
        if was is not None and self.config.has_fault("heal-loses-writes"):
            lost = self.store.blank_own_events_after(was)
            self.store.rebuild()
            self.note(f"heal dropped {lost} local writes")
        self.note("healed")
        await self._changed()

    async def set_outage(self, active: bool) -> None:
        if active and self.outage_after_seq is None:
            self.outage_after_seq = self.store.version_vector.get(self.node_id, 0)
            self.note("publish outage started")
        elif not active and self.config.has_fault("outage-never-repairs"):
            # Fault: the outage's end is logged, but the publisher never resumes and the events
            # held back during it are still withheld from every peer.
            self.note("publish outage ended (publisher not resumed)")
        elif not active and self.outage_after_seq is not None:
            after = self.outage_after_seq
            self.outage_after_seq = None
            backlog = [
                e
                for e in self.store.events_after({self.node_id: after})
                if e.origin == self.node_id
            ]
            self.note(f"publish outage ended; publishing {len(backlog)} held event(s)")
            if backlog:
                self.spawn(self._publish(backlog, self.publish_targets()))
            await self._changed()

    def set_clock_skew(self, seconds: float) -> None:
        self.hlc.skew_s = seconds
