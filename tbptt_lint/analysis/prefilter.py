"""Cheap textual tests that prove a file cannot matter before it is parsed.

They must stay sound: every finding needs either a backward call in the file (every rule but
two looks at a loop that back-propagates) or a statement ending in `.detach()`/`.detach_()`
(TBP003 and TBP014). Helpers from other files that call backward are passed in by name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# `loss.backward(`, `self.manual_backward(`, `torch.autograd.backward(`, `autograd.grad(`;
# not `def backward(` (autograd.Function definitions are everywhere in torch).
BACKWARD_CALL = re.compile(r"(?<!def )\b(?:manual_)?backward\s*\(|autograd\.grad\s*\(")
GRAD_IMPORT = re.compile(r"from\s+torch\.autograd\s+import[^\n]*\bgrad\b")
BARE_GRAD_CALL = re.compile(r"\bgrad\s*\(")
# A line that ends in a detach call without assigning its result, or a comprehension of
# detaches standing alone (`[s.detach() for s in states]`).
DETACH_STATEMENT = re.compile(
    r"(?m)^[^=#\n]*\.detach_?\(\)[ \t]*(?:#.*)?$"
    r"|^[ \t]*[\[(][ \t]*\w+\.detach\(\)[ \t]+for\b[^=\n]*[\])][ \t]*(?:#.*)?$"
)
# What a helper worth summarising contains: a detach, a `.data` cut it returns, a backward.
HELPER_WORDS = re.compile(
    r"\bdetach_?\b|return[^\n]*\.data\b|(?<!def )\b(?:manual_)?backward\s*\(|autograd\.grad\s*\("
)


IMPORTED = re.compile(r"^[ \t]*(?:from[ \t]+\S+[ \t]+)?import[ \t]+([^\n#]+)", re.MULTILINE)


def imported_names(source: str) -> set[str]:
    """Names a module imports (`from a import b as c` gives b and c), read from the text."""
    names: set[str] = set()
    for match in IMPORTED.finditer(source):
        names.update(re.findall(r"[A-Za-z_]\w*", match.group(1)))
    return names - {"as"}


def calls_backward(source: str, helper_names: Iterable[str] = ()) -> bool:
    if BACKWARD_CALL.search(source):
        return True
    if GRAD_IMPORT.search(source) and BARE_GRAD_CALL.search(source):
        return True
    # A helper from another file only matters where it is imported and called.
    return any(
        f"{name}(" in source and re.search(rf"import[^\n]*\b{re.escape(name)}\b", source)
        for name in helper_names
    )


def may_hold_findings(source: str, helper_names: Iterable[str] = ()) -> bool:
    return (
        calls_backward(source, helper_names)
        or bool(DETACH_STATEMENT.search(source))
        or hands_loss_to_lightning(source)
    )


# `out, self.hidden = self.lstm(x, self.hidden)`: state kept on the object between calls.
STATE_ON_SELF = re.compile(r"self\.([\w.]+)\s*=\s*[^\n]*\(\s*[^\n]*\bself\.\1\b")


def hands_loss_to_lightning(source: str) -> bool:
    """A Lightning `training_step` (the framework runs the backward on the loss it returns)
    beside state kept on `self`: the backward is in no line of the file."""
    return "def training_step" in source and bool(STATE_ON_SELF.search(source))


# `out, self.hidden = self.lstm(x, self.hidden)`: state a module carries between calls.
STATEFUL_FORWARD = re.compile(r"self\.(\w+)\s*=\s*self\.[\w.]+\([^\n]*\bself\.\1\b")


FORWARD_SIGNATURE = re.compile(r"def forward\(\s*self\s*,([^)]*)\)")


def resets_forward_argument(source: str) -> bool:
    """A `forward` that assigns to one of its own parameters in its top-level body."""
    for signature in FORWARD_SIGNATURE.finditer(source):
        for param in re.findall(r"\b([A-Za-z_]\w*)\b\s*(?:[:=,]|$)", signature.group(1)):
            # Re-initialised: assigned without reading itself (`x = F.relu(x)` is not).
            reset = rf"\n(?:    ){{2}}{param}\s*=(?!=)(?![^\n]*\b{param}\b)"
            if re.search(reset, source[signature.end() :]):
                return True
    return False


def may_hold_helpers(source: str) -> bool:
    """Whether any block of the file may be worth summarising (a cheap first look)."""
    if "def " not in source:
        return False
    return bool(
        HELPER_WORDS.search(source)
        or STATEFUL_FORWARD.search(source)
        or resets_forward_argument(source)
    )


# An attribute detached in place (`self.feed.detach_()`, or the variable of a loop over
# `self.all_states`): another method of its class may have set it to a view (TBP014), so the
# methods that set attributes are worth parsing too.
ATTRIBUTE_DETACHED_IN_PLACE = re.compile(
    r"\b\w+(?:\.\w+)+\.detach_\(\)|(?m:^[ \t]*for[ \t]+\w+[ \t]+in[ \t][^\n]*\bself\.)"
)
ATTRIBUTE_STORE = re.compile(
    r"\bself\.\w+(?:[ \t]*,[ \t]*self\.\w+)*[ \t]*=(?!=)|@property"
    r"|\breturn\b[^\n]*\bself\.\w+[ \t]*,"
)


def detaches_attributes_in_place(source: str) -> bool:
    return ".detach_()" in source and bool(ATTRIBUTE_DETACHED_IN_PLACE.search(source))


def stores_attributes(block: str) -> bool:
    """Whether a block may set an attribute, or return (or be a property of) several."""
    return bool(ATTRIBUTE_STORE.search(block))


# `self.rnn = nn.GRU(...)`: what the class's methods call is a torch recurrent module, whose
# signature rules know (TBP015: a call that leaves the state out).
BUILDS_RECURRENT_ATTRIBUTE = re.compile(r"\bself\.\w+\s*=\s*[\w.]*\b(?:RNN|LSTM|GRU)(?:Cell)?\s*\(")


def builds_recurrent_attribute(block: str) -> bool:
    return bool(BUILDS_RECURRENT_ATTRIBUTE.search(block))


SHORT_HELPER_LINES = 40
CUT_WORD = re.compile(r"\bdetach_?\b|\.data\b")
RETURNS_CUT = re.compile(r"\breturn\b[^\n]*(?:\bdetach\b|\.data\b)|\bdetach_\(")
# A method that may hand back a cut state: `return loss, h.detach()`, or `h = h.detach()` (or
# `h, c = h.detach(), c.detach()`) and a later `return ..., h`.
CUT_RETURNED = re.compile(
    r"(?m)\breturn\b[^\n]*\bdetach\b"
    r"|^[ \t]*(\w+)(?:[ \t]*,[ \t]*\w+)*[ \t]*=[^\n]*\bdetach\b[^\n]*\n"
    r"(?s:.*?)^[ \t]*return\b[^\n]*\b\1\b"
)


def worth_summarising(block: str) -> bool:
    """Whether a top-level block defines what other blocks or files need to know.

    A function: a cut helper (it returns a detach or `.data`, or detaches in place) or a helper
    that calls backward. A class: one whose objects detach in place, whose `forward` carries
    `self.<attr>` state, cuts, or re-initialises its arguments, or whose methods may return a
    cut state. Methods used only inside their own class are summarised when that class is
    analysed."""
    header = next((line for line in block.splitlines() if not line.startswith("@")), "")
    if header.startswith("class "):
        return bool(
            "def detach(" in block
            or STATEFUL_FORWARD.search(block)
            or resets_forward_argument(block)
            or ("def forward(" in block and "detach" in block)
            or ("detach" in block and bool(CUT_RETURNED.search(block)))
        )
    # Cut helpers are short; a long function that mentions detach is not one to import.
    short_cut = block.count("\n") <= SHORT_HELPER_LINES and bool(CUT_WORD.search(block))
    has_cut = bool(RETURNS_CUT.search(block)) or ("return" in block and short_cut)
    return has_cut or calls_backward(block)
