"""What the interpreter knows about a file beyond one unit: imports, module objects, helpers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import libcst as cst

from tbptt_lint.analysis.index import NO_CLASSES, FunctionFacts, ProjectIndex, RunClasses
from tbptt_lint.analysis.names import ImportMap, dotted_name
from tbptt_lint.analysis.views import ClassViews, class_views

if TYPE_CHECKING:
    from tbptt_lint.analysis.interpreter import UnitInterpreter

# Passes over a module's (or a recursive helper's) functions until their facts settle.
SUMMARY_PASSES = 3


@dataclass(frozen=True)
class Interpretation:
    """How a function body is interpreted and summarised, handed down through the file's
    context. The analysis recurses at run time (a summary interprets a function; the
    interpreter summarises the nested helpers it meets, and interprets the methods whose
    effects on attributes it needs), but its modules do not import each other in a circle:
    api.py, which imports them all, builds this."""

    interpreter: type[UnitInterpreter]
    summarise_function: Callable[[cst.FunctionDef, FileContext, str | None], FunctionFacts]


RECURRENT_MODULES = frozenset(
    {
        "torch.nn.RNN",
        "torch.nn.LSTM",
        "torch.nn.GRU",
        "torch.nn.RNNCell",
        "torch.nn.LSTMCell",
        "torch.nn.GRUCell",
        "torch.nn.modules.rnn.RNN",
        "torch.nn.modules.rnn.LSTM",
        "torch.nn.modules.rnn.GRU",
        "torch.nn.modules.rnn.RNNCell",
        "torch.nn.modules.rnn.LSTMCell",
        "torch.nn.modules.rnn.GRUCell",
    }
)
CELL_MODULES = frozenset(name for name in RECURRENT_MODULES if name.endswith("Cell"))
# Modules whose state is an (h, c) pair.
PAIR_STATE_MODULES = frozenset(name for name in RECURRENT_MODULES if "LSTM" in name)


# What summaries assume of a function before its body is read, so that recursive helpers
# (`repackage_hidden`) can count as cuts; compared by identity to tell it from a real result.
ASSUMED_CUT = FunctionFacts(returns_cut=True)


@dataclass(frozen=True)
class Construction:
    """`name = SomeClass(...)`: what an object name was built from."""

    qualified_class: str
    call: cst.Call

    def keyword(self, name: str) -> cst.BaseExpression | None:
        for arg in self.call.args:
            if arg.keyword is not None and arg.keyword.value == name:
                return arg.value
        return None

    def flag(self, name: str) -> bool:
        value = self.keyword(name)
        return isinstance(value, cst.Name) and value.value == "True"


@dataclass
class FileContext:
    imports: ImportMap
    # "rnn", "self.rnn", "model" -> how the object was built (module level or in a class).
    constructions: dict[str, Construction] = field(default_factory=dict)
    functions: dict[str, FunctionFacts] = field(default_factory=dict)  # local name -> facts
    # Class names (local or qualified) whose `detach()` mutates the object in place.
    inplace_detach_classes: set[str] = field(default_factory=set)
    # Class name -> positions (after self) of `forward` parameters it cuts on entry.
    forward_cuts: dict[str, frozenset[int]] = field(default_factory=dict)
    # Class name -> positions (after self) of `forward` parameters it re-initialises.
    forward_resets: dict[str, frozenset[int]] = field(default_factory=dict)
    # Class -> attributes its forward carries between calls, and how forward treats them.
    stateful_classes: dict[str, dict[str, str]] = field(default_factory=dict)
    # Class -> method -> attributes it cuts or resets.
    state_methods: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    # Class -> method other than forward -> attributes it carries between calls, and how.
    carrying_methods: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    # The module's own classes and top-level functions, for what calls do to state kept on
    # attributes (`self.reset_hidden()`, `detach_state(model)`): see attributes.py.
    class_defs: dict[str, cst.ClassDef] = field(default_factory=dict)
    function_defs: dict[str, cst.FunctionDef] = field(default_factory=dict)
    # (class or function, method) -> attribute path -> how the call leaves it; None: unknown.
    attribute_effects: dict[tuple[str, str], dict[str, str] | None] = field(default_factory=dict)
    # Functions that build an object of a known class: local name -> qualified class.
    factories: dict[str, str] = field(default_factory=dict)
    # `self.automatic_optimization = False` somewhere in the file: Lightning runs no backward
    # of its own after `training_step`.
    manual_optimization: bool = False
    # What cheap text tests of the whole file allow TBP015 to look for (step_resets.py,
    # stateless_cells.py, dropped_states.py): each walk costs too much to run everywhere.
    may_reset_per_step: bool = False
    may_leave_cell_state_out: bool = False
    may_drop_fetched_state: bool = False
    # Functions, classes and `self` attributes the file's source defines (gradients.py).
    local_names: frozenset[str] = frozenset()
    # Extra names from configuration.
    detach_functions: frozenset[str] = frozenset()
    recurrent_modules: frozenset[str] = frozenset()
    # The classes of every file of the run, by short name.
    run: RunClasses = NO_CLASSES
    # None: a context built without the analysis' interpretation (some tests); nested helpers
    # and the effects of methods on attributes are then unknown.
    interpretation: Interpretation | None = None
    _methods: set[str] = field(default_factory=set, repr=False)
    # id(unit) -> (unit, what a walk of it tells): interpreters of one unit share one walk.
    unit_scans: dict[int, tuple[cst.CSTNode, object]] = field(default_factory=dict, repr=False)
    _methods_counted: int = field(default=-1, repr=False)
    # `methods_named`'s table: method -> keys of `functions`, and when it was built.
    _method_keys: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    _keys_counted: tuple[int, int] = field(default=(0, -1), repr=False)
    # The parsed file, for facts worked out only when a unit asks (`class_views`).
    module: cst.Module | None = None
    _class_views: ClassViews | None = field(default=None, repr=False)
    # id(function) -> the function it is defined in, for functions nested in functions.
    _enclosing: dict[int, cst.FunctionDef] | None = field(default=None, repr=False)
    # (class, method) -> the method parsed from `source` when phase 2 left it out.
    parsed_methods: dict[tuple[str, str], cst.FunctionDef | None] = field(
        default_factory=dict, repr=False
    )

    def enclosing_function(self, function: cst.FunctionDef) -> cst.FunctionDef | None:
        """The function a nested function (or a method of a class defined in a function) is
        defined in: its helpers are in the nested one's scope too. Walked once, on need."""
        if self._enclosing is None:
            self._enclosing = enclosing_functions(self.module) if self.module is not None else {}
        return self._enclosing.get(id(function))

    def class_views(self) -> ClassViews:
        """Attributes each class of the file sets to views; read once, on first need."""
        if self._class_views is None:
            modules = {name: built.qualified_class for name, built in self.constructions.items()}
            self._class_views = (
                class_views(self.module, modules) if self.module is not None else ClassViews()
            )
        return self._class_views

    # The module's full text and name, and the run's index: TBP011 reads the loaders a loop
    # iterates from the whole file (phase 2 parses only the blocks that can matter) and from
    # the calls that pass them in.
    source: str = ""
    module_name: str = ""
    index: ProjectIndex | None = None
    _mentioned: dict[str, bool] = field(default_factory=dict, repr=False)

    def mentions(self, text: str) -> bool:
        """Whether the file's text holds `text`; asked per loop, searched once per file (a
        search of a 20 MB file per loop made huge files quadratic)."""
        found = self._mentioned.get(text)
        if found is None:
            found = self._mentioned[text] = text in self.source
        return found

    def qualify(self, node: cst.BaseExpression) -> str | None:
        return self.imports.qualify(dotted_name(node))

    def construction_of(self, name: str | None) -> Construction | None:
        return self.constructions.get(name) if name else None

    def class_of(self, instance: str, enclosing_class: str | None) -> str | None:
        """The local class name of an object, `self` included."""
        if instance == "self":
            return enclosing_class
        built = self.constructions.get(instance)
        return built.qualified_class.rsplit(".", 1)[-1] if built is not None else None

    def has_method(self, method: str) -> bool:
        """Whether some class of this file or of the run has a summarised `method`."""
        if method in self.run.by_method:
            return True
        # `functions` grows while the file is summarised: recount when it did.
        if self._methods_counted != len(self.functions):
            self._methods = {n.split(".")[1] for n in self.functions if n.count(".") == 1}
            self._methods_counted = len(self.functions)
        return method in self._methods

    def methods_of_class(self, class_name: str, method: str) -> list[FunctionFacts]:
        """Facts of `class_name.method`: this file's class (or one it imports by name), else the
        classes of that name anywhere in the run."""
        facts = self.functions.get(f"{class_name}.{method}")
        if facts is not None:
            return [facts]
        return list(self.run.by_class.get(class_name, {}).get(method, ()))

    def methods_named(self, method: str) -> list[FunctionFacts]:
        """Facts of `method` in every class of this file and of the run, for a call on an
        object whose class is unknown."""
        local = [
            facts
            for facts in map(self.functions.__getitem__, self.method_keys(method))
            # Still the guess that summaries start from: taking it would let a method that
            # calls an unknown object count itself as the cut.
            if facts is not ASSUMED_CUT
        ]
        return local + list(self.run.by_method.get(method, ()))

    def method_keys(self, method: str) -> tuple[str, ...]:
        """The keys `Class.method` of `functions`, in their order: looked up in a table kept
        by method name, built again only when `functions` grew (a scan of every function per
        call made a file of many functions quadratic)."""
        if self._keys_counted != (id(self.functions), len(self.functions)):
            table: dict[str, list[str]] = {}
            for name in self.functions:
                if name.count(".") == 1:
                    table.setdefault(name.split(".")[1], []).append(name)
            self._method_keys = {m: tuple(names) for m, names in table.items()}
            self._keys_counted = (id(self.functions), len(self.functions))
        return self._method_keys.get(method, ())

    def is_recurrent_class(self, qualified: str | None) -> bool:
        if qualified is None:
            return False
        if qualified in RECURRENT_MODULES:
            return True
        short = qualified.rsplit(".", 1)[-1]
        return qualified in self.recurrent_modules or short in self.recurrent_modules

    def is_detach_function(self, qualified: str | None, local: str | None) -> bool:
        names = {n for n in (qualified, local) if n}
        for name in names:
            if name in self.detach_functions:
                return True
            if name.rsplit(".", 1)[-1] in self.detach_functions and "." not in name:
                return True
        return False


def enclosing_functions(module: cst.Module) -> dict[int, cst.FunctionDef]:
    """id(function) -> the nearest function it is defined in, found by walking statements only
    (a class between them is no scope its methods see, the function around it is)."""
    found: dict[int, cst.FunctionDef] = {}
    stack: list[tuple[cst.CSTNode, cst.FunctionDef | None]] = [(s, None) for s in module.body]
    while stack:
        node, around = stack.pop()
        if isinstance(node, cst.FunctionDef):
            if around is not None:
                found[id(node)] = around
            around = node
        elif isinstance(node, (cst.SimpleStatementLine, cst.BaseExpression)):
            continue
        for name in ("body", "orelse", "handlers", "finalbody", "cases"):
            child = getattr(node, name, None)
            if isinstance(child, (list, tuple)):
                stack.extend((c, around) for c in child)
            elif isinstance(child, cst.CSTNode):
                stack.append((child, around))
    return found
