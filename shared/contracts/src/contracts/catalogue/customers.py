"""Restricted: customers' contact details, on the compacted contacts topic, keyed by customer id.

Only the notifications service reads this topic. Erasing a customer publishes a tombstone (a
record with the key and no value), which compaction turns into the absence of the customer.
"""

from __future__ import annotations

from datetime import datetime

from contracts.catalogue.base import CatalogueEvent
from contracts.topics import CUSTOMER_CONTACTS


class CustomerContactUpdated(CatalogueEvent):
    """The current contact details of a customer (the latest record per key wins)."""

    event_type = "com.mariospizzeria.customer.contact_updated.v1"
    topic = CUSTOMER_CONTACTS.name
    aggregate = "customer"

    customer_id: str
    name: str
    phone: str | None = None
    email: str | None = None
    address: str | None = None
    sms_opt_in: bool = True
    email_opt_in: bool = True
    updated_at: datetime
