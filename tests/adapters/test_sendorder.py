"""sendorder.SendOrder, pure: which email a free connection may send next so that each
recipient's emails keep their queue order, without deadlock and without one slow stream holding
up the others."""

from __future__ import annotations

import random

import pytest

from maild.adapters.sendorder import SendOrder


def order_of(*batch: tuple[str, ...]) -> SendOrder:
    order = SendOrder()
    for recipients in batch:
        order.add(recipients)
    return order


def takes(order: SendOrder) -> list[int]:
    taken = []
    while (position := order.take()) is not None:
        taken.append(position)
    return taken


@pytest.mark.parametrize("batch, first_wave", [
    ((("a",), ("b",), ("c",)), [0, 1, 2]),
    ((("a",), ("a",), ("b",)), [0, 2]),
    ((("a", "b"), ("b",), ("c",), ("a",)), [0, 2]),
    ((("A@x",), ("a@X",)), [0]),
    (((), ("a",), ()), [0, 1, 2]),
], ids=["strangers", "same-person-waits", "cc-holds-both", "case-blind", "no-recipient"])
def test_what_may_go_at_once(batch, first_wave):
    assert takes(order_of(*batch)) == first_wave


def test_an_email_goes_once_every_earlier_one_sharing_a_recipient_is_answered():
    order = order_of(("a", "b"), ("b",), ("a",), ("b", "c"))
    assert takes(order) == [0]
    order.done(0)
    assert takes(order) == [1, 2]  # 3 waits for 1 (b)
    order.done(2)
    assert takes(order) == []
    order.done(1)
    assert takes(order) == [3]
    order.done(3)
    assert order.open() == 0


def test_a_given_back_email_is_taken_again_first():
    order = order_of(("a",), ("b",), ("a",))
    assert takes(order) == [0, 1]
    order.give_back(0)  # its connection was refused
    assert order.take() == 0 and order.take() is None


def test_the_untaken_rest_can_be_answered_without_taking_it():
    order = order_of(("a",), ("a",), ("b",), ("a",))
    assert order.take() == 0
    order.done(0)
    assert order.waiting() == [1, 2, 3]
    for position in order.waiting():  # the server is down: all rescheduled untried
        order.done(position)
    assert order.open() == 0 and order.take() is None


def test_two_connections_at_random_never_overtake_and_never_stall():
    rng = random.Random(16)
    people = [f"p{n}" for n in range(6)]
    batch = [tuple(rng.sample(people, rng.choice((1, 1, 1, 3)))) for _ in range(300)]
    order = order_of(*batch)
    answered: list[int] = []
    on_the_wire: list[int] = []
    while len(answered) < len(batch):
        while len(on_the_wire) < 2 and (position := order.take()) is not None:
            for earlier in range(position):  # every earlier email to them is answered
                assert earlier in answered or not set(batch[earlier]) & set(batch[position])
            on_the_wire.append(position)
        assert on_the_wire, "stalled"
        finished = on_the_wire.pop(rng.randrange(len(on_the_wire)))
        order.done(finished)
        answered.append(finished)
