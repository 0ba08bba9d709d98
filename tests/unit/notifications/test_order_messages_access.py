"""Who may read an order's in-app messages: the tracking token's holder, the order's customer or
a manager; a wrong token is refused the same whether the order exists or not."""

from __future__ import annotations

import pytest

from contracts.catalogue import is_tracking_token, new_tracking_token, tracking_token_sha256
from notifications.domain.messages import (
    Access,
    OrderOwner,
    Reader,
    order_messages_access,
)

TOKEN = new_tracking_token()
OTHER_TOKEN = new_tracking_token()
ORDER = OrderOwner(customer_id="cust-anna", tracking_token_sha256=tracking_token_sha256(TOKEN))
ANNA = Reader(subject="cust-anna", is_customer=True, is_manager=False)
BRUNO = Reader(subject="cust-bruno", is_customer=True, is_manager=False)
MANAGER = Reader(subject="mgr-1", is_customer=False, is_manager=True)
CHEF = Reader(subject="cust-anna", is_customer=False, is_manager=False)  # right subject, no role


@pytest.mark.parametrize(
    ("order", "token", "reader", "access"),
    [
        (ORDER, None, None, Access.NOTHING_PRESENTED),
        (None, None, None, Access.NOTHING_PRESENTED),
        (ORDER, TOKEN, None, Access.GRANTED),
        (ORDER, OTHER_TOKEN, None, Access.WRONG_TOKEN),
        (ORDER, TOKEN + "x", None, Access.NOT_A_TOKEN),  # garbled: no credential, any order
        (None, "guess", None, Access.NOT_A_TOKEN),
        (ORDER, "guess", MANAGER, Access.GRANTED),
        (None, TOKEN, None, Access.WRONG_TOKEN),  # an unknown order looks like a wrong token
        (OrderOwner("cust-anna", None), TOKEN, None, Access.WRONG_TOKEN),  # remembered before
        (ORDER, None, ANNA, Access.GRANTED),
        (ORDER, None, BRUNO, Access.NOT_THEIRS),
        (None, None, BRUNO, Access.NOT_THEIRS),  # unknown or someone else's: the same answer
        (ORDER, None, CHEF, Access.NOT_THEIRS),
        (ORDER, None, MANAGER, Access.GRANTED),
        (None, None, MANAGER, Access.NO_SUCH_ORDER),
        (ORDER, TOKEN, BRUNO, Access.GRANTED),  # any credential that admits is enough
        (ORDER, OTHER_TOKEN, BRUNO, Access.NOT_THEIRS),
    ],
)
def test_who_may_read_an_orders_messages(
    order: OrderOwner | None, token: str | None, reader: Reader | None, access: Access
) -> None:
    assert order_messages_access(order, tracking_token=token, reader=reader) is access


def test_the_orders_services_tokens_have_the_form_readers_expect() -> None:
    assert all(is_tracking_token(new_tracking_token()) for _ in range(100))
    assert not is_tracking_token(TOKEN[:-1])
    assert not is_tracking_token(TOKEN[:-1] + "=")
