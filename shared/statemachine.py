"""A state machine declared as data: each state and the states it may go to, checked in one place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

S = TypeVar("S", bound=StrEnum)


class InvalidTransition(ValueError):
    """A move the state machine does not allow."""

    def __init__(self, subject: str, current: StrEnum, target: StrEnum) -> None:
        super().__init__(f"{subject} that is {current} cannot become {target}")
        self.current = current
        self.target = target


@dataclass(frozen=True)
class StateMachine(Generic[S]):
    """``transitions`` maps each state to the states it may become; a state with none is final.
    ``subject`` names what moves, for the refusal ("a payment")."""

    subject: str
    states: type[S]
    transitions: Mapping[S, frozenset[S]]

    @property
    def final(self) -> frozenset[S]:
        return frozenset(s for s, targets in self.transitions.items() if not targets)

    def move(self, current: str, target: S) -> S:
        """The new state, or :class:`InvalidTransition` if the machine has no such edge."""
        state = self.states(current)
        if target not in self.transitions[state]:
            raise InvalidTransition(self.subject, state, target)
        return target
