"""Task Runner's proxy options (`--proxyHost`, `--proxyPort`, `--proxyUsername`, `--proxyPassword`), as botocore's
`proxies` setting: every AWS call of the runner goes through the proxy, with basic authentication when a user is
given. The password never shows in a message, a log line or a repr; it may come from the command line, the
`--config` file (`proxy-password`) or the environment (`DATAPIPE_PROXY_PASSWORD`, which tasks never inherit).

`--proxyDomain` and `--proxyWorkstation` are NTLM settings: NTLM is not supported, so they are refused, never ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote

from botocore.exceptions import BotoCoreError

from datapipe.errors import DatapipeError
from datapipe.jsontext import shown

PROXY_PASSWORD_VARIABLE = "DATAPIPE_PROXY_PASSWORD"
# A host name, an IPv4 address or an IPv6 address in brackets: nothing that could end the URL's authority early.
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])$")
NTLM_REFUSAL = (
    "--proxyDomain and --proxyWorkstation are settings of NTLM proxies, which this task runner does not support: it "
    "talks to a proxy with basic authentication (--proxyUsername, --proxyPassword) or none; put an NTLM-capable "
    "forwarder (for example cntlm) between the runner and the proxy and point --proxyHost at it"
)


PROXY_AUTHENTICATION_REQUIRED = 407


class ProxyRefused(BotoCoreError):
    """The proxy answered 407: said as such, where botocore would try to parse the proxy's page as AWS's answer."""

    fmt = (
        "the proxy refused the runner (407 Proxy Authentication Required): check --proxyUsername and the proxy "
        f"password (--proxyPassword, the --config file's proxy-password or {PROXY_PASSWORD_VARIABLE})"
    )


def _refuse_on_407(response_dict: dict[str, object], **_: object) -> None:
    if response_dict.get("status_code") == PROXY_AUTHENTICATION_REQUIRED:
        raise ProxyRefused()


def tell_proxy_refusals(client: object) -> None:
    """Make a client raise ProxyRefused when the proxy refuses it, for every operation."""
    client.meta.events.register("before-parse", _refuse_on_407)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Proxy:
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def url(self, *, with_password: bool = True) -> str:
        """`http://user:password@host:port`, user and password percent-encoded; without the password for logs."""
        credentials = ""
        if self.username is not None:
            credentials = quote(self.username, safe="")
            if self.password is not None and with_password:
                credentials += ":" + quote(self.password, safe="")
            credentials += "@"
        return f"http://{credentials}{self.host}:{self.port}"

    def botocore_proxies(self) -> dict[str, str]:
        """botocore's `proxies`: HTTPS requests tunnel through the proxy (CONNECT), HTTP ones are forwarded by it."""
        return {"http": self.url(), "https": self.url()}


def parse_proxy(
    *,
    host: str | None,
    port: str | None,
    username: str | None,
    password: str | None,
    domain: str | None,
    workstation: str | None,
) -> Proxy | None:
    """The proxy the options describe, or None; a one-line error naming the option otherwise."""
    if domain is not None or workstation is not None:
        raise DatapipeError(NTLM_REFUSAL)
    if host is None:
        given = (("--proxyPort", port), ("--proxyUsername", username), ("a proxy password", password))
        for option, value in given:
            if value is not None:
                raise DatapipeError(f"{option} needs --proxyHost: the proxy's host name or address")
        return None
    if _HOST.match(host) is None:
        raise DatapipeError(f"--proxyHost must be a host name or an IP address, got {shown(host)}")
    if port is None:
        raise DatapipeError("--proxyHost needs --proxyPort: the proxy's port")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise DatapipeError(f"--proxyPort must be a port number from 1 to 65535, got {shown(port)}")
    if password is not None and username is None:
        raise DatapipeError("a proxy password needs --proxyUsername: basic authentication sends both")
    if username is not None and (not username or ":" in username or any(ord(c) < 32 for c in username)):
        raise DatapipeError(
            "--proxyUsername must be non-empty, without ':' or control characters (basic authentication)"
        )
    if password is not None and any(ord(c) < 32 for c in password):
        raise DatapipeError("the proxy password holds a control character, which basic authentication cannot send")
    return Proxy(host=host, port=int(port), username=username, password=password)
