"""The analysis's plain-data results that the engine, the cache and the worker pool pass
around: importing them loads no parser, so a run served from the cache never loads libcst."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FunctionFacts:
    """Summary of one function, as seen from its callers."""

    returns_cut: bool = False  # every return value is a cut of its input
    inplace_cut: bool = False  # leaves an argument cut in place on every way out
    does_backward: bool = False
    returns_stale: bool = False  # runs a backward through the state it returns
    # For a function returning a tuple of fixed length (`return out, h.detach()`): whether each
    # element is cut on every return path. Empty when no element is.
    returns_cut_elements: tuple[bool, ...] = ()
    # A tuple it returns, the whole return value (path `()`) or one element of it (`(1,)`),
    # of which some elements are cut and the others hand on a graph on every return path:
    # `return h.detach(), c` (the others the caller's own: INPUT), `return out, (h.detach(),
    # c)` (the others the caller's or made by its recurrent call). The path, and which
    # elements are cut.
    returns_partly_cut: tuple[tuple[int, ...], tuple[bool, ...]] | None = None
    # Applied to a tensor, returns it cut: `lambda t: t.detach() if torch.is_tensor(t) else t`
    # as a function, the map function a `tree_map` or `apply_to_tensor` is handed.
    cuts_tensor: bool = False
    # What a call does to gradients, for TBP012 (analysis/gradients.py). Receivers are named as
    # the function names them: `self.optimizer`, or `#0:opt` for its first parameter `opt`.
    # Runs a backward, itself or through a function or method of the run that it calls.
    grad_backward: bool = False
    # Optimizer steps outside the function's own loops: (receiver, whether it is known there
    # to be a torch.optim optimizer).
    grad_steps: tuple[tuple[str, bool], ...] = ()
    # Receivers whose gradients it clears (`zero_grad()`); "" for `p.grad = None`-style clears.
    grad_clears: tuple[str, ...] = ()
    # Calls something the analysis cannot see into that may clear gradients.
    grad_may_clear: bool = False
    # What the calls it cannot see into are given (`#0:model` in `model.custom_reset()` or
    # `hook(model)`): they may clear gradients when the caller passes its model or optimizer.
    grad_touches: tuple[str, ...] = ()
    # For TBP006 at the callers (analysis/losses.py): the parameters a backward of the function
    # runs through, as (position after `self`, name), and whether it hands back a value whose
    # graph its own backward ran through (`loss.backward(); return loss`).
    backprop_params: tuple[tuple[int, str], ...] = ()
    returns_backprop: bool = False
    # Detaches something (`.detach()`, `.detach_()`, `.data`) though what it returns is not
    # known to be cut (`state["h"] = state["h"].detach(); return state`): a caller that rebinds
    # its state to the result cannot tell whether the state was cut.
    detaches: bool = False
    # A helper whose cut a flag parameter decides (`def repackage(h, keep_graph=False): return
    # h if keep_graph else h.detach()`): the parameter's name, its position (after `self`),
    # its default (1 true, 0 false, -1 none or not a constant), and whether the helper returns
    # a cut when the flag is true, and when it is false.
    flag_cut: tuple[str, int, int, bool, bool] | None = None


@dataclass(frozen=True)
class LoaderInfo:
    """How a `torch.utils.data.DataLoader` was built, as far as its call says; `shuffled` is
    None when the loader's order is unknown (`shuffle=args.shuffle`, another library's
    loader)."""

    shuffled: bool | None
    batch_size: str | None = None  # source text of a `batch_size` argument, when one is given
    drop_last: bool | None = None


@dataclass(frozen=True)
class LoaderArgument:
    """An argument that may be a data loader (or, in `optimizer_calls`, a torch optimizer),
    at a call site: one known there, or a parameter of the calling function passed on
    (resolved at that function's call sites)."""

    loader: LoaderInfo | None = None
    optimizer: bool = False  # a `torch.optim` optimizer built there
    forwarded_from: str = ""  # qualified name of the calling function
    forwarded_method: bool = False  # ... which is a method
    position: int = -1  # the parameter's position (self not counted); -1 when keyword-only
    name: str = ""


@dataclass(frozen=True)
class LoaderCall:
    """A call that passes a data loader or an optimizer (or a parameter that may hold one) to
    a function."""

    callee: str  # qualified name: `pkg.train.train`, `pkg.train.Trainer.fit` for `self.fit`
    method: bool  # called on an object: positions start after `self`
    positional: tuple[LoaderArgument | None, ...]
    keywords: tuple[tuple[str, LoaderArgument | None], ...]
    starred: bool  # `*args` or `**kwargs`: which parameter gets what is unknown


class SourceSyntaxError(Exception):
    """The source could not be parsed. Positions are 1-based."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass
class ModuleSummary:
    """Facts about one module's functions that other modules' analysis needs (picklable)."""

    module_name: str
    # Whether phase 2 must look at this file at all: it calls backward, holds a bare detach
    # statement or a class whose step loop may reset its state (TBP015), or it imports one of
    # `imported` names (or calls one of `called_methods`), which may turn out to be a helper
    # of another file that calls backward.
    may_hold_findings: bool = True
    imported: frozenset[str] = frozenset()
    functions: dict[str, FunctionFacts] = field(default_factory=dict)
    inplace_detach_classes: set[str] = field(default_factory=set)
    forward_cuts: dict[str, frozenset[int]] = field(default_factory=dict)
    stateful_classes: dict[str, dict[str, str]] = field(default_factory=dict)
    state_methods: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    forward_resets: dict[str, frozenset[int]] = field(default_factory=dict)
    # Functions that build one of the module's stateful classes: `build_model` -> its class.
    factories: dict[str, str] = field(default_factory=dict)
    # One-step cells whose `forward` fills an optional state left out (`H=None`), for a model
    # of another file that calls one without it (TBP015): class -> (position after `self`,
    # name) of that parameter.
    optional_state_cells: dict[str, tuple[int, str]] = field(default_factory=dict)
    # Calls of functions, with the data loaders they pass (TBP011 follows a loader into the
    # function it is passed to). None when the module was not read for them: it builds no
    # loader.
    loader_calls: tuple[LoaderCall, ...] | None = None
    # The same for calls that pass a torch optimizer (TBP012 follows it into the function
    # that steps it). None when the module was not read for them: it builds no optimizer
    # (as its text shows) and no loader.
    optimizer_calls: tuple[LoaderCall, ...] | None = None
    # The names the module calls as `x.name(`, kept only when it may hold no finding by itself
    # but sums something in a loop: a method of the run (or a function of a module it imports)
    # that back-propagates a loss for its caller makes it worth checking (TBP006).
    called_methods: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RunClasses:
    """The classes of a whole run, by their short names, for calls on objects whose class is
    defined in another file (imported, or merely part of the run), and for calls on objects of
    unknown class, which any class of the run with that method may be the one to answer."""

    # Class -> method -> facts of every summarised method (classes of one name may be several).
    by_class: dict[str, dict[str, tuple[FunctionFacts, ...]]] = field(default_factory=dict)
    # Method -> facts of that method in every class of the run.
    by_method: dict[str, tuple[FunctionFacts, ...]] = field(default_factory=dict)
    # Classes whose `detach()` works in place and returns nothing.
    inplace_detach: frozenset[str] = frozenset()

    @classmethod
    def of(cls, summaries: Iterable[ModuleSummary]) -> RunClasses:
        by_class: dict[str, dict[str, list[FunctionFacts]]] = {}
        by_method: dict[str, list[FunctionFacts]] = {}
        inplace: set[str] = set()
        for summary in summaries:
            prefix = summary.module_name + "."
            for qualified, facts in summary.functions.items():
                class_name, dot, method = qualified.removeprefix(prefix).partition(".")
                if not dot or "." in method:
                    continue  # a module-level function
                by_class.setdefault(class_name, {}).setdefault(method, []).append(facts)
                by_method.setdefault(method, []).append(facts)
            inplace |= {name.rsplit(".", 1)[-1] for name in summary.inplace_detach_classes}
        return cls(
            {c: {m: tuple(f) for m, f in methods.items()} for c, methods in by_class.items()},
            {m: tuple(f) for m, f in by_method.items()},
            frozenset(inplace),
        )


NO_CLASSES = RunClasses()


# Calls a file names without `.name(`: backward calls (the prefilter sees those) and calls of
# an object itself.
NOT_LOSS_HELPERS = frozenset({"backward", "manual_backward", "forward", "__call__"})


@dataclass(frozen=True)
class DottedLossHelpers:
    """The methods and functions of a run that back-propagate a loss they are given, or hand
    back one whose backward they ran (TBP006 at their callers), by the bare names a caller
    writes after a dot: `self.net.train_step(loss, opt)` on an object whose class the caller
    need not import, `utils.fit(model, x)` through the module. What decides that a file with
    no backward of its own is read at all, so narrower than `loss_helper_names` (which picks
    blocks of a file read anyway): a function counts only through a module that defines it,
    and a class's call (`model(x)`) not at all."""

    methods: frozenset[str] = frozenset()
    # Function -> the last parts of the names of the modules that define it (`utils`).
    functions: dict[str, frozenset[str]] = field(default_factory=dict)
    # `.name(` for each of them, for the text of a file or a block; None when there is none.
    pattern: re.Pattern[str] | None = None

    @classmethod
    def of(cls, summaries: Iterable[ModuleSummary]) -> DottedLossHelpers:
        methods: set[str] = set()
        functions: dict[str, set[str]] = {}
        for summary in summaries:
            module = summary.module_name.rsplit(".", 1)[-1]
            for qualified, facts in summary.functions.items():
                if not (facts.backprop_params or facts.returns_backprop):
                    continue
                local = qualified.removeprefix(summary.module_name + ".")
                name = local.rsplit(".", 1)[-1]
                if name in NOT_LOSS_HELPERS or local.count(".") > 1:
                    continue
                if "." in local:
                    methods.add(name)
                else:
                    functions.setdefault(name, set()).add(module)
        names = sorted(methods | set(functions))
        pattern = re.compile(rf"\.(?:{'|'.join(map(re.escape, names))})\s*\(") if names else None
        return cls(frozenset(methods), {f: frozenset(m) for f, m in functions.items()}, pattern)

    def called_by(self, summary: ModuleSummary) -> bool:
        """Whether a module calls one of them by a name phase 1 recorded: a method on any
        object, a function through a module it imports."""
        called = summary.called_methods
        if not called:
            return False
        if not called.isdisjoint(self.methods):
            return True
        return any(
            name in called and not modules.isdisjoint(summary.imported)
            for name, modules in self.functions.items()
        )


@dataclass
class ProjectIndex:
    summaries: dict[str, ModuleSummary] = field(default_factory=dict)
    _backward_helpers: set[str] | None = field(default=None, repr=False, compare=False)
    _helper_heads: set[str] | None = field(default=None, repr=False, compare=False)
    _step_helpers: set[str] | None = field(default=None, repr=False, compare=False)
    _loss_helpers: frozenset[str] | None = field(default=None, repr=False, compare=False)
    _gradient_helpers: set[str] | None = field(default=None, repr=False, compare=False)
    _by_suffix: dict[str, ModuleSummary] | None = field(default=None, repr=False, compare=False)
    _classes: RunClasses | None = field(default=None, repr=False, compare=False)
    _stateful_names: frozenset[str] | None = field(default=None, repr=False, compare=False)
    _cell_names: frozenset[str] | None = field(default=None, repr=False, compare=False)
    _dotted_loss_helpers: DottedLossHelpers | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_summaries(cls, summaries: Iterable[ModuleSummary]) -> ProjectIndex:
        return cls({summary.module_name: summary for summary in summaries})

    def backward_helper_names(self) -> set[str]:
        """Names of helpers that call backward, for the prefilter: bare names of functions
        and methods, and `Class.method` for a class's methods that run a backward, itself or
        through what they call (a file that imports `LossCompute` and calls its objects, or
        imports `Engine` and calls `.backward_step(`, back-propagates through them)."""
        names = self._backward_helpers
        if names is None:
            names = set()
            for summary in self.summaries.values():
                for name, facts in summary.functions.items():
                    if facts.does_backward:
                        names.add(name.rsplit(".", 1)[-1])
                    local = name.removeprefix(summary.module_name + ".")
                    # Not `Tensor.backward`: a `.backward(` call counts by itself.
                    method = local.rsplit(".", 1)[-1]
                    if (
                        local.count(".") == 1
                        and method not in ("backward", "manual_backward")
                        and (facts.does_backward or facts.grad_backward)
                    ):
                        names.add(local)
            self._backward_helpers = names
        return names

    def step_helper_names(self) -> set[str]:
        """The functions (`update`) and methods (`Trainer.optimizer_step`) of the run that
        may step an optimizer, as `backward_helper_names` names them."""
        names = self._step_helpers
        if names is None:
            names = set()
            for summary in self.summaries.values():
                for name, facts in summary.functions.items():
                    local = name.removeprefix(summary.module_name + ".")
                    if facts.grad_steps and local.count(".") <= 1 and "__" not in local:
                        names.add(local)
            self._step_helpers = names
        return names

    def gradient_helper_names(self) -> set[str]:
        """Bare names of the functions and methods of the run that step, clear or may clear
        gradients: a function of a checked file that calls one is kept for TBP012."""
        names = self._gradient_helpers
        if names is None:
            names = {
                name.rsplit(".", 1)[-1]
                for summary in self.summaries.values()
                for name, facts in summary.functions.items()
                if facts.grad_steps or facts.grad_clears or facts.grad_may_clear
            }
            self._gradient_helpers = names
        return names

    def loss_helper_names(self) -> frozenset[str]:
        """Bare names of what hands its caller a loss it back-propagated, or back-propagates
        one it is given (TBP006 at the callers): functions and methods by their name, and
        classes whose `forward` or `__call__` does, by the class's name."""
        names = self._loss_helpers
        if names is None:
            found: set[str] = set()
            for summary in self.summaries.values():
                for name, facts in summary.functions.items():
                    if not (facts.returns_backprop or facts.backprop_params):
                        continue
                    local = name.removeprefix(summary.module_name + ".")
                    owner, _, method = local.rpartition(".")
                    found.add(owner if method in ("forward", "__call__") else method)
            names = self._loss_helpers = frozenset(found - {""})
        return names

    def stateful_names(self) -> frozenset[str]:
        """Bare names of classes whose objects keep state on themselves, and of the functions
        that build them: a file naming one may hold such an object."""
        names = self._stateful_names
        if names is None:
            names = frozenset(
                name.rsplit(".", 1)[-1]
                for summary in self.summaries.values()
                for name in (*summary.stateful_classes, *summary.factories)
            )
            self._stateful_names = names
        return names

    def cell_names(self) -> frozenset[str]:
        """Bare names of the run's one-step cells with an optional state: a file naming one
        may build such a cell and leave its state out."""
        names = self._cell_names
        if names is None:
            names = frozenset(
                name.rsplit(".", 1)[-1]
                for summary in self.summaries.values()
                for name in summary.optional_state_cells
            )
            self._cell_names = names
        return names

    def needs_check(self, summary: ModuleSummary) -> bool:
        """Whether phase 2 can find anything in the module `summary` describes."""
        if summary.may_hold_findings:
            return True
        heads = self._helper_heads
        if heads is None:
            heads = {name.split(".", 1)[0] for name in self.backward_helper_names()}
            self._helper_heads = heads
        return bool(summary.imported & heads) or self.dotted_loss_helpers().called_by(summary)

    def dotted_loss_helpers(self) -> DottedLossHelpers:
        if self._dotted_loss_helpers is None:
            self._dotted_loss_helpers = DottedLossHelpers.of(self.summaries.values())
        return self._dotted_loss_helpers

    def classes(self) -> RunClasses:
        if self._classes is None:
            self._classes = RunClasses.of(self.summaries.values())
        return self._classes

    def lookup(self, qualified: str) -> tuple[ModuleSummary, str] | None:
        """The summary holding `pkg.mod.name`, matching module names by suffix so that
        `from utils import f` finds `scripts/utils.py` run as `scripts.utils`."""
        module, _, name = qualified.rpartition(".")
        if not module:
            return None
        summary = self.module(module)
        return (summary, name) if summary is not None else None

    def module(self, qualified: str) -> ModuleSummary | None:
        """The summary of the module `pkg.mod` (`import utils` finds `scripts/utils.py`)."""
        if self._by_suffix is None:
            self._by_suffix = {}
            for module_name, summary in self.summaries.items():
                parts = module_name.split(".")
                for start in range(len(parts)):
                    self._by_suffix.setdefault(".".join(parts[start:]), summary)
        return self._by_suffix.get(qualified)
