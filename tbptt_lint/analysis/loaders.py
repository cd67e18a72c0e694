"""Which data loader a loop iterates, and how it was built (TBP011).

A loader is known by what it is: a `torch.utils.data.DataLoader` built with `shuffle=True`
or a random sampler is shuffled; a class of one's own whose name ends in `DataLoader`, or a
loader built from `**kwargs` or `shuffle=args.shuffle`, is a loader whose order is unknown.
Names are resolved in the scope that binds them (the bindings that reach the use in the
function, then the module's, and `self.x` through the assignments of its class), never by a
file-wide match of the name. A loader handed to a function is resolved at the function's call
sites, in this file or any other file of the run: phase 1 records every call that passes a
loader on (`loader_calls`), phase 2 asks the index for the calls of the function it checks.

Both phases read the full source with Python's `ast` (phase 2 parses only what can matter,
and it is much faster than libcst's parser); phase 2 only does so for a loop that carries state.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tbptt_lint.analysis.index import LoaderArgument, LoaderCall, LoaderInfo, ProjectIndex

if TYPE_CHECKING:
    from tbptt_lint.analysis.model import FileModel

LOADERS = frozenset({"torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader"})
SAMPLER_PACKAGE = "torch.utils.data."
RANDOM_SAMPLERS = frozenset({"RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler"})
# `DataLoader(dataset, batch_size, shuffle, sampler, batch_sampler, num_workers, collate_fn,
# pin_memory, drop_last)`: the arguments that may also be passed by position.
LOADER_PARAMETERS = ("dataset", "batch_size", "shuffle", "sampler", "batch_sampler")
LOADER_PARAMETERS += ("num_workers", "collate_fn", "pin_memory", "drop_last")  # type: ignore[assignment]
# `DistributedSampler(dataset, num_replicas, rank, shuffle)`, shuffled unless told otherwise.
DISTRIBUTED_SHUFFLE_POSITION = 3
# Calls that iterate what they are given in its order.
ITERATION_WRAPPERS = frozenset({"enumerate", "iter", "tqdm", "trange"})
# How far a loader is followed through parameters passed on from function to function.
MAX_FORWARDS = 3
MAX_RESOLUTION_DEPTH = 8
UNKNOWN_LOADER = LoaderInfo(shuffled=None)
# Larger sources (generated code) are not read for loaders: their loaders count as unknown.
MAX_SOURCE_CHARACTERS = 5_000_000
ANY_OBJECT = "*"
NOT_OPTIMIZER_MODULES = frozenset({"lr_scheduler", "swa_utils"})
# A module that may build a torch optimizer: `torch.optim.SGD(`, `optim.Adam(` (not in a
# docstring's `>>>` example or a comment), or a class imported by `from torch.optim import
# AdamW` and called.
OPTIMIZER_BUILT = re.compile(r"(?m)^(?![ \t]*(?:>>>|\.\.\.|#))[^\n]*optim\.[A-Z]\w*\s*\(")
IMPORTS_OPTIMIZERS = re.compile(
    r"(?m)^[ \t]*from[ \t]+torch\.optim[ \t]+import[ \t]+\(?([\w, \t]+)"
)
# Larger modules (test suites, a framework's core) are not parsed for the optimizers they pass
# alone: a function they import then counts as given something unknown.
MAX_OPTIMIZER_SOURCE_CHARACTERS = 100_000


@dataclass
class Scope:
    qualname: str  # "" for the module, `train`, `Trainer.fit`, `main.inner`
    parent: Scope | None
    is_class: bool = False
    params: tuple[str, ...] = ()  # every parameter
    positional: tuple[str, ...] = ()  # those a caller may pass by position, `self` included
    defaulted: frozenset[str] = frozenset()  # those with a default value
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    declared_global: set[str] = field(default_factory=set)
    # Class scopes: `self.x = ...` in any of its methods.
    attributes: dict[str, list[Binding]] = field(default_factory=dict)

    @property
    def owner_class(self) -> Scope | None:
        """The class of a method."""
        return self.parent if self.parent is not None and self.parent.is_class else None

    def positional_params(self) -> tuple[str, ...]:
        """Parameters a caller passes by position (`self` left out of a method's)."""
        return self.positional[1:] if self.owner_class is not None else self.positional

    @property
    def self_name(self) -> str | None:
        """The name a method's object goes by (`self`)."""
        return self.positional[0] if self.owner_class is not None and self.positional else None


@dataclass(frozen=True)
class Place:
    """Where an expression is evaluated: its scope, position and the blocks around it
    (statement lists of `if`, `for`, `try`... inside that scope, outermost first)."""

    scope: Scope
    position: tuple[int, int]
    blocks: tuple[int, ...]


@dataclass(frozen=True)
class Binding:
    value: ast.expr | None  # None: bound by something other than `name = value`
    place: Place


@dataclass(frozen=True)
class Parameter:
    """A name that is a parameter of the function it is used in."""

    scope: Scope
    name: str


Resolved = LoaderInfo | Parameter | None


@dataclass
class ModuleLoaders:
    """Scopes, loops and calls of one module's source."""

    module_name: str
    imports: dict[str, str]
    star_imports: tuple[str, ...]
    module: Scope
    loops: dict[int, list[tuple[ast.For | ast.AsyncFor, Place]]] = field(default_factory=dict)
    calls: list[tuple[ast.Call, Place]] = field(default_factory=list)
    defined_functions: set[str] = field(default_factory=set)
    # Line of a function's `def` -> its scope.
    functions: dict[int, Scope] = field(default_factory=dict)
    _calls: list[LoaderCall] | None = None
    _optimizer_calls: list[LoaderCall] | None = None

    # ------------------------------------------------------------- names
    def qualify(self, node: ast.expr) -> str | None:
        dotted = _dotted(node)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        if head in self.imports:
            base = self.imports[head]
            return f"{base}.{rest}" if rest else base
        if not rest and head not in self.module.bindings:
            for star in self.star_imports:
                if star.startswith("torch.utils.data"):
                    return f"torch.utils.data.{head}"
        return dotted

    def function_name(self, scope: Scope) -> str:
        return self.function_name_of(scope.qualname)

    # -------------------------------------------------------- resolution
    def loader_at_loop(self, line: int) -> Resolved:
        """What the `for` loop starting at `line` iterates, when that is a loader."""
        for loop, place in self.loops.get(line, ()):
            return self.loader_of(loop.iter, place)
        return None

    def loader_of(self, node: ast.expr, place: Place, depth: int = 0) -> Resolved:
        if depth > MAX_RESOLUTION_DEPTH:
            return None
        node = _unwrapped(node)
        if isinstance(node, ast.Call):
            return self.loader_built(node, place, depth)
        if isinstance(node, ast.IfExp):
            return _combine(
                [self.loader_of(node.body, place, depth + 1)]
                + [self.loader_of(node.orelse, place, depth + 1)]
            )
        found = self.resolve(node, place)
        if found is None or isinstance(found, Parameter):
            return found
        return _combine([self.loader_of(b.value, b.place, depth + 1) for b in found])  # type: ignore[arg-type]

    def resolve(self, node: ast.expr, place: Place) -> list[Binding] | Parameter | None:
        """The bindings of a name or `self.x` that may reach `place`; a Parameter when the
        name is one of the function's parameters; None when there are none to read (a
        builtin, a star import, another object's attribute), or one that is not
        `name = value`."""
        if isinstance(node, ast.Name):
            return self._resolve_name(node.id, place)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            owner = place.scope.owner_class
            if owner is None or node.value.id != place.scope.self_name:
                return None
            return _known(owner.attributes.get(node.attr))
        return None

    def _resolve_name(self, name: str, place: Place) -> list[Binding] | Parameter | None:
        scope: Scope | None = place.scope
        position: Place | None = place
        while scope is not None:
            # `global x` at module level (legal, and a no-op) must not send the module to itself.
            if name in scope.declared_global and scope is not self.module:
                scope, position = self.module, None
                continue
            bindings = scope.bindings.get(name)
            if name in scope.params:
                # A parameter rebound before the use (`loader = tqdm(loader)`) is what the
                # rebinding made; one rebound on some paths only is unknown.
                reaching, complete = _reaching(bindings or [], place, strict=True)
                if not reaching:
                    return Parameter(scope, name)
                if not complete:  # the value passed in may reach the use too
                    entry = Place(scope, (0, 0), ())
                    reaching = [*reaching, Binding(ast.Name(id=name, ctx=ast.Load()), entry)]
                return _known(reaching)
            if bindings:
                reaching = _reaching(bindings, position)[0] if position is not None else bindings
                return _known(reaching)
            # Enclosing functions, then the module; a class body's names are not visible in
            # its methods.
            scope, position = scope.parent, None
            while scope is not None and scope.is_class:
                scope = scope.parent
        return None

    def loader_built(self, call: ast.Call, place: Place, depth: int) -> Resolved:
        qualified = self.qualify(call.func) or ""
        if qualified not in LOADERS:
            # Another library's loader or one of the user's own classes: its order is
            # not `shuffle=`'s business.
            return UNKNOWN_LOADER if qualified.endswith("DataLoader") else None
        args = _arguments(call, LOADER_PARAMETERS)
        if args is None:
            return UNKNOWN_LOADER
        shuffle = _flag(args.get("shuffle"), default=False)
        sampler = args.get("sampler")
        batch_sampler = args.get("batch_sampler")
        drawn_by = batch_sampler if not _is_none(batch_sampler) else sampler
        sampled = False if _is_none(drawn_by) else self.sampler_shuffles(drawn_by, place, depth + 1)
        if shuffle is True or sampled is True:
            shuffled: bool | None = True
        elif shuffle is None or sampled is None:
            shuffled = None
        else:
            shuffled = False
        batch_size = args.get("batch_size")
        fixed_size = None
        if _is_none(batch_sampler) and batch_size is not None and not _is_none(batch_size):
            fixed_size = ast.unparse(batch_size)
        drop_last = _flag(args.get("drop_last"), default=False)
        dataset = args.get("dataset")
        if (
            drop_last is False
            and fixed_size is not None
            and dataset is not None
            and self.trimmed_to_batches(dataset, fixed_size, place, depth, set())
        ):
            drop_last = None  # whole batches only, or so it seems: whether one is short is unknown
        return LoaderInfo(shuffled, fixed_size, drop_last)

    def trimmed_to_batches(
        self, node: ast.expr, size: str, place: Place, depth: int, seen: set[int]
    ) -> bool:
        """Whether a dataset is made (through names assigned on the way, in this run) from
        something cut to a whole number of batches of `size`: `n // size * size`,
        `int(n / size) * size`, `n - n % size`."""
        if depth > MAX_RESOLUTION_DEPTH or id(node) in seen:
            return False
        seen.add(id(node))
        for part in ast.walk(node):
            if _whole_batches(part, size):
                return True
        for part in ast.walk(node):
            if not isinstance(part, ast.Name):
                continue
            found = self._resolve_name(part.id, place)
            if found is None or isinstance(found, Parameter):
                continue
            for binding in found:
                value = binding.value
                if value is not None and self.trimmed_to_batches(
                    value, size, binding.place, depth + 1, seen
                ):
                    return True
        return False

    def sampler_shuffles(self, node: ast.expr | None, place: Place, depth: int) -> bool | None:
        """Whether a sampler draws in random order; None when unknown."""
        if node is None or depth > MAX_RESOLUTION_DEPTH:
            return None
        if isinstance(node, ast.Call):
            qualified = self.qualify(node.func) or ""
            if not qualified.startswith(SAMPLER_PACKAGE):
                return None
            kind = qualified.rsplit(".", 1)[-1]
            if kind in RANDOM_SAMPLERS:
                return True
            if kind == "SequentialSampler":
                return False
            if kind == "DistributedSampler":
                shuffle = _keyword(node, "shuffle")
                if shuffle is None and len(node.args) > DISTRIBUTED_SHUFFLE_POSITION:
                    shuffle = node.args[DISTRIBUTED_SHUFFLE_POSITION]
                return _flag(shuffle, default=True)
            if kind == "BatchSampler":
                inner = _keyword(node, "sampler") or (node.args[0] if node.args else None)
                return self.sampler_shuffles(inner, place, depth + 1)
            return None
        found = self.resolve(node, place)
        if not isinstance(found, list):
            return None
        verdicts = {self.sampler_shuffles(b.value, b.place, depth + 1) for b in found}
        return verdicts.pop() if len(verdicts) == 1 else None

    # -------------------------------------------------------- call sites
    def loader_calls(self) -> list[LoaderCall]:
        """The module's calls of its own functions, of `self` methods and of imported
        functions: with the loaders or forwarded parameters they pass, and, once per
        function, a call passing nothing known, so that a caller elsewhere knows that some
        call passes something else."""
        if self._calls is None:
            self._calls = self._passing(self.argument)
        return self._calls

    def optimizer_calls(self) -> list[LoaderCall]:
        """The same as `loader_calls`, for the torch optimizers the calls pass."""
        if self._optimizer_calls is None:
            self._optimizer_calls = self._passing(self.optimizer_argument)
        return self._optimizer_calls

    def _passing(
        self, argument: Callable[[ast.expr, Place], LoaderArgument | None]
    ) -> list[LoaderCall]:
        found: list[LoaderCall] = []
        others: set[tuple[str, bool]] = set()
        for call, place in self.calls:
            callee = self.callee_of(call, place)
            if callee is None or not (call.args or call.keywords):
                continue
            positional = tuple(argument(arg, place) for arg in call.args)
            keywords = tuple((k.arg, argument(k.value, place)) for k in call.keywords if k.arg)
            if not any(positional) and not any(a for _, a in keywords):
                others.add(callee)
                continue
            starred = any(isinstance(a, ast.Starred) for a in call.args) or any(
                k.arg is None for k in call.keywords
            )
            found.append(LoaderCall(callee[0], callee[1], positional, keywords, starred))
        found += [LoaderCall(name, method, (), (), True) for name, method in sorted(others)]
        return found

    def callee_of(self, call: ast.Call, place: Place) -> tuple[str, bool] | None:
        func = call.func
        if isinstance(func, ast.Name):
            if func.id in self.imports:
                return self.imports[func.id], False
            if func.id in self.defined_functions:
                return self.function_name_of(func.id), False
            return None
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            owner = place.scope.owner_class
            if owner is not None and func.value.id == place.scope.self_name:
                return f"{self.function_name(owner)}.{func.attr}", True
            if func.value.id in self.imports:
                return f"{self.imports[func.value.id]}.{func.attr}", False
        if isinstance(func, ast.Attribute):
            # A method called on an object of unknown class: any class's method of that name.
            return f"{ANY_OBJECT}.{func.attr}", True
        return None

    def function_name_of(self, qualname: str) -> str:
        return f"{self.module_name}.{qualname}" if self.module_name else qualname

    def argument(self, node: ast.expr, place: Place) -> LoaderArgument | None:
        if isinstance(node, ast.Starred):
            return None
        found = self.loader_of(node, place)
        if isinstance(found, LoaderInfo):
            return LoaderArgument(loader=found)
        if isinstance(found, Parameter):
            return self.forwarded(found)
        return None

    def forwarded(self, parameter: Parameter) -> LoaderArgument:
        positional = parameter.scope.positional_params()
        position = positional.index(parameter.name) if parameter.name in positional else -1
        return LoaderArgument(
            forwarded_from=self.function_name(parameter.scope),
            forwarded_method=parameter.scope.owner_class is not None,
            position=position,
            name=parameter.name,
        )

    def optimizer_argument(self, node: ast.expr, place: Place) -> LoaderArgument | None:
        if isinstance(node, ast.Starred):
            return None
        found = self.optimizer_of(node, place)
        if found is True:
            return LoaderArgument(optimizer=True)
        # A parameter with a default may be left out, and hold what the default is.
        if isinstance(found, Parameter) and found.name not in found.scope.defaulted:
            return self.forwarded(found)
        return None

    def optimizer_of(self, node: ast.expr, place: Place, depth: int = 0) -> bool | Parameter:
        """True when `node` holds a `torch.optim` optimizer built here on every path, the
        parameter it is when it is one of the function's, False when unknown."""
        if depth > MAX_RESOLUTION_DEPTH:
            return False
        if isinstance(node, ast.Call):
            qualified = self.qualify(node.func) or ""
            return is_torch_optimizer_class(qualified)
        if isinstance(node, ast.IfExp):
            return all(
                self.optimizer_of(branch, place, depth + 1) is True
                for branch in (node.body, node.orelse)
            )
        found = self.resolve(node, place)
        if isinstance(found, Parameter):
            return found
        return found is not None and all(
            b.value is not None and self.optimizer_of(b.value, b.place, depth + 1) is True
            for b in found
        )

    # ------------------------------------------------------- parameters
    def parameter_optimizer(self, index: ProjectIndex | None, parameter: Parameter) -> bool:
        """Whether every call of a function of this module in the run passes a torch
        optimizer as one of its parameters (one that has no default)."""
        if parameter.name in parameter.scope.defaulted:
            return False
        function, is_method, position = self._receiver(parameter)
        return self._passed_optimizer(index, function, is_method, position, parameter.name, 0)

    def _passed_optimizer(
        self,
        index: ProjectIndex | None,
        function: str,
        is_method: bool,
        position: int,
        name: str,
        forwards: int,
    ) -> bool:
        """`_passed` for optimizers: whether there are calls of `function`, and all of them
        pass one (itself, or a parameter of theirs that every call of theirs passes one)."""
        calls = self._calls_of(index, function, is_method, optimizers=True)
        if not calls:
            return False
        for call in calls:
            argument = _argument_for(call, position, name)
            if argument is None:
                return False
            if argument.optimizer:
                continue
            if not argument.forwarded_from or forwards >= MAX_FORWARDS:
                return False
            if not self._passed_optimizer(
                index,
                argument.forwarded_from,
                argument.forwarded_method,
                argument.position,
                argument.name,
                forwards + 1,
            ):
                return False
        return True

    def parameter_loader(
        self, index: ProjectIndex | None, parameter: Parameter
    ) -> LoaderInfo | None:
        """What the calls of a function of this module pass as one of its parameters."""
        function, is_method, position = self._receiver(parameter)
        return self._passed(index, function, is_method, position, parameter.name, 0)

    def _receiver(self, parameter: Parameter) -> tuple[str, bool, int]:
        """The function a parameter belongs to, whether it is a method, and the parameter's
        position among the positional ones (-1 when keyword-only)."""
        positional = parameter.scope.positional_params()
        position = positional.index(parameter.name) if parameter.name in positional else -1
        return (
            self.function_name(parameter.scope),
            parameter.scope.owner_class is not None,
            position,
        )

    def _passed(
        self,
        index: ProjectIndex | None,
        function: str,
        is_method: bool,
        position: int,
        name: str,
        forwards: int,
    ) -> LoaderInfo | None:
        """A shuffled loader when every call of `function` in the run passes one as its
        parameter `name` (at `position`, -1 when keyword-only), a loader of unknown order when
        every call passes a loader, None when some call passes something else, or may (a
        module not read for loaders imports the function), or there is no call."""
        calls = self._calls_of(index, function, is_method)
        if not calls:
            return None
        found: list[LoaderInfo] = []
        for call in calls:
            argument = _argument_for(call, position, name)
            if argument is None:
                return None
            loader = argument.loader
            if loader is None and argument.forwarded_from and forwards < MAX_FORWARDS:
                loader = self._passed(
                    index,
                    argument.forwarded_from,
                    argument.forwarded_method,
                    argument.position,
                    argument.name,
                    forwards + 1,
                )
            if loader is None:
                return None
            found.append(loader)
        return LoaderInfo(True) if all(f.shuffled for f in found) else UNKNOWN_LOADER

    def _calls_of(
        self, index: ProjectIndex | None, function: str, is_method: bool, optimizers: bool = False
    ) -> list[LoaderCall] | None:
        """Every call of `function` in the run (those passing loaders, or `optimizers`); None
        when a module may call it unseen."""
        module, _, short = function.rpartition(".")
        module_last = module.rsplit(".", 1)[-1]
        own = self.optimizer_calls() if optimizers else self.loader_calls()
        calls = [c for c in own if _calls(c, function, is_method, exact=True)]
        for summary in index.summaries.values() if index is not None else ():
            if summary.module_name == self.module_name:
                continue
            passing = summary.optimizer_calls if optimizers else summary.loader_calls
            if passing is None:
                if short in summary.imported or module_last in summary.imported:
                    return None
                continue
            calls += [c for c in passing if _calls(c, function, is_method)]
        return calls


def _calls(call: LoaderCall, function: str, is_method: bool, exact: bool = False) -> bool:
    """Whether `call` may call `function`: by its name (a call of this module names its own
    functions exactly), or, for a method, any call of a method of that name on an object of
    unknown class."""
    if is_method and call.callee == f"{ANY_OBJECT}.{function.rpartition('.')[2]}":
        return True
    return call.callee == function if exact else _same_function(call.callee, function)


def _same_function(callee: str, function: str) -> bool:
    """A call names its callee as its module imported it: module names match by suffix,
    either way round, as `ProjectIndex.lookup` matches them."""
    return callee == function or function.endswith("." + callee) or callee.endswith("." + function)


def _argument_for(call: LoaderCall, position: int, name: str) -> LoaderArgument | None:
    for keyword, argument in call.keywords:
        if keyword == name:
            return argument
    if call.starred or position < 0 or position >= len(call.positional):
        return None
    return call.positional[position]


# ----------------------------------------------------------------- reading


def read_module(source: str, module_name: str) -> ModuleLoaders | None:
    if len(source) > MAX_SOURCE_CHARACTERS:
        return None
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    collector = _Collector(module_name)
    try:
        collector.visit_body(tree.body)
    except RecursionError:
        return None
    collector.result.star_imports = tuple(collector.stars)
    return collector.result


def passed_calls(
    source: str, module_name: str
) -> tuple[tuple[LoaderCall, ...] | None, tuple[LoaderCall, ...] | None]:
    """Phase 1: a module's calls of functions, with the loaders they pass, and with the torch
    optimizers they pass. Only a module that builds a loader (`DataLoader(` in its text) is
    read for loaders, None for the others: a loader one of its functions is given can only
    come from such a module. The same holds for optimizers and a module that may build one
    (`may_build_torch_optimizer`); one parsed for its loaders is read for optimizers too, so
    that the calls it makes are known."""
    if len(source) > MAX_SOURCE_CHARACTERS:
        return None, None
    loaders = "DataLoader(" in source
    if not loaders and not (
        len(source) <= MAX_OPTIMIZER_SOURCE_CHARACTERS and may_build_torch_optimizer(source)
    ):
        return None, None
    module = read_module(source, module_name)
    if module is None:
        return None, None
    return tuple(module.loader_calls()) if loaders else None, tuple(module.optimizer_calls())


def may_build_torch_optimizer(source: str) -> bool:
    """Text test: whether the module may build a `torch.optim` optimizer. Plain substring
    tests first: the patterns cost far more on the large modules that hold neither."""
    if "optim." in source and OPTIMIZER_BUILT.search(source):
        return True
    if "torch.optim import" not in source:
        return False
    for line in IMPORTS_OPTIMIZERS.finditer(source):
        for name in re.findall(r"\b[A-Z]\w*", line.group(1)):
            if re.search(rf"\b{name}\s*\(", source):
                return True
    return False


def loader_calls(source: str, module_name: str) -> tuple[LoaderCall, ...] | None:
    """Phase 1: a module's calls of functions, with the loaders they pass."""
    return passed_calls(source, module_name)[0]


def is_torch_optimizer_class(qualified: str) -> bool:
    """`torch.optim.Adam`, not a scheduler of `torch.optim.lr_scheduler` or an averaged model
    of `torch.optim.swa_utils`."""
    parts = qualified.split(".")
    return (
        parts[:2] == ["torch", "optim"]
        and not set(parts) & NOT_OPTIMIZER_MODULES
        and parts[-1][:1].isupper()
    )


def functions_given_loaders(index: ProjectIndex | None) -> frozenset[str]:
    """The last names of the functions some call in the run passes a loader, or a parameter
    that may hold one, to: a function of a module that builds no loader can only be given one
    through them."""
    return frozenset(
        call.callee.rsplit(".", 1)[-1]
        for summary in (index.summaries.values() if index is not None else ())
        for call in summary.loader_calls or ()
        if any(call.positional) or any(argument for _, argument in call.keywords)
    )


def file_loaders(model: FileModel) -> ModuleLoaders | None:
    """Phase 2: the module's scopes, loops and calls as Python's parser reads the whole file,
    once per file."""
    return model.once(_read_file_loaders)


def _read_file_loaders(model: FileModel) -> ModuleLoaders | None:
    return read_module(model.context.source, model.context.module_name)


def given_optimizer(
    module: ModuleLoaders | None, index: ProjectIndex | None, function_line: int, name: str
) -> bool:
    """Phase 2: whether every call in the run of the function whose `def` is at
    `function_line` gives its parameter `name` a torch optimizer."""
    scope = module.functions.get(function_line) if module is not None else None
    if module is None or scope is None or name not in scope.params:
        return False
    return module.parameter_optimizer(index, Parameter(scope, name))


def loader_iterated(
    module: ModuleLoaders | None, index: ProjectIndex | None, line: int
) -> LoaderInfo | None:
    """Phase 2: the loader the `for` loop at `line` iterates, when it is known to be one."""
    if module is None:
        return None
    found = module.loader_at_loop(line)
    if isinstance(found, Parameter):
        return module.parameter_loader(index, found)
    return found


class _Collector(ast.NodeVisitor):
    def __init__(self, module_name: str) -> None:
        module = Scope("", None)
        package = module_name.rsplit(".", 1)[0] if "." in module_name else ""
        self.package = package
        self.result = ModuleLoaders(module_name, {}, (), module)
        self.scope = module
        self.blocks: tuple[int, ...] = ()
        self.stars: list[str] = []

    def place(self, node: ast.AST) -> Place:
        position = (getattr(node, "lineno", 0), getattr(node, "col_offset", 0))
        return Place(self.scope, position, self.blocks)

    def visit_body(self, body: Sequence[ast.stmt], block: object | None = None) -> None:
        saved = self.blocks
        if block is not None:
            self.blocks = (*self.blocks, id(block))
        for statement in body:
            self.visit(statement)
        self.blocks = saved

    def bind(self, name: str, value: ast.expr | None, node: ast.AST) -> None:
        self.scope.bindings.setdefault(name, []).append(Binding(value, self.place(node)))

    def bind_target(self, target: ast.expr, value: ast.expr | None, node: ast.AST) -> None:
        if isinstance(target, ast.Name):
            self.bind(target.id, value, node)
        elif isinstance(target, (ast.Tuple, ast.List)):
            pairs = (
                value.elts
                if isinstance(value, (ast.Tuple, ast.List))
                and len(value.elts) == len(target.elts)
                and not any(isinstance(e, ast.Starred) for e in target.elts + value.elts)
                else [None] * len(target.elts)
            )
            for element, part in zip(target.elts, pairs, strict=True):
                self.bind_target(element, part, node)
        elif isinstance(target, ast.Starred):
            self.bind_target(target.value, None, node)
        elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
            owner = self.scope.owner_class
            if owner is not None and target.value.id == self.scope.self_name:
                binding = Binding(value, self.place(node))
                owner.attributes.setdefault(target.attr, []).append(binding)

    # ------------------------------------------------------------ scopes
    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        self.bind(node.name, None, node)
        if self.scope is self.result.module:
            self.result.defined_functions.add(node.name)
        args = node.args
        for default in (*args.defaults, *args.kw_defaults):
            if default is not None:
                self.visit(default)
        positional = tuple(a.arg for a in args.posonlyargs + args.args)
        others = [a.arg for a in args.kwonlyargs]
        others += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
        defaulted = set(positional[len(positional) - len(args.defaults) :])
        defaulted |= {a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d}
        qualname = f"{self.scope.qualname}.{node.name}".lstrip(".")
        scope = Scope(
            qualname,
            self.scope,
            params=(*positional, *others),
            positional=positional,
            defaulted=frozenset(defaulted),
        )
        self.result.functions[node.lineno] = scope
        self._in_scope(scope, node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expression in (*node.decorator_list, *node.bases):
            self.visit(expression)
        self.bind(node.name, None, node)
        qualname = f"{self.scope.qualname}.{node.name}".lstrip(".")
        self._in_scope(Scope(qualname, self.scope, is_class=True), node.body)

    def _in_scope(self, scope: Scope, body: Sequence[ast.stmt]) -> None:
        saved_scope, saved_blocks = self.scope, self.blocks
        self.scope, self.blocks = scope, ()
        self.visit_body(body)
        self.scope, self.blocks = saved_scope, saved_blocks

    def visit_Lambda(self, node: ast.Lambda) -> None:
        return None

    # ---------------------------------------------------------- bindings
    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self.bind_target(target, node.value, node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
            self.bind_target(node.target, node.value, node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        self.bind_target(node.target, None, node)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self.bind_target(node.target, None, node)

    def visit_Global(self, node: ast.Global) -> None:
        self.scope.declared_global.update(node.names)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            local = alias.asname or alias.name.split(".")[0]
            self.result.imports.setdefault(local, alias.name if alias.asname else local)
            self.bind(local, None, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            base = ".".join(p for p in (self.package, base) if p)
        for alias in node.names:
            if alias.name == "*":
                self.stars.append(base)
                continue
            local = alias.asname or alias.name
            self.result.imports.setdefault(local, f"{base}.{alias.name}" if base else alias.name)
            self.bind(local, None, node)

    # ------------------------------------------------------ control flow
    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self.result.loops.setdefault(node.lineno, []).append((node, self.place(node)))
        self.bind_target(node.target, None, node)
        self.visit_body(node.body, node.body)
        self.visit_body(node.orelse, node.orelse)

    visit_AsyncFor = visit_For

    def visit_While(self, node: ast.While) -> None:
        self.visit(node.test)
        self.visit_body(node.body, node.body)
        self.visit_body(node.orelse, node.orelse)

    def visit_If(self, node: ast.If) -> None:
        self.visit(node.test)
        self.visit_body(node.body, node.body)
        self.visit_body(node.orelse, node.orelse)

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self.bind_target(item.optional_vars, None, node)
        self.visit_body(node.body)

    visit_AsyncWith = visit_With

    def visit_Try(self, node: ast.Try) -> None:
        self.visit_body(node.body, node.body)
        for handler in node.handlers:
            if handler.name:
                self.bind(handler.name, None, handler)
            self.visit_body(handler.body, handler.body)
        self.visit_body(node.orelse, node.orelse)
        self.visit_body(node.finalbody, node.finalbody)

    visit_TryStar = visit_Try  # type: ignore[assignment]

    def visit_Match(self, node: ast.Match) -> None:
        self.visit(node.subject)
        for case in node.cases:
            self.visit_body(case.body, case.body)

    def visit_Call(self, node: ast.Call) -> None:
        self.result.calls.append((node, self.place(node)))
        self.generic_visit(node)


# ----------------------------------------------------------------- helpers


def _dotted(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _unwrapped(node: ast.expr) -> ast.expr:
    """`enumerate(tqdm(loader))` -> `loader`."""
    while isinstance(node, ast.Call) and node.args:
        name = _dotted(node.func) or ""
        if name.rsplit(".", 1)[-1] not in ITERATION_WRAPPERS:
            break
        node = node.args[0]
    return node


def _reaching(
    bindings: list[Binding], place: Place, strict: bool = False
) -> tuple[list[Binding], bool]:
    """The bindings of a name in one scope that may reach a use there: the last one before it
    that runs whenever the use does, and every one between that and the use; and whether
    such a last one was found (else the value on entry may reach the use too). Bindings after
    the use count only when none comes before it (a use in a loop, or a closure), unless
    `strict`."""
    before = [b for b in bindings if b.place.position < place.position]
    if not before:
        return ([], False) if strict else (bindings, True)
    reaching: list[Binding] = []
    for binding in reversed(before):
        reaching.append(binding)
        blocks = binding.place.blocks
        if place.blocks[: len(blocks)] == blocks:
            return reaching, True
    return reaching, False


def _whole_batches(node: ast.AST, size: str) -> bool:
    """`n // size * size`, `(n // size) * size`, `int(n / size) * size` or `n - n % size`."""
    if not isinstance(node, ast.BinOp):
        return False
    if isinstance(node.op, ast.Mult):
        for count, factor in ((node.left, node.right), (node.right, node.left)):
            if ast.unparse(factor) == size and _batch_count(count, size):
                return True
        return False
    if isinstance(node.op, ast.Sub) and isinstance(node.right, ast.BinOp):
        rest = node.right
        return (
            isinstance(rest.op, ast.Mod)
            and ast.unparse(rest.right) == size
            and ast.unparse(rest.left) == ast.unparse(node.left)
        )
    return False


def _batch_count(node: ast.expr, size: str) -> bool:
    """`n // size` or `int(n / size)`: how many whole batches `n` items make."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.FloorDiv):
        return ast.unparse(node.right) == size
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("int", "floor")
        and len(node.args) == 1
        and isinstance(node.args[0], ast.BinOp)
        and isinstance(node.args[0].op, (ast.Div, ast.FloorDiv))
    ):
        return ast.unparse(node.args[0].right) == size
    return False


def _known(bindings: list[Binding] | None) -> list[Binding] | None:
    """Bindings whose values can be read; None when any is not `name = value`."""
    if not bindings or any(b.value is None for b in bindings):
        return None
    return bindings


def _combine(found: Sequence[Resolved]) -> Resolved:
    """One answer for several bindings or branches: the same loader, a shuffled one when all
    shuffle, a loader of unknown order when all are loaders, else nothing known."""
    if len(found) == 1:
        return found[0]
    first = found[0] if found else None
    if isinstance(first, Parameter) and all(
        isinstance(f, Parameter) and f.scope is first.scope and f.name == first.name for f in found
    ):
        return first
    if not found or any(not isinstance(f, LoaderInfo) for f in found):
        return None
    loaders = [f for f in found if isinstance(f, LoaderInfo)]
    if all(f == loaders[0] for f in loaders):
        return loaders[0]
    return LoaderInfo(True) if all(f.shuffled for f in loaders) else UNKNOWN_LOADER


def _arguments(call: ast.Call, names: Sequence[str]) -> dict[str, ast.expr] | None:
    """A call's arguments by parameter name; None when `*args`/`**kwargs` hide some."""
    if any(isinstance(a, ast.Starred) for a in call.args) or any(
        k.arg is None for k in call.keywords
    ):
        return None
    found = dict(zip(names, call.args, strict=False))
    found.update({k.arg: k.value for k in call.keywords if k.arg})
    return found


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    return None


def _flag(node: ast.expr | None, default: bool) -> bool | None:
    """A boolean argument: its literal value, the default when absent, None when computed."""
    if node is None:
        return default
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return node.value
    return None


def _is_none(node: ast.expr | None) -> bool:
    return node is None or (isinstance(node, ast.Constant) and node.value is None)
