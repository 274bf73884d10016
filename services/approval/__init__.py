"""The approval service: routes requisitions to approvers under a versioned policy."""

SERVICE = "approval"
