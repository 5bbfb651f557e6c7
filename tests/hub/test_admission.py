"""Counting sockets per participant, display link and address, within the process's budget."""

from __future__ import annotations

import resource

import pytest

from classroom.hub.admission import (
    RESERVED_DESCRIPTORS,
    SERVER_FULL,
    TOO_MANY_FOR_ONE,
    Admission,
    Refused,
    SocketLimits,
    Ticket,
    socket_budget,
)


def admitted(outcome: Ticket | Refused) -> Ticket:
    assert isinstance(outcome, Ticket), outcome
    return outcome


def test_a_participant_gets_its_limit_and_no_more_while_others_still_connect() -> None:
    admission = Admission(SocketLimits(per_participant=2, per_address=0), budget=100)
    tickets = [admitted(admission.enter(address="a", participant=(1, 7))) for _ in range(2)]
    refused = admission.enter(address="a", participant=(1, 7))
    assert refused == Refused(429, TOO_MANY_FOR_ONE)
    assert admission.open == 2 and admission.refused == 1
    admitted(admission.enter(address="a", participant=(1, 8)))  # another phone
    admitted(admission.enter(address="a", participant=(2, 7)))  # the same id in another class
    admitted(admission.enter(address="a"))  # the instructor
    admission.leave(tickets[0])
    admitted(admission.enter(address="a", participant=(1, 7)))


def test_a_refused_socket_counts_under_no_key() -> None:
    admission = Admission(SocketLimits(per_participant=1, per_address=2), budget=100)
    admitted(admission.enter(address="a", participant=1))
    assert isinstance(admission.enter(address="a", participant=1), Refused)
    assert admission.count(("address", "a")) == 1 and admission.open == 1
    admitted(admission.enter(address="a", participant=2))
    assert isinstance(admission.enter(address="a", participant=3), Refused)  # the address's 3rd


def test_display_links_and_addresses_have_their_own_limits() -> None:
    admission = Admission(SocketLimits(per_display=3, per_address=4), budget=100)
    for _ in range(3):
        admitted(admission.enter(address="wall", display="link-1"))
    assert isinstance(admission.enter(address="wall", display="link-1"), Refused)
    admitted(admission.enter(address="wall", display="link-2"))
    assert isinstance(admission.enter(address="wall", display="link-3"), Refused)
    admitted(admission.enter(address="elsewhere", display="link-3"))


def test_zero_is_no_limit() -> None:
    admission = Admission(
        SocketLimits(per_participant=0, per_display=0, per_address=0), budget=10_000
    )
    for _ in range(2_000):
        admitted(admission.enter(address="a", participant=1))


def test_past_the_budget_every_socket_is_refused_with_503() -> None:
    admission = Admission(SocketLimits(per_address=0), budget=3)
    tickets = [admitted(admission.enter(address=str(n))) for n in range(3)]
    assert admission.enter(address="new") == Refused(503, SERVER_FULL)
    admission.leave(tickets[1])
    admitted(admission.enter(address="new"))


def test_leaving_forgets_keys_that_reach_zero() -> None:
    admission = Admission(SocketLimits(), budget=100)
    ticket = admitted(admission.enter(address="a", participant=1, display=None))
    admission.leave(ticket)
    assert admission.open == 0 and admission.count(("address", "a")) == 0
    assert not admission._counts


@pytest.mark.parametrize(
    ("descriptors", "budget"),
    [
        (1024, 1024 - 102),  # a tenth is kept back
        (256, 256 - RESERVED_DESCRIPTORS),
        (20_000, 18_000),
        (10, 1),
    ],
)
def test_the_socket_budget_keeps_descriptors_back(descriptors: int, budget: int) -> None:
    assert socket_budget(descriptors) == budget


def test_the_budget_comes_from_the_soft_limit_by_default() -> None:
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert Admission(SocketLimits()).budget == socket_budget(soft)
