"""Cheap textual tests that prove a file cannot matter before it is parsed.

They must stay sound: every rule's finding needs one of these words in the file.
"""

from __future__ import annotations

# Every rule looks at a loop holding a backward, or at a detach/.data/zero_grad call.
FINDING_WORDS = ("backward", "detach", ".data", "zero_grad", "autograd")
# Helpers worth summarising for other files cut state or call backward.
HELPER_WORDS = ("detach", ".data", "backward", "autograd")


def may_hold_findings(source: str) -> bool:
    return any(word in source for word in FINDING_WORDS)


def may_hold_helpers(source: str) -> bool:
    return "def " in source and any(word in source for word in HELPER_WORDS)
