"""Invoice links: only the key that signed them opens them, and only until they expire."""

from __future__ import annotations

import pytest

from shop.links import LinkInvalid, read_invoice_link, sign_invoice_link

KEY = b"k" * 32


def test_a_signed_link_grants_exactly_its_invoice() -> None:
    token = sign_invoice_link(KEY, "A10001", "INV-202600001", now=1000)
    grant = read_invoice_link(KEY, token, now=2000)
    assert (grant.order_number, grant.invoice_number) == ("A10001", "INV-202600001")


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
    lambda t: "eyJvIjoiQTEwMDAyIiwiaSI6IklOVi0yMDI2MDAwMDEiLCJlIjo5OTk5OTk5OTk5fQ." + t.split(".")[1],
    lambda t: t.replace(".", ""), lambda t: "", lambda t: "💥.💥", lambda t: "a" * 10000,
])
def test_tampered_or_malformed_links_are_refused(mangle) -> None:
    token = sign_invoice_link(KEY, "A10001", "INV-202600001", now=1000)
    with pytest.raises(LinkInvalid):
        read_invoice_link(KEY, mangle(token), now=2000)


def test_other_keys_and_expired_links_are_refused() -> None:
    token = sign_invoice_link(KEY, "A10001", "INV-1", now=1000, lifetime=60)
    with pytest.raises(LinkInvalid):
        read_invoice_link(b"other", token, now=1001)
    with pytest.raises(LinkInvalid):
        read_invoice_link(KEY, token, now=1061)
