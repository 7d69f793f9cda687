"""Invoice downloads: a signed, expiring link from the assistant opens one customer's invoice."""

from __future__ import annotations

import html

from aiohttp import web

from actions.wording import money
from handoff.appkeys import SETTINGS
from shop.config import link_secret, open_backend
from shop.errors import InvoiceNotFound, OrderNotFound
from shop.links import LinkInvalid, read_invoice_link
from shop.records import InvoiceDetails

routes = web.RouteTableDef()

# Links carry the grant in the path: keep them out of caches, indexes and Referer headers.
PRIVATE_HEADERS = {"Cache-Control": "private, no-store", "X-Robots-Tag": "noindex",
                   "Referrer-Policy": "no-referrer"}
GONE_PAGE = ("<!doctype html><meta charset='utf-8'><title>Link not valid</title>"
             "<p>This invoice link is not valid or has expired. Ask the assistant in the chat "
             "for a new one.</p>")


@routes.get("/invoices/{token}")
async def invoice(request: web.Request) -> web.Response:
    """The invoice the token grants, as a printable HTML page; one 404 for every refusal."""
    secret = request.app[SETTINGS].link_secret
    try:
        grant = read_invoice_link(secret.encode() if secret else link_secret(),
                                  request.match_info["token"])
    except LinkInvalid:
        return _not_found()
    backend = await open_backend()
    try:
        details = await backend.invoice_for(grant.order_number)
    except (OrderNotFound, InvoiceNotFound):
        return _not_found()
    finally:
        await backend.close()
    if details.number != grant.invoice_number:
        return _not_found()
    return web.Response(text=render(details), content_type="text/html", headers=PRIVATE_HEADERS)


def _not_found() -> web.Response:
    return web.Response(text=GONE_PAGE, status=404, content_type="text/html", headers=PRIVATE_HEADERS)


def render(invoice: InvoiceDetails) -> str:
    """A self-contained, printable invoice page; every store value is escaped."""
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(line.sku)}</td><td>{e(line.name)}</td><td>{line.quantity}</td>"
        f"<td>{e(money(line.unit_price_cents, invoice.currency))}</td>"
        f"<td>{e(money(line.quantity * line.unit_price_cents, invoice.currency))}</td></tr>"
        for line in invoice.lines
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Invoice {e(invoice.number)}</title>"
        "<style>body{font-family:sans-serif;max-width:46em;margin:2em auto}"
        "table{width:100%;border-collapse:collapse}td,th{border-bottom:1px solid #ccc;"
        "padding:.4em;text-align:start}</style></head><body>"
        f"<h1>Invoice {e(invoice.number)}</h1>"
        f"<p>Order {e(invoice.order_number)} · issued {invoice.issued_at:%d %B %Y}</p>"
        f"<p dir='auto'>{e(invoice.customer_name)}<br>{e(invoice.customer_email)}<br>"
        f"{e(invoice.billing_address)}</p>"
        "<table><tr><th>SKU</th><th>Item</th><th>Qty</th><th>Unit price</th><th>Amount</th></tr>"
        f"{rows}</table>"
        f"<p><strong>Total: {e(money(invoice.total_cents, invoice.currency))}</strong></p>"
        "</body></html>"
    )
