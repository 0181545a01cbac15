"""The client address behind a request: X-Forwarded-For is believed from trusted proxies only."""

from __future__ import annotations

import pytest

from gateway.http.client_address import client_address, trusted_networks

PROXIES = trusted_networks(("10.0.0.0/8", "fd00::/8"))


def test_without_trusted_proxies_the_peer_is_the_client():
    assert client_address("203.0.113.7", ["198.51.100.1"], ()) == "203.0.113.7"


def test_forwarded_for_from_an_untrusted_peer_is_ignored():
    assert client_address("203.0.113.7", ["198.51.100.1, 10.0.0.2"], PROXIES) == "203.0.113.7"


def test_a_trusted_peer_names_the_client_with_the_right_most_entry():
    assert client_address("10.0.0.2", ["198.51.100.1"], PROXIES) == "198.51.100.1"


def test_a_chain_of_trusted_proxies_is_walked_from_the_right():
    # client -> 10.1.1.1 (CDN edge, inside the trusted network) -> 10.0.0.9 -> peer 10.0.0.2
    assert client_address("10.0.0.2", ["198.51.100.1, 10.1.1.1, 10.0.0.9"], PROXIES) == "198.51.100.1"


def test_entries_left_of_the_first_untrusted_one_are_not_believed():
    # The client sent "1.2.3.4, 10.0.0.5" itself; the trusted proxy appended what it saw.
    spoofed = ["1.2.3.4, 10.0.0.5, 198.51.100.1"]
    assert client_address("10.0.0.2", spoofed, PROXIES) == "198.51.100.1"


def test_several_headers_are_one_list_in_their_order():
    headers = ["1.2.3.4", "198.51.100.1, 10.0.0.9", "10.0.0.8"]
    assert client_address("10.0.0.2", headers, PROXIES) == "198.51.100.1"


def test_empty_list_elements_are_skipped():
    assert client_address("10.0.0.2", ["198.51.100.1, ,", ""], PROXIES) == "198.51.100.1"


def test_without_forwarded_for_a_trusted_peer_is_the_client():
    assert client_address("10.0.0.2", [], PROXIES) == "10.0.0.2"


def test_when_every_entry_is_trusted_the_left_most_is_the_client():
    assert client_address("10.0.0.2", ["10.5.5.5, 10.0.0.9"], PROXIES) == "10.5.5.5"


def test_ipv6_addresses_are_trusted_and_returned_canonically():
    assert client_address("fd00::2", ["2001:DB8:0:0::1, fd00::9"], PROXIES) == "2001:db8::1"
    assert client_address("2001:db8::7", ["198.51.100.1"], PROXIES) == "2001:db8::7"
    # An IPv6 peer is never inside an IPv4 network, nor the reverse.
    assert client_address("::1", ["198.51.100.1"], trusted_networks(("127.0.0.0/8",))) == "::1"


def test_ipv4_mapped_ipv6_addresses_are_the_ipv4_address():
    # What a dual-stack socket reports for an IPv4 peer.
    assert client_address("::ffff:10.0.0.2", ["::ffff:198.51.100.1"], PROXIES) == "198.51.100.1"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("198.51.100.1, unknown", "10.0.0.2"),  # the peer passed on garbage: the peer it is
        ("198.51.100.1:4711", "10.0.0.2"),  # ports are not addresses
        ("[2001:db8::1]", "10.0.0.2"),
        ("198.51.100.1, not-an-ip, 10.0.0.9", "10.0.0.9"),  # the last proxy that was believed
        ("not-an-ip, 198.51.100.1", "198.51.100.1"),  # garbage left of the client is never reached
        ("010.0.0.1", "10.0.0.2"),  # leading zeros are ambiguous: refused
    ],
)
def test_the_walk_stops_at_a_malformed_entry(header, expected):
    assert client_address("10.0.0.2", [header], PROXIES) == expected


def test_a_peer_that_is_no_address_is_returned_as_it_is():
    assert client_address(None, ["198.51.100.1"], PROXIES) == "unknown"
    assert client_address("", ["198.51.100.1"], PROXIES) == "unknown"


def test_trusted_networks_are_parsed_once_per_setting():
    assert trusted_networks(("10.0.0.0/8", "fd00::/8")) is PROXIES
    assert [str(network) for network in trusted_networks(("192.0.2.0/24",))] == ["192.0.2.0/24"]
