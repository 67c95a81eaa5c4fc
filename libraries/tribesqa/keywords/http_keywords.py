"""Keywords for QA's own HTTP checks with RequestsLibrary: a NIP-98 signer, a node's admin URL."""

from __future__ import annotations

from robot.api import logger
from robot.api.deco import keyword
from robot.api.types import Secret

from tribesqa.clients.keys import AdminKey, KeyLoadError
from tribesqa.clients.requests_auth import Nip98RequestsAuth
from tribesqa.diagnostics import TribesFailure
from tribesqa.keywords.component import Component

SECRET_HINT = "VAR    ${key: Secret}    %{TRIBES_ADMIN_KEY}"


class HttpKeywords(Component):
    """Ad-hoc HTTP against a node's admin API through RequestsLibrary, signed like the library."""

    TAGS = ("http", "node")  # keyword tags in libdoc: this component's domain

    @keyword("Get NIP-98 Auth")
    def get_nip98_auth(self, key: Secret | str | None = None) -> Nip98RequestsAuth:
        """A ``requests`` auth object that NIP-98-signs every request of a RequestsLibrary session.

        Each request is signed when it is sent: ``u`` = its full URL (session base URL + path,
        query included), ``method``, and ``payload`` = sha256 of the body (``json=``/``data=``).
        ``key``: an admin secret (hex or ``nsec1...``) as a Robot Framework ``Secret``, so it
        never reaches output.xml or log.html; without ``key``, the open target's admin key.
        A plain string is refused (it would be logged). The object shows only the public key.

        Example:
        | VAR    ${key: Secret}    %{TRIBES_ADMIN_KEY}
        | ${auth}=    Get NIP-98 Auth    ${key}
        | ${admin_url}=    Get Admin URL Of Node    hetzner-1
        | Create Custom Session    n1    ${admin_url}    ${auth}
        | VAR    &{body}    method=cluster_status    params=&{EMPTY}
        | ${response}=    POST On Session    n1    /api/admin/management    json=${body}
        | Should Be Equal    ${response.json()}[result][self_status]    active
        | Create Session    n2    ${admin_url}
        | POST On Session    n2    /api/admin/management    json=${body}    auth=${auth}

        RequestsLibrary's ``Create Session`` takes ``auth`` as a user/password pair only: give
        the object to ``Create Custom Session`` (every request of the session is signed) or
        as ``auth=`` of one ``... On Session`` call.
        """
        if key is None:
            signer = self.ctx.admin_key()
        elif isinstance(key, Secret):
            signer = self._parse(key)
        else:
            raise TribesFailure(
                "Get NIP-98 Auth: key must be a Secret, not a plain string (a plain string is "
                f"written to the logs); create it with: {SECRET_HINT}"
            )
        auth = Nip98RequestsAuth(signer)
        logger.info(f"NIP-98 signer for RequestsLibrary: pubkey {auth.pubkey}")
        return auth

    @staticmethod
    def _parse(key: Secret) -> AdminKey:
        value = key.value
        if not isinstance(value, str):
            raise TribesFailure(
                f"Get NIP-98 Auth: the Secret must hold a hex or nsec string, "
                f"not {type(value).__name__}"
            )
        try:
            return AdminKey.parse(value)
        except KeyLoadError as error:  # its messages never repeat the value
            raise TribesFailure(
                f"Get NIP-98 Auth: the Secret is not an admin key: {error}"
            ) from None

    @keyword("Get Admin URL Of Node")
    def get_admin_url_of_node(self, node: str) -> str:
        """The base URL of ``node``'s admin API as Legion reports it (for ``Create Session``).

        The management endpoint is ``/api/admin/management`` under it.

        Example:
        | ${admin_url}=    Get Admin URL Of Node    hetzner-1
        | Create Custom Session    n1    ${admin_url}    ${auth}
        """
        record = self.ctx.record(str(node))
        if record.admin_url is None:
            raise TribesFailure(
                f"node {node} has no admin URL yet (Legion status {record.status.value})"
            )
        return record.admin_url.rstrip("/")
