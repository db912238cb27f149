"""SSRF protection of URL fetching (instances.ssrf), unit and end to end through
sendFileByUrl. Only loopback servers are contacted; refused addresses never are."""

import ipaddress
import socket
from typing import Any

import pytest
from rest_framework.test import APIClient

from instances import ssrf
from instances.models import Instance
from messaging.models import MediaFile, OutgoingMessage, OutgoingStatus
from tests.conftest import method_url
from tests.messaging.media_helpers import (
    FileServer,
    MediaDirs,
    pdf_bytes,
    )

STRICT = ssrf.Policy()


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("100.64.0.1", "shared (CGNAT)"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.10", "private"),  # TEST-NET, not routable
        ("::ffff:7f00:1", "loopback"),  # IPv4-mapped 127.0.0.1
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
    ],
)
def test_non_public_addresses_are_refused(address: str, kind: str) -> None:
    problem = ssrf.address_problem(ipaddress.ip_address(address), STRICT)
    assert problem == f"a {kind} address"  # the category only, never the address


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "1.1.1.1"])
def test_public_addresses_pass(address: str) -> None:
    assert ssrf.address_problem(ipaddress.ip_address(address), STRICT) is None


def test_allow_private_opens_private_ranges_but_not_link_local() -> None:
    policy = ssrf.Policy(allow_private=True)
    for address in ("127.0.0.1", "10.0.0.1", "::1", "100.64.0.1", "fd00::1"):
        assert ssrf.address_problem(ipaddress.ip_address(address), policy) is None
    assert ssrf.address_problem(ipaddress.ip_address("169.254.169.254"), policy) is not None


def test_allowed_networks_open_exactly_those_addresses() -> None:
    policy = ssrf.Policy.build(allow_private=False, allowed_networks=["10.1.0.0/16", " 169.254.169.254/32 ", ""])
    assert ssrf.address_problem(ipaddress.ip_address("10.1.2.3"), policy) is None
    assert ssrf.address_problem(ipaddress.ip_address("169.254.169.254"), policy) is None
    assert ssrf.address_problem(ipaddress.ip_address("10.2.0.1"), policy) is not None
    assert ssrf.address_problem(ipaddress.ip_address("::ffff:10.1.0.1"), policy) is None


def test_a_malformed_network_fails_loudly() -> None:
    with pytest.raises(ValueError):
        ssrf.Policy.build(allow_private=False, allowed_networks=["10.0.0.0/33"])


def test_a_name_resolving_to_loopback_is_refused() -> None:
    with pytest.raises(ssrf.Refused) as refused:
        ssrf.resolve("localhost", 80, STRICT)
    assert str(refused.value) == "a loopback address"  # not what localhost resolved to


def test_a_name_with_any_refused_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port)),
        ]

    monkeypatch.setattr(ssrf.socket, "getaddrinfo", fake)
    with pytest.raises(ssrf.Refused) as refused:
        ssrf.resolve("mixed.test", 80, STRICT)
    assert str(refused.value) == "a private address"
    assert "10.0.0.7" not in str(refused.value)


def test_the_vetted_address_is_the_one_connected_to(monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: the name is resolved once; a later answer cannot redirect us."""
    server = FileServer("127.0.0.2").start()
    try:
        server.add("/f", b"payload")
        answers = iter(["127.0.0.2", "127.0.0.1"])
        calls: list[str] = []
        real = socket.getaddrinfo

        def rebinding(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
            calls.append(host)
            if host != "rebind.test":
                return real(host, port, *args, **kwargs)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

        monkeypatch.setattr(ssrf.socket, "getaddrinfo", rebinding)
        policy = ssrf.Policy.build(allow_private=False, allowed_networks=["127.0.0.2/32"])
        with ssrf.open_url("GET", f"http://rebind.test:{server.port}/f", policy=policy, timeout=5) as response:
            assert response.read() == b"payload"
        assert calls.count("rebind.test") == 1
        assert server.hosts == [f"rebind.test:{server.port}"]
    finally:
        server.stop()


def test_only_http_and_https_are_fetched() -> None:
    for url in ("ftp://example.test/x", "file:///etc/passwd", "gopher://x.test/"):
        with pytest.raises(ssrf.Refused, match="only http and https"), ssrf.open_url("GET", url, policy=STRICT, timeout=1):
            pass


def test_redirects_are_limited(file_server: FileServer) -> None:
    for n in range(7):
        file_server.redirect(f"/r{n}", f"/r{n + 1}")
    file_server.add("/r7", b"end")
    policy = ssrf.Policy(allow_private=True)
    too_many = pytest.raises(ssrf.Refused, match=r"too many redirects \(more than 5\)")
    with too_many, ssrf.open_url("GET", file_server.url("/r0"), policy=policy, timeout=5):
        pass
    assert len(file_server.hits) == 6
    with ssrf.open_url("GET", file_server.url("/r2"), policy=policy, timeout=5) as response:
        assert response.read() == b"end"


def test_proxy_environment_is_ignored(file_server: FileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://10.255.255.1:3128")
    monkeypatch.setenv("ALL_PROXY", "http://10.255.255.1:3128")
    file_server.add("/p", b"direct")
    with ssrf.open_url("GET", file_server.url("/p"), policy=ssrf.Policy(allow_private=True), timeout=5) as response:
        assert response.read() == b"direct"


# --- End to end through sendFileByUrl ---------------------------------------------------


def send_and_drain(client: APIClient, instance: Instance, url: str, capture: Any) -> OutgoingMessage:
    with capture(execute=True):
        r = client.post(method_url(instance, "sendFileByUrl"), {"chatId": "79001112233@c.us", "urlFile": url, "fileName": "f.pdf"}, format="json")
    assert r.status_code == 200, r.content  # accepted and queued: the check is the worker's
    return OutgoingMessage.objects.get(id_message=r.json()["idMessage"])


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("127.0.0.1", "a loopback address"),
        ("10.0.0.1", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("[::1]", "a loopback address"),
        ("localhost", "a loopback address"),
        ("0.0.0.0", "a unspecified address"),
        ("100.64.1.1", "a shared (CGNAT) address"),
        ("2130706433", "a loopback address"),
    ],
)
def test_refused_addresses_fail_the_message(
    api_client: APIClient, authorized_instance: Instance, recipient: str, media_dirs: MediaDirs,
    file_server: FileServer, django_capture_on_commit_callbacks: Any, host: str, problem: str,
) -> None:
    file_server.add("/secret.pdf", pdf_bytes())
    url = f"http://{host}:{file_server.port}/secret.pdf"
    message = send_and_drain(api_client, authorized_instance, url, django_capture_on_commit_callbacks)
    assert message.status == OutgoingStatus.FAILED
    assert message.description.startswith(f"File from url was refused: {problem}")
    assert message.description.endswith(f"Url: {url}")
    assert file_server.hits == []
    assert not MediaFile.objects.exists()


def test_a_redirect_to_loopback_is_refused(
    api_client: APIClient, authorized_instance: Instance, recipient: str, media_dirs: MediaDirs,
    file_server: FileServer, settings: Any, django_capture_on_commit_callbacks: Any,
) -> None:
    settings.MEDIA_FETCH_ALLOWED_NETWORKS = ["127.0.0.2/32"]
    allowed = FileServer("127.0.0.2").start()
    try:
        file_server.add("/secret.pdf", pdf_bytes())
        url = allowed.redirect("/go", file_server.url("/secret.pdf"))
        message = send_and_drain(api_client, authorized_instance, url, django_capture_on_commit_callbacks)
    finally:
        allowed.stop()
    assert allowed.hits == ["/go"]
    assert file_server.hits == []
    assert message.status == OutgoingStatus.FAILED
    assert message.description.startswith("File from url was refused: a loopback address")


def test_an_allowed_network_is_fetched(
    api_client: APIClient, authorized_instance: Instance, recipient: str, media_dirs: MediaDirs,
    settings: Any, django_capture_on_commit_callbacks: Any,
) -> None:
    settings.MEDIA_FETCH_ALLOWED_NETWORKS = ["127.0.0.2/32"]
    allowed = FileServer("127.0.0.2").start()
    try:
        allowed.add("/ok.pdf", pdf_bytes())
        url = allowed.redirect("/go", "/ok.pdf")
        message = send_and_drain(api_client, authorized_instance, url, django_capture_on_commit_callbacks)
    finally:
        allowed.stop()
    assert message.status == OutgoingStatus.SENT, message.description
    assert allowed.hits == ["/go", "/ok.pdf"]


def test_allow_private_fetches_from_loopback(
    api_client: APIClient, authorized_instance: Instance, recipient: str, media_dirs: MediaDirs,
    file_server: FileServer, settings: Any, django_capture_on_commit_callbacks: Any,
) -> None:
    settings.MEDIA_FETCH_ALLOW_PRIVATE = True
    url = file_server.add("/ok.pdf", pdf_bytes())
    message = send_and_drain(api_client, authorized_instance, url, django_capture_on_commit_callbacks)
    assert message.status == OutgoingStatus.SENT, message.description
    assert file_server.hits == ["/ok.pdf"]


def test_refusals_never_echo_what_a_name_resolved_to(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.20.30.40", port))]

    monkeypatch.setattr(ssrf.socket, "getaddrinfo", fake)
    with pytest.raises(ssrf.Refused) as refused:
        ssrf.resolve("intranet.test", 80, STRICT)
    assert "10.20.30.40" not in str(refused.value)
    assert str(refused.value) == "a private address"


def test_a_slow_dns_lookup_is_given_up_after_its_own_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    release = threading.Event()

    def slow(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        release.wait(30)  # a resolver that hangs until the test ends
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]

    monkeypatch.setattr(ssrf.socket, "getaddrinfo", slow)
    policy = ssrf.Policy(dns_timeout=0.2)
    try:
        with pytest.raises(ssrf.Refused, match="did not resolve in time"):
            ssrf.resolve("slow.test", 80, policy)
        assert not release.is_set()  # refused while the resolver was still hanging
    finally:
        release.set()


def test_an_unresolvable_name_says_so_without_resolver_details(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        raise socket.gaierror(-2, "Name or service not known (resolver 10.0.0.53)")

    monkeypatch.setattr(ssrf.socket, "getaddrinfo", failing)
    with pytest.raises(ssrf.Refused) as refused:
        ssrf.resolve("nowhere.test", 80, STRICT)
    assert str(refused.value) == "the host name does not resolve"
