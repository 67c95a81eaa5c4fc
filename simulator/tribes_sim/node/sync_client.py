"""The sync mesh, client side: long-polling each derived server and pushing own events to peers.

Mixed into ``SimNode``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tribes_sim.node.timestamps import utc_now
from tribes_sim.store import SyncEvent


@dataclass
class SyncServerState:
    """What this node knows about one of its derived sync servers."""

    node_id: str
    url: str
    connected: bool = False
    caught_up: bool = False
    last_sync_completed_at: str | None = None
    last_eose_at: str | None = None
    failing_reason: str | None = None
    high_water_mark: dict[str, int] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "url": self.url,
            "connected": self.connected,
            "last_sync_completed_at": self.last_sync_completed_at,
            "last_eose_at": self.last_eose_at,
            "failing_reason": self.failing_reason,
        }


class SyncClientMixin:
    """SimNode's part: subscriptions to the derived servers and pushes to peers (uses the attributes SimNode sets up)."""

    async def _subscribe(self, state: SyncServerState) -> None:
        assert self.http is not None
        while not self._closed:
            if state.node_id in self.blocked_peers:
                state.connected = False
                state.failing_reason = "partitioned: traffic dropped"
                await asyncio.sleep(self.config.sync_retry_s)
                continue
            vector = dict(self.store.version_vector)
            # The first poll of a subscription answers at once, so "connected" is known quickly.
            wait_s = self.config.sync_long_poll_s if state.last_sync_completed_at else 0
            params = {"vv": json.dumps(vector), "wait": str(wait_s)}
            try:
                async with self.http.get(
                    f"{state.url}/sync/events",
                    params=params,
                    headers={"X-Tribes-Node": self.node_id},
                ) as response:
                    if response.status != 200:
                        raise aiohttp.ClientResponseError(
                            response.request_info,
                            (),
                            status=response.status,
                            message=await response.text(),
                        )
                    body = await response.json()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the peer is down, partitioned or refusing us
                state.connected = False
                state.failing_reason = f"{type(error).__name__}: {error}".strip()[:200]
                await asyncio.sleep(self.config.sync_retry_s)
                continue
            if state.node_id in self.blocked_peers:
                continue
            events = [SyncEvent.from_wire(raw) for raw in body.get("events", [])]
            await self.ingest(events, via=state.node_id)
            now = utc_now()
            state.connected = True
            state.failing_reason = None
            state.last_sync_completed_at = now
            state.high_water_mark = {k: int(v) for k, v in body.get("high_water_mark", {}).items()}
            if body.get("eose"):
                state.last_eose_at = now
                mine = self.store.version_vector
                state.caught_up = all(
                    mine.get(origin, 0) >= seq for origin, seq in state.high_water_mark.items()
                )
                self.maybe_activate()

    def publish_targets(self) -> dict[str, str]:
        """Where this node pushes its own events: every other member not decommissioned.

        Syncing members too, not only the derived servers: nobody subscribes to a syncing
        member, so a push is the only way it learns (say) that its peer turned active again
        after both ran a full resync at the same time; without it both wait for the other.
        """
        # Fault: decommissioned members are still pushed to.
        to_decommissioned = self.config.has_fault("decommissioned-still-receives")
        # partition-leaks-publishes fault: a partition only stops subscriptions, not pushes.
        leaks = self.config.has_fault("partition-leaks-publishes")
        return self._peer_addresses(
            lambda row: (
                (row["status"] != "decommissioned" or to_decommissioned)
                and (leaks or row["node_id"] not in self.blocked_peers)
            )
        )

    async def _publish(self, events: list[SyncEvent], targets: dict[str, str]) -> None:
        if self.http is None or not targets:
            return
        payload = {"events": [event.to_wire() for event in events]}
        await asyncio.gather(
            *(self._publish_one(peer, url, payload) for peer, url in targets.items()),
            return_exceptions=True,
        )

    async def _publish_one(self, peer: str, url: str, payload: dict[str, Any]) -> None:
        assert self.http is not None
        body = await self._post_events(url, payload)
        # The peer answers with its version vector: if it lacks earlier events of ours (it
        # missed a push and does not pull from us), send it what it is missing once.
        theirs = body.get("version_vector") if isinstance(body, dict) else None
        if not isinstance(theirs, dict) or peer in self.blocked_peers:
            return
        vector = dict(self.store.version_vector)
        vector[self.node_id] = int(theirs.get(self.node_id, 0))
        missing = self.store.events_after(vector, withhold_own_after=self.outage_after_seq)
        if missing:
            await self._post_events(url, {"events": [event.to_wire() for event in missing]})

    async def _post_events(self, url: str, payload: dict[str, Any]) -> Any:
        assert self.http is not None
        async with self.http.post(
            f"{url}/sync/publish", json=payload, headers={"X-Tribes-Node": self.node_id}
        ) as response:
            if response.status != 200:
                await response.read()
                return None
            return await response.json()
