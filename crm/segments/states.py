"""The closed lists of segments: kinds of membership, lifecycle states and sub-states, RFM cells, changes."""

from __future__ import annotations

from enum import StrEnum


class SegmentKind(StrEnum):
    """A dimension a customer is a member of; `segment_memberships.kind`."""

    LIFECYCLE = "lifecycle"  # the state: lead, newbie, repeat, rejected, retail
    LIFECYCLE_SUBSTATE = "lifecycle_substate"  # e.g. pre_churn, approved_not_taken
    RFM = "rfm"  # the three scores as one value, `r5f3m2`
    RFM_CELL = "rfm_cell"  # champions, loyal, at_risk, ...
    REACHABLE = "reachable"  # one membership per channel the customer may be contacted on
    PREFERRED_CHANNEL = "preferred_channel"  # the channel they react to most
    RETAIL = "retail"  # active_base: a purchase in the retail window
    INTERSECTION = "intersection"  # loans/pawn and retail in the same window
    TECHNICAL = "technical"  # internal accounts, never contacted


class LifecycleState(StrEnum):
    """Lifecycle state of a customer (DOMAIN.md, lender case, plus the retail-only customers)."""

    LEAD = "lead"
    NEWBIE = "newbie"
    REPEAT = "repeat"
    REJECTED = "rejected"
    RETAIL = "retail"
    PURGED = "purged"  # archived out of the active base by a campaign purge (not restored)


class LifecycleSubstate(StrEnum):
    """Sub-state inside a lifecycle state."""

    # lead
    NEVER_AUTHORISED = "never_authorised"  # registered, never logged in
    NEVER_APPLIED = "never_applied"  # logged in, never applied
    # newbie
    APPLYING = "applying"  # an application started or waiting for approval
    APPROVED_NOT_TAKEN = "approved_not_taken"  # approved, inside the approval's validity
    ABANDONED_APPLICATION = "abandoned_application"  # started, did not finish
    APPROVAL_EXPIRED = "approval_expired"  # approved, not taken in time
    FIRST_LOAN = "first_loan"  # holds (or held) a first loan, none repaid yet
    # repeat
    ACTIVE = "active"  # an open loan
    PRE_CHURN = "pre_churn"  # repaid, not come back yet, inside the pre-churn window
    CHURN = "churn"  # last repayment over the pre-churn window ago
    DEEP_CHURN = "deep_churn"  # no loan for the deep-churn window and no reaction to messages
    # retail (no lending history)
    ACTIVE_BASE = "active_base"  # a purchase inside the retail window
    LAPSED = "lapsed"  # purchases, none inside the retail window


SUBSTATES_OF: dict[LifecycleState, tuple[LifecycleSubstate, ...]] = {
    LifecycleState.LEAD: (LifecycleSubstate.NEVER_AUTHORISED, LifecycleSubstate.NEVER_APPLIED),
    LifecycleState.NEWBIE: (
        LifecycleSubstate.APPLYING,
        LifecycleSubstate.APPROVED_NOT_TAKEN,
        LifecycleSubstate.ABANDONED_APPLICATION,
        LifecycleSubstate.APPROVAL_EXPIRED,
        LifecycleSubstate.FIRST_LOAN,
    ),
    LifecycleState.REPEAT: (
        LifecycleSubstate.ACTIVE,
        LifecycleSubstate.PRE_CHURN,
        LifecycleSubstate.CHURN,
        LifecycleSubstate.DEEP_CHURN,
    ),
    LifecycleState.REJECTED: (),
    LifecycleState.PURGED: (),
    LifecycleState.RETAIL: (LifecycleSubstate.ACTIVE_BASE, LifecycleSubstate.LAPSED),
}


class SegmentChange(StrEnum):
    """What a `segment_events` row records."""

    ENTERED = "entered"
    LEFT = "left"


class RunMode(StrEnum):
    """How a segments run computed its day (`segment_runs.mode`)."""

    FULL = "full"  # every known customer, from the warehouse as of the day
    INCREMENTAL = "incremental"  # customers whose inputs changed or whose dates crossed a threshold
    RECHECK = "recheck"  # a past day recomputed and compared with the stored night; nothing written
    REWRITE = "rewrite"  # the stored history from the day on replaced by a full recompute
