"""The life of an evaluation, as one table of allowed moves (pure; the services apply it).

::

    draft --submit--> submitted --acknowledge--> acknowledged
                          |
                          +--dispute--> disputed --review--> reviewed --acknowledge--> acknowledged

A draft is saved as often as the evaluator likes and submitted once. The
evaluated agent either acknowledges a submitted evaluation or disputes it, once,
with a reason; a reviewer (a supervisor or a second evaluator, never the first)
upholds or changes the score, and the agent then acknowledges the outcome.
Anything else is a :class:`Conflict` that says why.
"""

from __future__ import annotations

from enum import StrEnum

from callvault.errors import Conflict


class State(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    DISPUTED = "disputed"
    REVIEWED = "reviewed"
    ACKNOWLEDGED = "acknowledged"


class Move(StrEnum):
    SAVE = "save"
    SUBMIT = "submit"
    ACKNOWLEDGE = "acknowledge"
    DISPUTE = "dispute"
    REVIEW = "review"


TRANSITIONS: dict[tuple[State, Move], State] = {
    (State.DRAFT, Move.SAVE): State.DRAFT,
    (State.DRAFT, Move.SUBMIT): State.SUBMITTED,
    (State.SUBMITTED, Move.ACKNOWLEDGE): State.ACKNOWLEDGED,
    (State.SUBMITTED, Move.DISPUTE): State.DISPUTED,
    (State.DISPUTED, Move.REVIEW): State.REVIEWED,
    (State.REVIEWED, Move.ACKNOWLEDGE): State.ACKNOWLEDGED,
}

# Why a move is refused in a state, where the generic message would not help.
_WHY: dict[tuple[State, Move], str] = {
    (State.DRAFT, Move.ACKNOWLEDGE): "the evaluation is not submitted yet",
    (State.DRAFT, Move.DISPUTE): "the evaluation is not submitted yet",
    (State.DRAFT, Move.REVIEW): "the evaluation is not disputed",
    (State.SUBMITTED, Move.REVIEW): "the evaluation is not disputed",
    (State.DISPUTED, Move.DISPUTE): "the evaluation is already disputed",
    (State.REVIEWED, Move.DISPUTE): "the evaluation was already disputed and reviewed",
    (State.ACKNOWLEDGED, Move.DISPUTE): "an acknowledged evaluation cannot be disputed",
    (State.DISPUTED, Move.ACKNOWLEDGE): "the dispute is still open",
    (State.REVIEWED, Move.REVIEW): "the dispute was already reviewed",
    (State.ACKNOWLEDGED, Move.ACKNOWLEDGE): "the evaluation is already acknowledged",
}


def advance(state: str, move: Move) -> State:
    """The state after ``move``, or Conflict when the move is not allowed in ``state``."""
    current = State(state)
    following = TRANSITIONS.get((current, move))
    if following is None:
        why = _WHY.get((current, move))
        if why is None:
            why = "a submitted evaluation cannot be changed" if move in (Move.SAVE, Move.SUBMIT) else ""
        raise Conflict(f"cannot {move.value} an evaluation that is {current.value}: {why}".rstrip(": "))
    return following


def is_final(state: str) -> bool:
    """Submitted once: counts in scorecards (its score may still change by review)."""
    return State(state) is not State.DRAFT
