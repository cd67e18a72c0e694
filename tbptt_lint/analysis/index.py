"""The analysis's plain-data results that the engine, the cache and the worker pool pass
around: importing them loads no parser, so a run served from the cache never loads libcst."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FunctionFacts:
    """Summary of one function, as seen from its callers."""

    returns_cut: bool = False  # every return value is a cut of its input
    inplace_cut: bool = False  # cuts its argument in place and returns nothing useful
    does_backward: bool = False
    returns_stale: bool = False  # runs a backward through the state it returns
    # For a function returning a tuple of fixed length (`return out, h.detach()`): whether each
    # element is cut on every return path. Empty when no element is.
    returns_cut_elements: tuple[bool, ...] = ()
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
    # Whether phase 2 must look at this file at all: it calls backward or holds a bare detach
    # statement, or it imports one of `imported` names, which may turn out to be a helper of
    # another file that calls backward.
    may_hold_findings: bool = True
    imported: frozenset[str] = frozenset()
    functions: dict[str, FunctionFacts] = field(default_factory=dict)
    inplace_detach_classes: set[str] = field(default_factory=set)
    forward_cuts: dict[str, frozenset[int]] = field(default_factory=dict)
    stateful_classes: dict[str, dict[str, str]] = field(default_factory=dict)
    state_methods: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    forward_resets: dict[str, frozenset[int]] = field(default_factory=dict)


@dataclass
class ProjectIndex:
    summaries: dict[str, ModuleSummary] = field(default_factory=dict)
    _backward_helpers: set[str] | None = field(default=None, repr=False, compare=False)
    _helper_heads: set[str] | None = field(default=None, repr=False, compare=False)
    _step_helpers: set[str] | None = field(default=None, repr=False, compare=False)
    _gradient_helpers: set[str] | None = field(default=None, repr=False, compare=False)
    _by_suffix: dict[str, ModuleSummary] | None = field(default=None, repr=False, compare=False)

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

    def needs_check(self, summary: ModuleSummary) -> bool:
        """Whether phase 2 can find anything in the module `summary` describes."""
        if summary.may_hold_findings:
            return True
        heads = self._helper_heads
        if heads is None:
            heads = {name.split(".", 1)[0] for name in self.backward_helper_names()}
            self._helper_heads = heads
        return bool(summary.imported & heads)

    def lookup(self, qualified: str) -> tuple[ModuleSummary, str] | None:
        """The summary holding `pkg.mod.name`, matching module names by suffix so that
        `from utils import f` finds `scripts/utils.py` run as `scripts.utils`."""
        module, _, name = qualified.rpartition(".")
        if not module:
            return None
        if self._by_suffix is None:
            self._by_suffix = {}
            for module_name, summary in self.summaries.items():
                parts = module_name.split(".")
                for start in range(len(parts)):
                    self._by_suffix.setdefault(".".join(parts[start:]), summary)
        summary = self._by_suffix.get(module)
        return (summary, name) if summary is not None else None
