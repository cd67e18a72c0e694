"""Training loops a library runs for the user: fastai's `Learner(data, model).fit(...)`.

The epoch loop, the batches and the validation pass are in the library, not in the linted
file, so the interpreter sees no loop and no backward. What the file does show is enough when
the model keeps its recurrent state on itself (`self.h = h.detach()` in `forward`): a plain
fastai `Learner` runs every epoch's training batches and then the validation batches through
that same object, and nothing in it resets the state unless a callback is given that does
(fastai's `ModelResetter`, the `RNNTrainer` of its `RNNLearner`). Any sign of callbacks, or of
a learner whose arguments cannot be read, leaves the fit unknown and silent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import libcst as cst

from tbptt_lint.analysis.context import FileContext
from tbptt_lint.analysis.names import class_call, dotted_name
from tbptt_lint.analysis.values import RESET
from tbptt_lint.analysis.walk import NESTED_SCOPES, descendants

# `Learner.fit*` methods that run whole epochs, each followed by a validation pass.
FIT_METHODS = frozenset({"fit", "fit_one_cycle", "fit_flat_cos", "fit_sgdr", "fine_tune"})
# Where a learner is handed callbacks: arguments (fastai 1 and 2) and attributes.
CALLBACK_KEYWORDS = frozenset({"callbacks", "callback_fns", "cbs"})
CALLBACK_ATTRIBUTES = CALLBACK_KEYWORDS | {"add_cb", "add_cbs", "added_cbs"}
# fastai 2's `Learner(dls, model, loss_func, opt_func, lr, splitter, cbs, ...)`: from the
# seventh positional argument on, one may be the callbacks.
MAX_PLAIN_POSITIONALS = 6
DEFINES_LEARNER = re.compile(r"\b(?:class|def)[ \t]+Learner\b|\bLearner[ \t]*=[^=]")


@dataclass(frozen=True)
class LibraryFit:
    """A fit call of a learner over a model that keeps state on itself."""

    call: cst.Call  # `learn.fit_one_cycle(20, 3e-3)`
    method: str  # `fit_one_cycle`
    model_class: str  # the model's class, as the file names it
    attributes: tuple[str, ...]  # the attributes its `forward` carries: `h`


def library_fits(module: cst.Module, context: FileContext) -> Iterator[LibraryFit]:
    """The fits of plain fastai learners over a model whose `forward` carries state on
    itself, without a reset, in every scope of the file (notebook cells are one scope)."""
    if not context.stateful_classes or "Learner" not in context.source:
        return
    if DEFINES_LEARNER.search(context.source):
        return  # a `Learner` of the file's own is no fastai learner
    scopes: list[cst.CSTNode] = [module]
    scopes += [n.body for n in descendants([module]) if isinstance(n, cst.FunctionDef)]
    for scope in scopes:
        yield from _fits_in(scope, context)


def _fits_in(scope: cst.CSTNode, context: FileContext) -> Iterator[LibraryFit]:
    """Walks one scope in source order: which names hold which model class or learner at each
    point, and the fits of those learners."""
    models: dict[str, str] = {}  # name -> class of the model it holds
    learners: dict[str, tuple[str, tuple[str, ...]]] = {}  # name -> (class, attributes)
    for node in descendants([scope], stop=NESTED_SCOPES):
        if isinstance(node, cst.Assign):
            _bind(node, context, models, learners)
        elif isinstance(node, cst.Attribute) and node.attr.value in CALLBACK_ATTRIBUTES:
            # `learn.callbacks.append(...)`, `learn.add_cb(...)`: it may reset; unknown.
            learners.pop(dotted_name(node.value) or "", None)
        elif isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
            method = node.func.attr.value
            if method not in FIT_METHODS:
                continue
            receiver = node.func.value
            learner = (
                _stateful_learner(receiver, context, models)
                if isinstance(receiver, cst.Call)
                else learners.pop(dotted_name(receiver) or "", None)
            )
            if learner is not None:
                yield LibraryFit(node, method, *learner)


def _bind(
    node: cst.Assign,
    context: FileContext,
    models: dict[str, str],
    learners: dict[str, tuple[str, tuple[str, ...]]],
) -> None:
    names = [dotted_name(t.target) for t in node.targets]
    learner = _stateful_learner(node.value, context, models)
    built = _stateful_class(node.value, context, models)
    for name in names:
        if name is None:
            continue
        learners.pop(name, None)
        models.pop(name, None)
        if learner is not None:
            learners[name] = learner
        elif built is not None:
            models[name] = built


def _stateful_learner(
    value: cst.BaseExpression, context: FileContext, models: dict[str, str]
) -> tuple[str, tuple[str, ...]] | None:
    """(model class, carried attributes) of `Learner(data, Model(), ...)`: a fastai learner
    without callbacks over a model whose forward carries state on itself."""
    if not isinstance(value, cst.Call) or not _is_fastai_learner(value.func, context):
        return None
    positional = [arg for arg in value.args if arg.keyword is None]
    if any(arg.star for arg in value.args) or len(positional) > MAX_PLAIN_POSITIONALS:
        return None
    if any(arg.keyword.value in CALLBACK_KEYWORDS for arg in value.args if arg.keyword):
        return None
    keyword = next((a for a in value.args if a.keyword and a.keyword.value == "model"), None)
    given = keyword or (positional[1] if len(positional) > 1 else None)
    if given is None:
        return None
    class_name = _stateful_class(given.value, context, models)
    if class_name is None:
        return None
    attributes = context.stateful_classes[class_name]
    carried = tuple(sorted(a for a, how in attributes.items() if how != RESET))
    return (class_name, carried) if carried else None


def _stateful_class(
    value: cst.BaseExpression, context: FileContext, models: dict[str, str]
) -> str | None:
    """The class, among those whose forward keeps state on the object, of `Model(...)`
    (`Model(...).cuda()` too), or of a name this scope bound to one."""
    if isinstance(value, cst.Call):
        qualified = context.qualify(class_call(value).func)
        if qualified is None:
            return None
        for name in (qualified, qualified.rsplit(".", 1)[-1]):
            if name in context.stateful_classes:
                return name
        return None
    return models.get(dotted_name(value) or "")


def _is_fastai_learner(func: cst.BaseExpression, context: FileContext) -> bool:
    """`Learner` imported from fastai, or bound by a `from fastai... import *`."""
    name = dotted_name(func)
    qualified = context.qualify(func)
    if qualified is None or name is None or not name.endswith("Learner"):
        return False
    if qualified != name:
        return qualified.startswith("fastai.") and qualified.endswith(".Learner")
    return name == "Learner" and any(
        module == "fastai" or module.startswith("fastai.")
        for module in context.imports.star_modules
    )
