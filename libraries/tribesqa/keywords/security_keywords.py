"""The admin API's NIP-98 defences, black box: requests a node must refuse, and how it refuses.

Every request asks for ``node.info`` (read-only), is built by ``clients/admin_probe.py`` from the
one signer and sent by its ``send``; every refusal is judged by ``checks/refusal.py`` (the
contract's code at its HTTP status), the sender and judge the contract keywords use too.
"""

from __future__ import annotations

from robot.api import logger
from robot.api.deco import keyword

from tribesqa.checks.refusal import answer_code, refusal_problem
from tribesqa.clients.admin_probe import (
    FLAWS,
    OTHER_BODY,
    PROBE_BODY,
    PROBE_METHOD,
    BadRequest,
    bad_request,
    failing_from,
    header_for,
    host_port,
    send,
    signed,
)
from tribesqa.contract import GraphRunState
from tribesqa.diagnostics import TribesFailure
from tribesqa.keywords.component import Component

PROVIDERS = ("hetzner", "scaleway", "ovh")


class SecurityKeywords(Component):
    """Requests with one NIP-98 flaw each, and the refusal the contract demands."""

    TAGS = ("security", "node")  # keyword tags in libdoc: this component's domain

    # -- which nodes ------------------------------------------------------------------------------
    @keyword
    def nodes_for_admin_api_checks(self, count: int = 2) -> list[str]:
        """``count`` ready nodes to send refused requests to.

        The ready nodes Legion lists, roster nodes first, when there are enough (a real fleet:
        nothing is created). Otherwise, where the target may provision nodes (the simulator,
        sim-as-real), the missing ones are provisioned (an init node first, then join nodes in
        one graph run) and destroyed by ``Close Target``; on a real fleet the keyword fails.

        Example: ``${nodes}=    Nodes For Admin API Checks    2``
        """
        ready = self.ctx.active_names()
        roster = [entry.node for entry in self.ctx.roster]
        names = [n for n in roster if n in ready] + [n for n in ready if n not in roster]
        if len(names) >= count:
            return names[:count]
        target = self.ctx.require_target()
        if not target.provisions_missing_roster_nodes:
            raise TribesFailure(
                f"the admin API checks need {count} ready nodes; Legion reports {len(names)} "
                f"({', '.join(names) or 'none'}) and this target does not provision nodes"
            )
        self.ctx.require_destructive_allowed(
            "Nodes For Admin API Checks", f"provision {count - len(names)} node(s) to probe"
        )
        legion = target.legion
        if not names:
            names.append(self.ctx.provisioned_node(legion.provision_init(PROVIDERS[0])).name)
        planned = [
            self.ctx.provisioned_node(legion.plan_join(PROVIDERS[i % len(PROVIDERS)], 1)[0]).name
            for i in range(len(names), count)
        ]
        if planned:
            run = legion.materialize()
            if run.state is not GraphRunState.SUCCEEDED:
                raise TribesFailure(
                    f"provisioning {', '.join(planned)} for the admin API checks: graph run "
                    f"{run.id} {run.state.value}: {run.error}"
                )
        self.ctx.refresh_records()
        return names + planned

    # -- one bad request ----------------------------------------------------------------------------
    @keyword
    def management_request_should_be_refused(self, node: str, flaw: str) -> str:
        """Send ``node`` a ``node.info`` request with one ``flaw``; it must answer 401 with the
        contract's code for that flaw. Returns the node's refusal message.

        Flaws (expected code): ``no authorization`` (auth-required), ``malformed authorization``
        (invalid-authorization), ``wrong kind``, ``content``, ``bad signature``
        (invalid-auth-event), ``created long ago``, ``created in the future``
        (stale-auth-event), ``another url``, ``arbitrary host`` (the u tag and the Host header
        both name a host that is not the node: auth-url-tag-mismatch), ``another method``
        (auth-method-tag-mismatch), ``another body`` (auth-payload-mismatch), ``key not on the
        allowlist`` (a fresh random key: forbidden-pubkey).

        Example: ``Management Request Should Be Refused    hetzner-1    created long ago``
        """
        wanted = " ".join(str(flaw).lower().split())
        if wanted not in FLAWS:
            raise TribesFailure(
                f"Management Request Should Be Refused: unknown flaw {flaw!r}; "
                f"known: {', '.join(FLAWS)}"
            )
        client = self.ctx.client(node)
        return self._should_refuse(node, bad_request(wanted, self.ctx.admin_key(), client.endpoint))

    @keyword
    def unsigned_management_request_should_be_refused(self, node: str) -> str:
        """A request without NIP-98 authorization is refused with 401 ``auth-required``.

        Example: ``Unsigned Management Request Should Be Refused    hetzner-1``
        """
        return self.management_request_should_be_refused(node, "no authorization")

    # -- replays ------------------------------------------------------------------------------------
    @keyword
    def replayed_management_request_should_be_refused(self, node: str) -> str:
        """Send one validly signed ``node.info`` request twice: the first must be answered 200,
        the identical second one 401 ``replayed-auth-event``.

        Example: ``Replayed Management Request Should Be Refused    hetzner-1``
        """
        client = self.ctx.client(node)
        request = BadRequest(
            "a replayed NIP-98 event",
            "replayed-auth-event",
            PROBE_BODY,
            header_for(signed(self.ctx.admin_key(), client.endpoint)),
        )
        self._should_accept(node, request.headers, request.body, "the original signed request")
        return self._should_refuse(node, request)

    @keyword
    def refused_auth_event_should_not_enter_the_replay_cache(self, node: str) -> None:
        """Only events that pass checks 1-8 enter the replay cache: a signed ``node.info`` event
        sent first with a body it was not signed for is refused (``auth-payload-mismatch``); the
        same event with its own body must then be accepted, not refused as a replay.

        Example: ``Refused Auth Event Should Not Enter The Replay Cache    hetzner-1``
        """
        client = self.ctx.client(node)
        headers = header_for(signed(self.ctx.admin_key(), client.endpoint))
        self._should_refuse(
            node,
            BadRequest(
                "a NIP-98 event whose payload tag is not the sha256 of the body",
                "auth-payload-mismatch",
                OTHER_BODY,
                headers,
            ),
        )
        self._should_accept(
            node,
            headers,
            PROBE_BODY,
            "the same event with the body it was signed for, after a refusal "
            "(a refused event must not enter the replay cache)",
        )

    # -- the URL the event names ----------------------------------------------------------------------
    @keyword
    def request_signed_for_another_node_should_be_refused(
        self, node: str, signed_for: str, spoof_host: bool = False
    ) -> str:
        """Send ``node`` an event signed for ``signed_for``'s management URL: ``node`` must
        refuse it with 401 ``auth-url-tag-mismatch`` (one captured request must not replay on
        every node). With ``spoof_host`` the request also carries ``Host: <signed_for's
        host:port>``: a node binds the u tag to its own admin URL, never to the Host header.

        Example: ``Request Signed For Another Node Should Be Refused    scaleway-1    hetzner-1    spoof_host=${TRUE}``
        """
        if node == signed_for:
            raise TribesFailure(
                f"Request Signed For Another Node Should Be Refused: {node} is the node the "
                "event is signed for; name two different nodes"
            )
        other = self.ctx.client(signed_for).endpoint
        self.ctx.client(node)  # the receiving node's record, noted on the test
        host = host_port(other) if spoof_host else None
        sent = f"a NIP-98 event signed for node {signed_for} ({other})"
        if host is not None:
            sent += f" with Host: {host}"
        request = BadRequest(
            sent,
            "auth-url-tag-mismatch",
            PROBE_BODY,
            header_for(signed(self.ctx.admin_key(), other), host=host),
        )
        return self._should_refuse(node, request)

    # -- check order ----------------------------------------------------------------------------------
    @keyword
    def auth_checks_should_run_in_contract_order(self, node: str) -> None:
        """For each NIP-98 check 3-8 (docs/contract.md), an event failing that check and every
        later one must be refused with that check's code: the first failed check is answered.

        Example: ``Auth Checks Should Run In Contract Order    hetzner-1``
        """
        endpoint = self.ctx.client(node).endpoint
        for check in range(3, 9):
            self._should_refuse(node, failing_from(check, endpoint))

    # -- sending and judging ----------------------------------------------------------------------------
    def _should_refuse(self, node: str, request: BadRequest) -> str:
        client = self.ctx.client(node)
        status, payload = send(client, request.body, request.headers, what=PROBE_METHOD)
        problem = refusal_problem(
            node, PROBE_METHOD, status, payload, request.expected, sent=request.flaw
        )
        if problem:
            raise TribesFailure(problem)
        message = str(payload.get("message") or "")
        logger.info(f"node {node} refused {request.flaw}: 401 {request.expected} {message}")
        return message

    def _should_accept(self, node: str, headers: dict[str, str], body: bytes, sent: str) -> None:
        status, payload = send(self.ctx.client(node), body, headers, what=PROBE_METHOD)
        if status != 200 or answer_code(payload) != "ok":
            detail = payload.get("message") if isinstance(payload, dict) else payload
            raise TribesFailure(
                f"node {node} refused {sent} for {PROBE_METHOD} with HTTP {status} "
                f"{answer_code(payload)}, expected 200 ({str(detail or '')[:160]})"
            )
