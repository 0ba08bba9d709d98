"""Signing in with a one-time code: send one to a phone or an email (through the notifications
service, which has the SMS and email providers), then trade it for the customer behind it.

What is stored of a code is its keyed hash (``sign_in_codes``, keyed by the contact's keyed
hash): the code itself lives only in this process until it is handed to the notifications
service, and never reaches a log, the outbox or Kafka. Asking for a code never looks at who
the customers are, so the answer and the work are the same for a known contact and a new one.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert

from orders.adapters.orm import sign_in_codes_table
from orders.domain.commands import ProveContact, SendSignInCode, SignIn
from orders.domain.customers import StoredCustomer
from orders.domain.sign_in import (
    Check,
    Contact,
    IssuedCode,
    SignInPolicy,
    check_code,
    code_digest,
    contact_key,
    new_code,
    refusal,
)
from orders.service_layer.customers import customer_with
from orders.service_layer.unit_of_work import OrdersDependencies, UnitOfWork

# Expired codes are kept this long, so that a late try hears "expired" rather than "no code".
KEEP_EXPIRED = timedelta(days=1)


class CodeRefused(Exception):
    """The code presented does not sign in; ``str()`` says why and what to do."""

    def __init__(self, check: Check) -> None:
        super().__init__(refusal(check))
        self.check = check


async def send_sign_in_code(command: SendSignInCode, deps: OrdersDependencies) -> None:
    """Issue a new code for the contact (its previous one is dead from now on) and send it.

    Raises ``CodeNotSent`` when the notifications service did not take it.
    """
    policy, sender, contact = deps.sign_in, deps.code_sender, command.contact
    assert sender is not None, "the API asks for codes only when sign-in is set up"
    code = new_code()
    now = policy.clock()
    issued = IssuedCode.issue(
        code_digest(policy.secret, contact, code), now=now, ttl=policy.code_ttl
    )
    async with deps.uow as uow:
        await uow.session.execute(
            delete(sign_in_codes_table).where(sign_in_codes_table.c.expires_at < now - KEEP_EXPIRED)
        )
        values = {
            "code_digest": issued.digest,
            "issued_at": issued.issued_at,
            "expires_at": issued.expires_at,
            "attempts": 0,
            "used_at": None,
        }
        statement = insert(sign_in_codes_table).values(
            contact_key=contact_key(policy.secret, contact), **values
        )
        await uow.session.execute(
            statement.on_conflict_do_update(
                index_elements=[sign_in_codes_table.c.contact_key], set_=values
            )
        )
        await uow.commit()
    await sender.send(contact, code, int(policy.code_ttl.total_seconds()))


async def sign_in(command: SignIn, deps: OrdersDependencies) -> tuple[StoredCustomer, bool]:
    """The customer whose phone or email the contact is, made if new, for the right code.

    Returns the customer and whether they are new (the command's ``name`` is then theirs).
    Raises ``CodeRefused`` (the try is counted all the same).
    """
    async with deps.uow as uow:
        check = await _judge(uow, deps.sign_in, command.contact, command.code)
        if not check.accepted:
            await uow.commit()
            raise CodeRefused(check)
        customer, created = await customer_with(uow, command.contact, name=command.name)
        await uow.commit()
    return customer, created


async def prove_contact(command: ProveContact, deps: OrdersDependencies) -> None:
    """Use up the code sent to the contact: its holder receives that contact's messages.

    Raises ``CodeRefused`` (the try is counted all the same).
    """
    async with deps.uow as uow:
        check = await _judge(uow, deps.sign_in, command.contact, command.code)
        await uow.commit()
    if not check.accepted:
        raise CodeRefused(check)


async def _judge(uow: UnitOfWork, policy: SignInPolicy, contact: Contact, code: str) -> Check:
    key = contact_key(policy.secret, contact)
    row = (
        (
            await uow.session.execute(
                select(sign_in_codes_table)
                .where(sign_in_codes_table.c.contact_key == key)
                .with_for_update()
            )
        )
        .mappings()
        .first()
    )
    issued = (
        None
        if row is None
        else IssuedCode(
            digest=row["code_digest"],
            issued_at=row["issued_at"],
            expires_at=row["expires_at"],
            attempts=row["attempts"],
            used_at=row["used_at"],
        )
    )
    check = check_code(
        issued,
        code_digest(policy.secret, contact, code),
        now=policy.clock(),
        max_attempts=policy.max_attempts,
    )
    if check.code is not None and check.code != issued:
        await uow.session.execute(
            sign_in_codes_table.update()
            .where(sign_in_codes_table.c.contact_key == key)
            .values(attempts=check.code.attempts, used_at=check.code.used_at)
        )
    return check
