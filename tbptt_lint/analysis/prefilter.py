"""Cheap textual tests that prove a file cannot matter before it is parsed.

They must stay sound: every finding needs either a backward call in the file (every rule but
two looks at a loop that back-propagates), a statement ending in `.detach()`/`.detach_()`
(TBP003 and TBP014), a parameter rebound to its own `detach()` (TBP003), or a library that
runs the backward (a Lightning `training_step`; a fitted fastai `Learner`, which matters only
where the file names a class of the run that keeps state on its objects: TBP011). Helpers
from other files that call backward are passed in by name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

from tbptt_lint.analysis.textsearch import AnyOf, word

# `loss.backward(`, `self.manual_backward(`, `torch.autograd.backward(`, `autograd.grad(`;
# not `def backward(` (autograd.Function definitions are everywhere in torch).
# (`(?<!def )\b(?:manual_)?backward\s*\(|autograd\.grad\s*\(`, each part led by its literal.)
BACKWARD_PATTERNS = (
    rf"{word('manual_backward')}(?<!def manual_backward)\s*\(",
    rf"{word('backward')}(?<!def backward)\s*\(",
    r"autograd\.grad\s*\(",
)
BACKWARD_CALL = AnyOf(*BACKWARD_PATTERNS)
GRAD_IMPORT = re.compile(r"from\s+torch\.autograd\s+import[^\n]*\bgrad\b")
BARE_GRAD_CALL = AnyOf(rf"{word('grad')}\s*\(")
# A line that ends in a detach call without assigning its result, or a comprehension of
# detaches standing alone (`[s.detach() for s in states]`).
DETACH_STATEMENT = re.compile(
    r"(?m)^[^=#\n]*\.detach_?\(\)[ \t]*(?:#.*)?$"
    r"|^[ \t]*[\[(][ \t]*\w+\.detach\(\)[ \t]+for\b[^=\n]*[\])][ \t]*(?:#.*)?$"
)
# What a helper worth summarising contains: a detach, a `.data` cut it returns, a backward.
HELPER_PATTERNS = (rf"{word('detach')}_?\b", r"return[^\n]*\.data\b", *BACKWARD_PATTERNS)
# The same, or an optimizer step (a step helper TBP012 follows).
HELPER_OR_STEP_WORDS = AnyOf(*HELPER_PATTERNS, r"\.step\s*\(\s*\)")
HELPER_OR_STEP_TEXT = ("detach", ".data", "backward", "autograd", ".step")


# `^[ \t]*(?:from[ \t]+\S+[ \t]+)?import[ \t]+([^\n#]+)` on each line, found from the word
# `import` (a literal, so fast) and the line's start checked before it.
IMPORT_WORD = re.compile(r"import[ \t]+([^\n#]+)")
BEFORE_IMPORT = re.compile(r"[ \t]*(?:from[ \t]+\S+[ \t]+)?")


def imported_names(source: str) -> set[str]:
    """Names a module imports (`from a import b as c` gives b and c), read from the text."""
    names: set[str] = set()
    position = 0
    while (match := IMPORT_WORD.search(source, position)) is not None:
        line_start = source.rfind("\n", 0, match.start()) + 1
        if BEFORE_IMPORT.fullmatch(source, line_start, match.start()):
            names.update(re.findall(r"[A-Za-z_]\w*", match.group(1)))
            position = match.end()
        else:
            position = match.start() + 1
    return names - {"as"}


def calls_backward(source: str, helper_names: Iterable[str] = ()) -> bool:
    # Substring tests first: each pattern needs its word, and most blocks have neither.
    has_autograd = "autograd" in source
    if ("backward" in source or has_autograd) and BACKWARD_CALL.search(source):
        return True
    if has_autograd and GRAD_IMPORT.search(source) and BARE_GRAD_CALL.search(source):
        return True
    return calls_helper(source, helper_names)


def calls_helper(source: str, helper_names: Iterable[str]) -> bool:
    """A helper from another file only matters where it is imported and called: a function,
    or a class whose objects are called (`Class.__call__`) or one of whose methods is."""
    by_called = _helpers_by_called_name(tuple(helper_names))
    if not by_called:
        return False
    # One scan of the text for the names called in it, not one search per helper: a file of
    # a run with hundreds of helpers (every training function is one) stays linear.
    for called in set(CALLED_NAME.findall(source)) & by_called.keys():
        for imported in by_called[called]:
            if re.search(rf"import[^\n]*\b{re.escape(imported)}\b", source):
                return True
    return False


# `name(`: a name followed directly by its parenthesis, as the helpers are called. (The same
# matches as `(\w+)\(`, which is also tried, and given up, at every letter inside a word.)
CALLED_NAME = re.compile(r"\b(\w+)\(")


@lru_cache(maxsize=64)
def _helpers_by_called_name(helper_names: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """For each name a call would use (the function, the class, or the method), the imported
    names it belongs to."""
    by_called: dict[str, list[str]] = {}
    for name in helper_names:
        imported, _, method = name.partition(".")
        called = imported if method in ("", "__call__", "forward") else method
        by_called.setdefault(called, []).append(imported)
    return {called: tuple(dict.fromkeys(names)) for called, names in by_called.items()}


def may_hold_findings(source: str, helper_names: Iterable[str] = ()) -> bool:
    return (
        calls_backward(source, helper_names)
        or (".detach" in source and bool(DETACH_STATEMENT.search(source)))
        or hands_loss_to_lightning(source)
        or cuts_a_parameter(source)
    )


def loss_helper_calls(source: str, loss_helpers: Iterable[str]) -> re.Pattern[str] | None:
    """Where a block of the file may be handed a loss a helper back-propagated (TBP006):
    calls of the helpers of the run (`fit_batch(`, `.train_step(`) and of the objects the file
    builds from a class whose call does (`model(` after `model = Wrapper(model)`, `self.net(`
    after `self.net = Wrapper(net)`). None when the file calls none of them. One scan of the
    file, so that each block is tested with one search."""
    called = set(CALLED_NAME.findall(source)).intersection(loss_helpers)
    if not called:
        return None
    alternatives = "|".join(sorted(re.escape(name) for name in called))
    construction = rf"(?m)^[ \t]*([\w.]+)[ \t]*=[ \t]*(?:[\w.]+\.)?(?:{alternatives})\("
    built = re.findall(construction, source)
    names = sorted({re.escape(name) for name in [*called, *built]})
    return re.compile(rf"(?<![\w])(?:{'|'.join(names)})\(")


LEARNER_CALL = AnyOf(rf"{word('Learner')}\s*\(")
FIT_CALL = re.compile(r"\.(?:fit\w*|fine_tune)\s*\(")


def fits_with_library(source: str) -> bool:
    """A fastai `Learner` built and fitted: the library runs the loop and the backward, so
    no backward is in the file (TBP011 reads a model that keeps state on itself)."""
    return "Learner" in source and bool(LEARNER_CALL.search(source) and FIT_CALL.search(source))


# `h = h.detach()` on a line of its own (TBP003 when `h` is a parameter nothing reads after).
SELF_CUT = re.compile(r"(?m)^[ \t]+(\w+)[ \t]*=[ \t]*\1\.detach\(\)[ \t]*(?:#[^\n]*)?$")


def cuts_a_parameter(source: str) -> bool:
    """A function that rebinds one of its own parameters to its `detach()`: the header of the
    nearest `def` above names it."""
    if ".detach()" not in source:
        return False
    for match in SELF_CUT.finditer(source):
        start = source.rfind("def ", 0, match.start())
        if start < 0:
            continue
        end = source.find(":\n", start, match.start())
        header = source[start : end if end >= 0 else match.start()]
        if re.search(rf"\b{match.group(1)}\b", header):
            return True
    return False


# `out, self.hidden = self.lstm(x, self.hidden)`: state kept on the object between calls.
# `self.states[i] = layer(x, self.states[i])`: per-layer state kept on a list of the object.
INDEXED_STATE_ON_SELF = r"self\.(\w+)\[[^\]\n]*\]\s*=\s*[\w.\[\]]+\([^\n]*\bself\.\2\["
STATE_ON_SELF = re.compile(
    r"self\.([\w.]+)\s*=\s*[^\n]*\(\s*[^\n]*\bself\.\1\b|" + INDEXED_STATE_ON_SELF
)


def hands_loss_to_lightning(source: str) -> bool:
    """A Lightning `training_step` (the framework runs the backward on the loss it returns)
    beside state kept on `self`: the backward is in no line of the file."""
    return "def training_step" in source and bool(STATE_ON_SELF.search(source))


# `out, self.hidden = self.lstm(x, self.hidden)`: state a module carries between calls.
STATEFUL_FORWARD = re.compile(
    r"self\.(\w+)\s*=\s*self\.[\w.]+\([^\n]*\bself\.\1\b|" + INDEXED_STATE_ON_SELF
)


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


# What code that steps an optimizer or clears gradients contains (TBP012 follows calls into
# it): `.zero_grad(`, `.step(`, `p.grad = None`, `p.grad.zero_()`, `del p.grad`.
GRADIENT_WORDS = AnyOf(
    r"\.zero_grad\s*\(",
    r"\.step\s*\(",
    r"\.grad\s*=(?!=)",
    r"\.grad(?:\.data)?\.\w+_\s*\(",
    rf"{word('del')}\s[^\n]*\.grad\b",
)
# An optimizer step (`self.optimizer.step()`), not `env.step(action)`.
OPTIMIZER_STEP = re.compile(r"\.step\s*\(\s*\)")
# `torch.optim.Adam(`, `optim.SGD(`, or a torch optimizer's class by its own name.
OPTIMIZER_CLASSES = (
    "SGD Adam AdamW Adagrad Adadelta Adamax ASGD LBFGS NAdam RAdam RMSprop Rprop SparseAdam"
)
BUILDS_OPTIMIZER = AnyOf(
    rf"{word('optim')}\.\w+\s*\(", *(rf"{word(name)}\s*\(" for name in OPTIMIZER_CLASSES.split())
)


STEP_CALL = re.compile(r"\.step\s*\(")


def may_step(source: str, step_helpers: Iterable[str] = ()) -> bool:
    """Whether a file may step an optimizer (TBP012 needs a step): `.step(`, or a call of a
    helper of another file that steps one (`update(opt)`, `trainer.optimizer_step()`)."""
    return bool(STEP_CALL.search(source)) or calls_helper(source, step_helpers)


def touches_gradients(block: str) -> bool:
    """A block that steps an optimizer or clears gradients, which TBP012 follows calls into:
    kept when its file is checked."""
    # Every alternative of the pattern holds `.step` or `grad`.
    return (".step" in block or "grad" in block) and bool(GRADIENT_WORDS.search(block))


def gradient_helper(block: str) -> bool:
    """A top-level block other files' TBP012 needs facts of: a function that steps an
    optimizer (`def update(opt): opt.step()`), or a class with a method that does or runs a
    backward (a wrapper optimizer, a loss object whose `__call__` runs `loss.backward()`).
    Functions that run a backward are `worth_summarising` already."""
    header = next((line for line in block.splitlines() if not line.startswith("@")), "")
    if header.startswith("class "):
        return bool(OPTIMIZER_STEP.search(block)) or calls_backward(block)
    return bool(OPTIMIZER_STEP.search(block))


# A method that runs a backward for its callers is short (`backward_step`, a loss object's
# `__call__`); a long one is a test or a framework's core, which no file calls per batch.
BACKWARD_HELPER_LINES = 60


# A method that takes something besides `self` (what to back-propagate, a batch).
TAKES_ARGUMENTS = re.compile(r"[ \t]*(?:async[ \t]+)?def[ \t]+\w+\s*\(\s*self\s*,\s*[\w*]")


def gradient_member(text: str) -> bool:
    """The members of a `gradient_helper` class that phase 1 parses (with what calls them):
    those that step an optimizer, and short ones that run a backward on what they are given
    (a test method, `def test_x(self):`, is no helper)."""
    if OPTIMIZER_STEP.search(text):
        return True
    return (
        text.count("\n") <= BACKWARD_HELPER_LINES
        and bool(TAKES_ARGUMENTS.match(text))
        and calls_backward(text)
    )


DEF_LINE = re.compile(r"(?m)^([ \t]*)(?:async[ \t]+)?def[ \t]+(\w+)")
CALLED = re.compile(r"\b(\w+)\s*\(")
LOOP = re.compile(r"(?m)^[ \t]+(?:async[ \t]+)?(?:for|while)\b")
# A loop statement at column 0 (not "for example" in a docstring).
TOP_LEVEL_LOOP = re.compile(
    r"(?m)^(?:async[ \t]+)?(?:for[ \t][^\n]*\bin\b|while\b)[^\n]*:[ \t]*(?:#[^\n]*)?$"
)
CLOSURE_DEPTH = 3
_BLOCK_ENDS: dict[int, re.Pattern[str]] = {}


def _block_end(depth: int) -> re.Pattern[str]:
    """The start of the next code line indented `depth` characters or less."""
    pattern = _BLOCK_ENDS.get(depth)
    if pattern is None:
        pattern = re.compile(rf"\n(?=[ \t]{{0,{depth}}}[^ \t\r\n#)\]}}])")
        _BLOCK_ENDS[depth] = pattern
    return pattern


class SourceFunctions:
    """The functions and methods of a source text, found from indentation alone (a `def`
    runs until the next code line indented no deeper than it), and the names each calls:
    which helpers TBP012 follows is decided from these without parsing."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.texts: list[tuple[str, str]] = []
        for match in DEF_LINE.finditer(source):
            end = _block_end(len(match.group(1))).search(source, match.end())
            stop = end.start() + 1 if end is not None else len(source)
            self.texts.append((match.group(2), source[match.start() : stop]))
        self._calls: dict[str, set[str]] | None = None

    @property
    def calls(self) -> dict[str, set[str]]:
        """Function name -> the names it calls (functions of the same name are merged)."""
        if self._calls is None:
            self._calls = {}
            for name, text in self.texts:
                self._calls.setdefault(name, set()).update(CALLED.findall(text))
        return self._calls

    def matching(self, wanted: Callable[[str], bool]) -> set[str]:
        return {name for name, text in self.texts if wanted(text)}

    def with_callers(self, names: set[str]) -> set[str]:
        """`names` and the functions that call one of them, a few calls deep."""
        found, frontier = set(names), set(names)
        for _ in range(CLOSURE_DEPTH):
            more = {f for f, called in self.calls.items() if f not in found and called & frontier}
            if not more:
                break
            found |= more
            frontier = more
        return found


def _defining(names: set[str]) -> re.Pattern[str] | None:
    """A pattern for the definitions of `names`; None when there is none."""
    if not names:
        return None
    alternatives = "|".join(sorted(map(re.escape, names)))
    return re.compile(rf"\bdef[ \t]+(?:{alternatives})\s*\(")


def gradient_members(functions: SourceFunctions) -> re.Pattern[str] | None:
    """The members of a `gradient_helper` class that phase 1 parses (see `gradient_member`;
    not what calls them: a method of another file that reaches a step or a backward only
    through another method stays unknown)."""
    return _defining(functions.matching(gradient_member))


def gradient_scope(
    functions: SourceFunctions, is_unit: Callable[[str], bool], helpers: Iterable[str] = ()
) -> frozenset[str]:
    """The functions a checked file must keep and summarise for TBP012: those that step or
    clear, or call (by name, a few calls deep) one that does or a helper of another file
    that does (`helpers`), and that the code that may hold a finding calls."""
    calls = functions.calls
    others = set(helpers)
    seeds = functions.matching(touches_gradients)
    if others:
        seeds |= {name for name, called in calls.items() if called & others}
    gradient = functions.with_callers(seeds)
    if not gradient:
        return frozenset()
    if TOP_LEVEL_LOOP.search(functions.source):
        # A training script at the module's top level.
        reached = set(CALLED.findall(functions.source))
    else:
        # A unit: a function that may hold a finding, or one with a loop that steps or
        # clears, itself or through what it calls (its backward may sit in a helper).
        units = {
            name
            for name, text in functions.texts
            if is_unit(text) or (name in gradient and LOOP.search(text))
        }
        reached = units | {n for name in units for n in calls[name]}
    keep: set[str] = set()
    frontier = reached & gradient
    while frontier:
        keep |= frontier
        frontier = {n for name in frontier for n in calls.get(name, ())} & gradient - keep
    return frozenset(keep)


def defining(names: Iterable[str]) -> re.Pattern[str] | None:
    """A pattern for the definitions of `names`; None when there is none."""
    return _defining(set(names))


def gradient_walk(functions: SourceFunctions) -> frozenset[str]:
    """The functions of a block whose gradient facts phase 1 computes (gradients.py): those
    that step, clear or back-propagate, and those that call them."""
    seeds = functions.matching(lambda text: touches_gradients(text) or calls_backward(text))
    return frozenset(functions.with_callers(seeds))


def builds_optimizer(block: str) -> bool:
    """A block that builds a torch optimizer (an `__init__` that sets `self.optimizer`): the
    code that steps it needs to know what it is."""
    return bool(BUILDS_OPTIMIZER.search(block))


def may_hold_helpers(source: str) -> bool:
    """Whether any block of the file may be worth summarising (a cheap first look)."""
    if "def " not in source:
        return False
    # Each alternative of the first pattern needs one of these words; most files have none.
    words = any(word in source for word in HELPER_OR_STEP_TEXT)
    return bool(
        (words and HELPER_OR_STEP_WORDS.search(source))
        or STATEFUL_FORWARD.search(source)
        or resets_forward_argument(source)
        or (("no_grad" in source or "inference_mode" in source) and "return" in source)
    )


# An attribute detached in place (`self.feed.detach_()`, or the variable of a loop over
# `self.all_states`): another method of its class may have set it to a view (TBP014), so the
# methods that set attributes are worth parsing too.
ATTRIBUTE_DETACHED_IN_PLACE = re.compile(
    r"\b\w+(?:\.\w+)+\.detach_\(\)|(?m:^[ \t]*for[ \t]+\w+[ \t]+in[ \t][^\n]*\bself\.)"
)
ATTRIBUTE_STORE = AnyOf(
    rf"{word('self')}\.\w+(?:[ \t]*,[ \t]*self\.\w+)*[ \t]*=(?!=)",
    r"@property",
    rf"{word('return')}\b[^\n]*\bself\.\w+[ \t]*,",
)


def detaches_attributes_in_place(source: str) -> bool:
    return ".detach_()" in source and bool(ATTRIBUTE_DETACHED_IN_PLACE.search(source))


def stores_attributes(block: str) -> bool:
    """Whether a block may set an attribute, or return (or be a property of) several."""
    return bool(ATTRIBUTE_STORE.search(block))


# `self.rnn = nn.GRU(...)`: what the class's methods call is a torch recurrent module, whose
# signature rules know (TBP015: a call that leaves the state out).
BUILDS_RECURRENT_ATTRIBUTE = AnyOf(
    rf"{word('self')}\.\w+\s*=\s*[\w.]*\b(?:RNN|LSTM|GRU)(?:Cell)?\s*\("
)


def builds_recurrent_attribute(block: str) -> bool:
    return bool(BUILDS_RECURRENT_ATTRIBUTE.search(block))


SHORT_HELPER_LINES = 40
# A copy made without gradients (`@torch.no_grad()`, `with torch.inference_mode():`) and
# returned: no graph flows out, a cut helper too.
NO_GRAD_WORD = re.compile(r"\b(?:no_grad|inference_mode)\b")
# Such a copy helper is shorter still: a no-grad evaluation function is no helper to import.
SHORT_COPY_LINES = 15
CUT_WORD = AnyOf(rf"{word('detach')}_?\b", r"\.data\b")
RETURNS_CUT = AnyOf(rf"{word('return')}\b[^\n]*(?:\bdetach\b|\.data\b)", rf"{word('detach_')}\(")
# An element of a list stored back cut (`states[k] = states[k].detach()`): a helper that cuts
# the list it is given in place.
STORES_CUT_ELEMENT = re.compile(r"(?m)^[ \t]*\w+\[[^\]\n]+\][ \t]*=[^=\n]*\bdetach\(")
# A method that may hand back a cut state: `return loss, h.detach()`, or `h = h.detach()` (or
# `h, c = h.detach(), c.detach()`) and a later `return ..., h`, or an entry or field of a name
# other than `self` rebound to its own cut (`state["h"] = state["h"].detach()`) and a later
# `return state`.
CUT_RETURNED = re.compile(
    r"(?m)\breturn\b[^\n]*\bdetach\b"
    r"|^[ \t]*(\w+)(?:[ \t]*,[ \t]*\w+)*[ \t]*=[^\n]*\bdetach\b[^\n]*\n"
    r"(?s:.*?)^[ \t]*return\b[^\n]*\b\1\b"
    r"|^[ \t]*(?P<base>(?!self\b|cls\b)\w+)(?P<path>(?:\[[^\]\n]*\]|\.\w+)+)[ \t]*=[ \t]*"
    r"(?P=base)(?P=path)\.(?:detach\(\)|data\b)[^\n]*\n"
    r"(?s:.*?)^[ \t]*return\b[^\n]*\b(?P=base)\b"
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
    has_cut = (
        bool(RETURNS_CUT.search(block))
        or ("return" in block and short_cut)
        or (short_cut and bool(STORES_CUT_ELEMENT.search(block)))
        or (
            block.count("\n") <= SHORT_COPY_LINES
            and "return" in block
            and bool(NO_GRAD_WORD.search(block))
        )
    )
    return has_cut or calls_backward(block)


# Something summed in a loop, as TBP006 reads it: `total += loss`, `losses.append(loss)`,
# `total = total + loss` (an `= x +` whose line starts with `x =`).
ADDED_TO = re.compile(r"=[ \t]*(\w+)[ \t]*\+(?!=)")
CALLED_AFTER_DOT = re.compile(r"\.(\w+)\(")


def sums(source: str) -> bool:
    if "+=" in source or ".append(" in source:
        return True
    for match in ADDED_TO.finditer(source):
        line_start = source.rfind("\n", 0, match.start()) + 1
        if source[line_start : match.start()].strip() == match.group(1):
            return True
    return False


def dotted_calls(source: str) -> frozenset[str]:
    """The names a file calls after a dot (`self.net.train_step(`, `utils.fit(`) when it sums
    something: once the run is known, one of them may turn out to back-propagate the loss it
    sums (TBP006). Nothing for a file that sums nothing."""
    if not sums(source):
        return frozenset()
    return frozenset(CALLED_AFTER_DOT.findall(source))
