"""The value passed from one policy stage to the next: an allocation and its conditions.

Each stage that acts on a proposal adds one ``Condition``; none overwrites another, so a
decision that was sized, stabilised and then capacity-limited says all three. The proposal's
``reason`` is the last acting stage's (the decision's primary reason) and its ``message`` the
summary of every condition. Purely computational.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.domain import Allocation, Condition, ConditionType, Reason, summary


@dataclass(frozen=True, slots=True)
class Proposal:
    """A desired allocation and the conditions that led to it."""

    allocation: Allocation
    reason: Reason
    conditions: tuple[Condition, ...] = ()

    @property
    def message(self) -> str:
        return summary(self.conditions)

    @classmethod
    def first(
        cls,
        allocation: Allocation,
        reason: Reason,
        type_: ConditionType,
        message: str,
        *,
        status: bool = True,
    ) -> Proposal:
        """The proposal of the first stage, with its one condition."""
        return cls(allocation, reason, (Condition(type_, status, reason, message),))

    def then(
        self,
        allocation: Allocation,
        reason: Reason,
        type_: ConditionType,
        message: str,
        *,
        status: bool = True,
        primary: Reason | None = None,
    ) -> Proposal:
        """The proposal after a later stage acted: its allocation, one condition more, and
        the condition's reason as the primary one unless ``primary`` names another."""
        condition = Condition(type_, status, reason, message)
        return Proposal(allocation, primary or reason, (*self.conditions, condition))
