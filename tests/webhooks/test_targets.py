"""The target policy as a pure function: what an attempt connects to."""

import ipaddress

import pytest

from tally.webhooks.targets import TargetRefused, check_url, is_private, target_of


def test_an_attempt_connects_to_the_checked_address_and_keeps_the_name():
    target = target_of("https://localhost:8443/hooks?x=1", allow_private=True)
    assert str(target.address) in ("127.0.0.1", "::1")
    assert target.host == "localhost"
    assert target.host_header == "localhost:8443"
    assert target.url.startswith(
        ("https://127.0.0.1:8443/hooks?x=1", "https://[::1]:8443/hooks?x=1")
    )


def test_ipv6_literals_are_bracketed():
    target = target_of("https://[2001:4860:4860::8888]/hooks", allow_private=False)
    assert target.url == "https://[2001:4860:4860::8888]/hooks"
    assert target.host_header == "[2001:4860:4860::8888]"


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://8.8.8.8/", True),
        ("https://127.0.0.1/", False),
        ("http://127.0.0.1/", False),
        ("https://[::ffff:10.0.0.1]/", False),
    ],
)
def test_without_the_opt_in(url, allowed):
    if allowed:
        check_url(url, allow_private=False)
        target_of(url, allow_private=False)
    else:
        with pytest.raises(TargetRefused):
            check_url(url, allow_private=False)
        with pytest.raises(TargetRefused):
            target_of(url, allow_private=False)


def test_unresolvable_names_pass_creation_and_fail_attempts():
    check_url("https://no-such-host.invalid/hooks", allow_private=False)
    with pytest.raises(TargetRefused, match="does not resolve"):
        target_of("https://no-such-host.invalid/hooks", allow_private=False)


@pytest.mark.parametrize("host", ["a" * 64 + ".example", "a..example", "\udcff.example"])
def test_names_the_idna_codec_refuses_are_refused_not_errors(host):
    with pytest.raises(TargetRefused, match="not a valid host name"):
        check_url(f"https://{host}/hooks", allow_private=True)
    with pytest.raises(TargetRefused, match="not a valid host name"):
        target_of(f"https://{host}/hooks", allow_private=True)


def test_private_means_not_global():
    assert is_private(ipaddress.ip_address("100.64.0.1"))
    assert is_private(ipaddress.ip_address("224.0.0.1"))
    assert not is_private(ipaddress.ip_address("1.1.1.1"))
