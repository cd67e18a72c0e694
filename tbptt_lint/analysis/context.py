"""What the interpreter knows about a file beyond one unit: imports, module objects, helpers."""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from tbptt_lint.analysis.index import FunctionFacts
from tbptt_lint.analysis.names import ImportMap, dotted_name

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
    # Functions, classes and `self` attributes the file's source defines (gradients.py).
    local_names: frozenset[str] = frozenset()
    # Extra names from configuration.
    detach_functions: frozenset[str] = frozenset()
    recurrent_modules: frozenset[str] = frozenset()

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
