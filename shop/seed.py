"""Fills an empty shop database with a demo store: a few hundred orders in every state.

The first orders are fixed so examples and tests can name them (see DEMO_ORDERS); the rest
are generated from a fixed random seed, with times relative to now so that "shipped
yesterday" and the 30-day refund window stay true whenever the seed runs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from handoff.db import session_factory
from shop.models import (
    Customer,
    Invoice,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    Refund,
    Shipment,
    ShipmentEvent,
)

PRODUCTS = [
    ("JKT-BLU-M", "Blue rain jacket (M)", 8900), ("SNK-WHT-42", "White sneakers (42)", 6450),
    ("TSH-BLK-L", "Black T-shirt (L)", 1900), ("JNS-IND-32", "Indigo jeans (32)", 5900),
    ("BAG-LTH", "Leather backpack", 12900), ("SCF-WOL", "Wool scarf", 2900),
    ("MUG-CER", "Ceramic mug", 1450), ("HDP-BT", "Bluetooth headphones", 7900),
    ("LMP-DSK", "Desk lamp", 3450), ("BTL-STL", "Steel water bottle", 2250),
    ("SOX-3PK", "Socks, 3 pack", 1200), ("CAP-GRN", "Green cap", 1750),
]
CUSTOMERS = [
    ("Anna Kowalski", "anna.kowalski@example.com", "+1 415 555 0101", "en"),
    ("Mark Jones", "mark.jones@example.com", "+44 20 7946 0958", "en"),
    ("Noa Levi", "noa.levi@example.co.il", "+972 54 123 4567", "he"),
    ("Yosef Cohen", "yosef.cohen@example.co.il", "+972 52 765 4321", "he"),
    ("Layla Haddad", "layla.haddad@example.com", "+972 50 222 3344", "ar"),
    ("Omar Nasser", "omar.nasser@example.com", "+971 50 123 9876", "ar"),
    ("Olga Ivanova", "olga.ivanova@example.ru", "+7 916 123 4567", "ru"),
    ("Dmitri Petrov", "d.petrov@example.ru", "+7 903 765 4321", "ru"),
    ("Oksana Shevchenko", "oksana.sh@example.com.ua", "+380 67 123 4567", "uk"),
    ("Taras Bondarenko", "taras.b@example.com.ua", "+380 50 765 4321", "uk"),
    ("Julia Fischer", "julia.fischer@example.de", "+49 30 1234 5678", "en"),
    ("Pierre Martin", "pierre.martin@example.fr", "+33 1 23 45 67 89", "en"),
]
ADDRESSES = {
    "en": ["12 Market St, San Francisco, CA 94103, USA", "221B Baker St, London NW1 6XE, UK"],
    "he": ["Rothschild Blvd 15, Tel Aviv 6688117, Israel", "Herzl St 7, Haifa 3303107, Israel"],
    "ar": ["Salah al-Din St 4, East Jerusalem 9719104", "Sheikh Zayed Rd 100, Dubai, UAE"],
    "ru": ["Tverskaya ul. 7, Moscow 125009, Russia", "Nevsky pr. 28, Saint Petersburg 191186"],
    "uk": ["Khreshchatyk St 22, Kyiv 01001, Ukraine", "Svobody Ave 5, Lviv 79000, Ukraine"],
}
CARRIERS = [
    ("DHL", "https://www.dhl.com/track?id={}"), ("UPS", "https://www.ups.com/track?tracknum={}"),
    ("Israel Post", "https://israelpost.co.il/itemtrace?itemcode={}"),
    ("Nova Poshta", "https://novaposhta.ua/tracking/?cargo_number={}"),
]
CURRENCY = {"en": "USD", "he": "ILS", "ar": "USD", "ru": "EUR", "uk": "EUR"}
METHODS = ["card", "card", "card", "paypal", "apple_pay", "google_pay", "bank_transfer"]


@dataclass(frozen=True)
class DemoOrder:
    """A fixed order the README and the tests name."""

    number: str
    status: OrderStatus
    age: timedelta  # since it was placed
    customer: int  # index in CUSTOMERS


DEMO_ORDERS = [
    DemoOrder("A10001", OrderStatus.SHIPPED, timedelta(days=3), 0),
    DemoOrder("A10002", OrderStatus.PAID, timedelta(hours=20), 0),
    DemoOrder("A10003", OrderStatus.DELIVERED, timedelta(days=9), 0),
    DemoOrder("A10004", OrderStatus.DELIVERED, timedelta(days=70), 0),
    DemoOrder("A10005", OrderStatus.PENDING, timedelta(hours=2), 2),
    DemoOrder("A10006", OrderStatus.PACKED, timedelta(days=1), 2),
    DemoOrder("A10007", OrderStatus.CANCELLED, timedelta(days=12), 4),
    DemoOrder("A10008", OrderStatus.RETURNED, timedelta(days=40), 6),
]
GENERATED_ORDERS = 292


def _random_status(rng: random.Random, age: timedelta) -> OrderStatus:
    """A status plausible for an order of this age."""
    days = age.total_seconds() / 86400
    if days < 0.5:
        return rng.choice([OrderStatus.PENDING, OrderStatus.PAID, OrderStatus.CANCELLED])
    if days < 2:
        return rng.choice([OrderStatus.PAID, OrderStatus.PACKED, OrderStatus.PACKED])
    if days < 7:
        return rng.choice([OrderStatus.SHIPPED, OrderStatus.SHIPPED, OrderStatus.DELIVERED,
                           OrderStatus.CANCELLED])
    return rng.choice([OrderStatus.DELIVERED] * 6 + [OrderStatus.RETURNED, OrderStatus.CANCELLED])


class _Builder:
    """Builds one order with its lines, payment, invoice, shipment and refunds."""

    def __init__(self, rng: random.Random, now: datetime) -> None:
        self.rng, self.now = rng, now
        self.invoices = self.refunds = 0
        self.refunded_lines: list[tuple[Refund, list[OrderLine]]] = []

    def order(self, number: str, status: OrderStatus, age: timedelta, customer: Customer) -> Order:
        rng, placed = self.rng, self.now - age
        picks = rng.sample(PRODUCTS, rng.randint(1, 4))
        lines = [OrderLine(sku=s, name=n, quantity=rng.choice([1, 1, 1, 2, 3]), unit_price_cents=p)
                 for s, n, p in picks]
        total = sum(l.quantity * l.unit_price_cents for l in lines)
        currency = CURRENCY[customer.language]
        order = Order(
            number=number, customer=customer, status=status.value, currency=currency,
            total_cents=total, shipping_address=rng.choice(ADDRESSES[customer.language]),
            placed_at=placed, updated_at=placed, lines=lines,
        )
        method = rng.choice(METHODS)
        last4 = f"{rng.randint(0, 9999):04d}" if method == "card" else None
        paid_at = placed + timedelta(minutes=rng.randint(1, 30))
        was_paid = status is not OrderStatus.PENDING and not (
            status is OrderStatus.CANCELLED and rng.random() < 0.3)
        order.payments = [Payment(method=method, card_last4=last4, amount_cents=total,
                                  currency=currency, status="captured" if was_paid else
                                  rng.choice(["authorized", "failed"]), at=paid_at)]
        if was_paid:
            self.invoices += 1
            order.invoices = [Invoice(number=f"INV-{2026_00000 + self.invoices}", issued_at=paid_at,
                                      total_cents=total, currency=currency)]
        if status in (OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.RETURNED):
            order.shipments = [self.shipment(placed, age, status)]
        if status is OrderStatus.CANCELLED and was_paid:
            order.refunds = [self.refund(lines, total, currency, "order cancelled",
                                         rng.choice(["approved", "paid"]), placed + age / 4)]
        elif status is OrderStatus.RETURNED:
            order.refunds = [self.refund(lines, total, currency, "returned", "paid", placed + age / 2)]
        elif status is OrderStatus.DELIVERED and rng.random() < 0.15 and len(lines) > 1:
            order.refunds = [self.refund(lines[:1], lines[0].quantity * lines[0].unit_price_cents,
                                         currency, rng.choice(["too small", "arrived damaged"]),
                                         rng.choice(["requested", "approved", "paid", "rejected"]),
                                         self.now - age / 3)]
        order.updated_at = max([placed] + [r.updated_at for r in order.refunds])
        return order

    def shipment(self, placed: datetime, age: timedelta, status: OrderStatus) -> Shipment:
        rng = self.rng
        carrier, url = rng.choice(CARRIERS)
        tracking = f"{carrier[:2].upper().replace(' ', '')}{rng.randint(10**9, 10**10 - 1)}"
        shipped = placed + min(age / 2, timedelta(days=2))
        transit = timedelta(days=rng.randint(2, 6))
        delivered = shipped + transit if status is not OrderStatus.SHIPPED else None
        if delivered and delivered > self.now:
            delivered = self.now - timedelta(hours=1)
        steps = [(shipped, "Warehouse", "Picked up by the carrier"),
                 (shipped + timedelta(hours=9), "Sorting centre", "Processed at the sorting centre")]
        if delivered:
            steps += [(delivered - timedelta(hours=5), "Local depot", "Out for delivery"),
                      (delivered, "Destination", "Delivered")]
        elif self.now - shipped > timedelta(days=1):
            steps.append((shipped + timedelta(days=1), "Local depot", "Arrived at the local depot"))
        return Shipment(
            carrier=carrier, tracking_number=tracking, tracking_url=url.format(tracking),
            shipped_at=shipped, eta=(shipped + transit).date(), delivered_at=delivered,
            events=[ShipmentEvent(at=at, location=where, description=what)
                    for at, where, what in steps if at <= self.now],
        )

    def refund(self, lines: list[OrderLine], amount: int, currency: str, reason: str,
               status: str, at: datetime) -> Refund:
        self.refunds += 1
        refund = Refund(number=f"R{60000 + self.refunds}", line_ids=[], amount_cents=amount,
                        currency=currency, reason=reason, status=status, requested_at=at,
                        updated_at=at + timedelta(days=2) if status != "requested" else at)
        self.refunded_lines.append((refund, lines))  # ids are known only after the flush
        return refund


async def seed(engine: AsyncEngine, *, random_seed: int = 4, now: datetime | None = None) -> int:
    """Adds the demo store to an empty (migrated) database; returns how many orders it added."""
    now = now or datetime.now(timezone.utc)
    rng = random.Random(random_seed)
    builder = _Builder(rng, now)
    async with session_factory(engine).begin() as session:
        customers = [Customer(name=n, email=e, phone=p, language=l, created_at=now - timedelta(days=400))
                     for n, e, p, l in CUSTOMERS]
        orders = [builder.order(d.number, d.status, d.age, customers[d.customer]) for d in DEMO_ORDERS]
        for i in range(GENERATED_ORDERS):
            # A live store: a quarter of the orders from the last two days, most older.
            days = rng.choice([rng.uniform(0.05, 2), rng.uniform(2, 7)] + [rng.uniform(7, 120)] * 2)
            age = timedelta(days=days)
            orders.append(builder.order(f"A{10001 + len(DEMO_ORDERS) + i}", _random_status(rng, age),
                                        age, rng.choice(customers)))
        session.add_all(orders)
        await session.flush()
        for refund, lines in builder.refunded_lines:
            refund.line_ids = [line.id for line in lines]
    return len(orders)


async def seed_if_empty(engine: AsyncEngine) -> int:
    """Seeds a fresh demo database; leaves one that has orders alone. Returns orders added."""
    async with session_factory(engine)() as session:
        if await session.scalar(select(func.count()).select_from(Order)):
            return 0
    return await seed(engine)


async def add_delivered_orders(engine: AsyncEngine, email: str, numbers: list[str], *,
                               age: timedelta = timedelta(days=9), random_seed: int = 7) -> None:
    """Delivered orders, inside the refund window and with nothing refunded yet, for the demo
    customer with `email`: a load run gives every refund conversation an order of its own, so
    none is refused as refunded already by an earlier simulated customer."""
    builder = _Builder(random.Random(random_seed), datetime.now(timezone.utc))
    async with session_factory(engine).begin() as session:
        customer = await session.scalar(select(Customer).where(Customer.email == email))
        if customer is None:
            raise ValueError(f"the shop has no customer {email}; is it seeded?")
        # invoice numbers go on from the store's own
        builder.invoices = await session.scalar(select(func.count()).select_from(Invoice)) or 0
        orders = [builder.order(number, OrderStatus.DELIVERED, age, customer)
                  for number in numbers]
        for order in orders:
            order.refunds, order.updated_at = [], order.placed_at
        session.add_all(orders)
