"""Contract between the engine and the analysis.

Phase 1 (`summarize_source`) records, for every module of a run, the facts that other modules'
analysis needs: which helpers cut state, call backward, or detach in place. Phase 2
(`check_source`) builds one file's loop model and runs every rule over it.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

import libcst as cst

from tbptt_lint.analysis.aside_states import aside_state_blocks, may_keep_state_aside
from tbptt_lint.analysis.attributes import (
    evaluates_kept_state,
    factory_constructions,
    import_factories,
    keep_attribute_writers,
    keeps_state_between_calls,
    module_factories,
    repeat_between_calls,
    runs_without_gradients,
)
from tbptt_lint.analysis.candidates import (
    calls_backward_method,
    gradient_backward_calls,
    is_candidate_unit,
)
from tbptt_lint.analysis.chunks import (
    Block,
    blank_blocks,
    code_text,
    keep_blocks,
    prune_class,
    top_level_blocks,
)
from tbptt_lint.analysis.context import Construction, FileContext
from tbptt_lint.analysis.dropped_states import may_drop_fetched_state
from tbptt_lint.analysis.events import UnitEvents
from tbptt_lint.analysis.gradients import DEFINED_NAME, defined_names
from tbptt_lint.analysis.index import (
    FunctionFacts,
    ModuleSummary,
    ProjectIndex,
    SourceSyntaxError,
)
from tbptt_lint.analysis.interpreter import UnitInterpreter
from tbptt_lint.analysis.loaders import passed_calls
from tbptt_lint.analysis.losses import (
    CALL_METHODS,
    has_loss_helpers,
    loss_sites,
    sums_in_loop,
    sums_on_self,
)
from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.names import ImportMap
from tbptt_lint.analysis.positions import LINE
from tbptt_lint.analysis.prefilter import (
    OPTIMIZER_STEP,
    SourceFunctions,
    builds_optimizer,
    builds_recurrent_attribute,
    calls_backward,
    defining,
    detaches_attributes_in_place,
    dotted_calls,
    fits_with_library,
    gradient_helper,
    gradient_members,
    gradient_scope,
    gradient_walk,
    imported_names,
    loss_helper_calls,
    may_hold_findings,
    may_hold_helpers,
    may_step,
    stores_attributes,
    touches_gradients,
    worth_summarising,
)
from tbptt_lint.analysis.prefilter import STATE_ON_SELF as ATTRIBUTE_STATE
from tbptt_lint.analysis.records import RECORD_BLOCK
from tbptt_lint.analysis.stateless_cells import optional_state_cells, stateless_cell_blocks
from tbptt_lint.analysis.step_resets import (
    may_reset_per_step,
    per_step_reset_blocks,
    reset_blocks,
)
from tbptt_lint.analysis.summaries import (
    INTERPRETATION,
    collect_constructions,
    summarise_gradients,
    summarise_losses,
    summarise_module,
)
from tbptt_lint.analysis.walk import children, forget_node_facts
from tbptt_lint.diagnostics import Finding
from tbptt_lint.settings import Settings
from tbptt_lint.strict import unparsable_cut


def parse(source: str) -> cst.Module:
    """libcst's tree of a module, after Python's own parser has vouched for it.

    Python's parser words errors better ("'(' was never closed"), and it is cheap next to
    libcst's. libcst recurses once per level of nesting, so code nested deeper than any real
    training loop is reported instead of risking its stack (3000 nested parentheses or an
    8000-term sum crash its parser outright)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        if error.lineno is None and "\0" in source:
            raise SourceSyntaxError(error.msg, *_null_byte_position(source)) from None
        raise SourceSyntaxError(error.msg, error.lineno or 1, error.offset or 1) from None
    except (ValueError, RecursionError, MemoryError) as error:
        message = (
            "too deeply nested to analyse" if isinstance(error, RecursionError) else (str(error))
        )
        line, column = _null_byte_position(source) if "\0" in source else (1, 1)
        raise SourceSyntaxError(message, line, column) from None
    depth, line = deepest(tree)
    if depth > MAX_NESTING:
        raise SourceSyntaxError(
            f"too deeply nested to analyse ({depth} levels, at most {MAX_NESTING})", line, 1
        )
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        # Python accepted it: libcst's tokenizer rejects some tab-after-spaces indentation
        # that Python resolves by expanding tabs, so try that.
        expanded = expand_indentation_tabs(source)
        if expanded != source:
            try:
                return cst.parse_module(expanded)
            except cst.ParserSyntaxError:
                pass
        raise SourceSyntaxError(
            error.message or "invalid syntax", error.raw_line, error.raw_column + 1
        ) from None
    except RecursionError:
        raise SourceSyntaxError("too deeply nested to analyse", 1, 1) from None


def _null_byte_position(source: str) -> tuple[int, int]:
    """1-based line and column of the first NUL character (Python names no position)."""
    offset = source.index("\0")
    line_start = max(source.rfind("\n", 0, offset), source.rfind("\r", 0, offset)) + 1
    line = source.count("\n", 0, offset) + 1
    if "\r" in source[:offset] and "\n" not in source[:offset]:
        line = source.count("\r", 0, offset) + 1  # old Mac line ends
    return line, offset - line_start + 1


MAX_NESTING = 150
LEADING_WHITESPACE = re.compile(r"^[ \t]+", re.MULTILINE)


def deepest(tree: ast.AST) -> tuple[int, int]:
    """The deepest nesting of the syntax tree, and a line where it happens."""
    best, line = 0, 1
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > best:
            best, line = depth, getattr(node, "lineno", line)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return best, line


def expand_indentation_tabs(source: str) -> str:
    return LEADING_WHITESPACE.sub(lambda match: match.group(0).expandtabs(8), source)


def summarize_source(
    source: str, module_name: str, block_cache: dict[object, ModuleSummary] | None = None
) -> ModuleSummary:
    """Phase 1: summarise the helpers of a module that other modules may import.

    Only top-level blocks that mention a cut or a backward are parsed. Raises nothing for
    blocks that do not parse: phase 2 reports syntax errors.

    `block_cache` (the language server's, kept between edits of one buffer): each top-level
    block's facts depend on its text alone, so they are kept by text and merged; the result
    is the summary computed without it."""
    summary = ModuleSummary(
        module_name, may_hold_file_findings(source), frozenset(imported_names(source))
    )
    if not summary.may_hold_findings:
        summary.called_methods = dotted_calls(source)
    summary.factories.update(module_factories(source, module_name))
    summary.loader_calls, summary.optimizer_calls = passed_calls(source, module_name)
    summary.optional_state_cells = optional_state_cells(source, module_name)
    if not may_hold_helpers(source):
        return summary
    # Step helpers and classes that run a backward for their callers (TBP012).
    gradient_helpers = summary.may_hold_findings or bool(OPTIMIZER_STEP.search(source))
    for block in top_level_blocks(source):
        if block_cache is None:
            _summarize_block(block.text, module_name, gradient_helpers, summary)
            continue
        key = (block.text, module_name, gradient_helpers)
        part = block_cache.get(key)
        if part is None:
            part = ModuleSummary(module_name)
            _summarize_block(block.text, module_name, gradient_helpers, part)
            block_cache[key] = part
        if not _merge_block(summary, part):
            # A name an earlier block defined too: summarised in place, as without the cache.
            _summarize_block(block.text, module_name, gradient_helpers, summary)
    forget_node_facts()
    return summary


def _block_context(text: str, module_name: str) -> tuple[cst.Module, FileContext] | None:
    """One block's tree and a context that knows the block's names only (a call of another
    block's function stays unknown here); None when the block does not parse."""
    try:
        module = parse(text)
    except SourceSyntaxError:
        return None
    context = FileContext(
        ImportMap(module, module_name),
        local_names=defined_names(text),
        interpretation=INTERPRETATION,
    )
    return module, context


def _summarize_block(
    text: str, module_name: str, gradient_helpers: bool, summary: ModuleSummary
) -> None:
    """Phase 1 for one top-level block: its facts, added to `summary`."""
    if not worth_summarising(text):
        if gradient_helpers and gradient_helper(text):
            _summarize_gradients(text, module_name, summary)
        return
    if not _worth_in_code(code_text(text)):
        return  # the words sit in its docstrings and comments only: no fact comes of them
    if len(text) > LARGE_CLASS_CHARACTERS and text.lstrip().startswith(("class ", "@")):
        text = prune_class(text, _summary_member)
    forget_node_facts()  # the last block's tree may go
    parsed = _block_context(text, module_name)
    if parsed is None:
        return
    module, context = parsed
    facts = summarise_module(module, context, _gradient_walk(text))
    for name, function_facts in facts.functions.items():
        if function_facts != FunctionFacts():
            summary.functions[f"{module_name}.{name}"] = function_facts
    summary.inplace_detach_classes |= {f"{module_name}.{n}" for n in facts.inplace_detach_classes}
    summary.forward_cuts.update({f"{module_name}.{n}": c for n, c in facts.forward_cuts.items()})
    summary.stateful_classes.update(
        {f"{module_name}.{n}": a for n, a in facts.stateful_classes.items()}
    )
    summary.state_methods.update({f"{module_name}.{n}": m for n, m in facts.state_methods.items()})
    summary.forward_resets.update(
        {f"{module_name}.{n}": r for n, r in facts.forward_resets.items()}
    )


def _merge_block(summary: ModuleSummary, part: ModuleSummary) -> bool:
    """Add one block's facts to the module's; False (and nothing added) when the block
    names something an earlier block named too, whose facts it would have built on."""
    named = (
        part.functions.keys() & summary.functions.keys()
        or part.forward_cuts.keys() & summary.forward_cuts.keys()
        or part.stateful_classes.keys() & summary.stateful_classes.keys()
        or part.state_methods.keys() & summary.state_methods.keys()
        or part.forward_resets.keys() & summary.forward_resets.keys()
    )
    if named:
        return False
    summary.functions.update(part.functions)
    summary.inplace_detach_classes |= part.inplace_detach_classes
    summary.forward_cuts.update(part.forward_cuts)
    summary.stateful_classes.update(part.stateful_classes)
    summary.state_methods.update(part.state_methods)
    summary.forward_resets.update(part.forward_resets)
    return True


def _worth_in_code(code: str) -> bool:
    """Whether a block worth summarising by its text is so by its code too, or steps or
    clears gradients there (its gradient facts): else no parse of it yields a fact."""
    return worth_summarising(code) or touches_gradients(code) or gradient_helper(code)


def may_hold_file_findings(source: str) -> bool:
    """`may_hold_findings` for a whole file, a library's fit (fastai), or a class whose step
    loop re-initialises its state on every pass (TBP015), which a model file shows without
    any backward."""
    return (
        may_hold_code_findings(source)
        or fits_with_library(source)
        or may_reset_per_step(source)
        or may_keep_state_aside(source)
    )


def may_hold_code_findings(source: str, helper_names: Iterable[str] = ()) -> bool:
    """`may_hold_findings`, for the words in the code alone: a backward or a detach in a
    docstring or a comment (torch documents `loss.backward()` in hundreds of them) holds no
    finding. The text is searched first: most files have no such word at all."""
    return may_hold_findings(source, helper_names) and may_hold_findings(
        code_text(source), helper_names
    )


def _gradient_walk(text: str) -> frozenset[str]:
    """The functions of a block worth summarising whose gradient facts phase 1 computes:
    none unless it steps or clears (a helper that only runs a backward has `does_backward`)."""
    if not touches_gradients(text):
        return frozenset()
    return gradient_walk(SourceFunctions(text))


def _summarize_gradients(text: str, module_name: str, summary: ModuleSummary) -> None:
    """The gradient facts of a block that holds nothing else of interest (a step helper, a
    wrapper optimizer, a loss object that runs the backward): only its members that step or
    back-propagate are parsed, and the interpreter does not run."""
    functions = SourceFunctions(text)
    if text.lstrip().startswith(("class ", "@")):
        members = gradient_members(functions)
        if members is None:
            return
        text = prune_class(text, lambda member: bool(members.search(member)))
    parsed = _block_context(text, module_name)
    if parsed is None:
        return
    module, context = parsed
    for name, facts in summarise_gradients(module, context, gradient_walk(functions)).items():
        summary.functions[f"{module_name}.{name}"] = facts
    # What the members that run a backward do so for their callers (TBP006).
    for name, facts in summarise_losses(module, context).items():  # type: ignore[assignment]
        qualified = f"{module_name}.{name}"
        summary.functions[qualified] = replace(
            summary.functions.get(qualified, FunctionFacts()),
            backprop_params=facts.params,  # type: ignore[attr-defined]
            returns_backprop=facts.returns,  # type: ignore[attr-defined]
        )


# A class this long is a test suite or a framework's core, not a model or state class that
# other modules import; parsing all of it cost 100 MB (torch's distributed_test.py, 450 kB).
LARGE_CLASS_CHARACTERS = 50_000
# Methods whose facts describe the class's objects to other modules.
INIT_METHOD = re.compile(r"[ \t]+(?:async\s+)?def\s+__init__\s*\(")
# A class that keeps a running total on its objects (`self.sum += val * n` in an
# `AverageMeter`): a loop that hands it a loss with its graph accumulates it (TBP006).
METER_CLASS = re.compile(r"\bself\.\w+\s*\+=\s*[A-Za-z_]")
SUMMARY_METHOD = re.compile(r"\s*(?:async\s+)?def\s+(?:forward|detach_?|__init__)\s*\(")


def _summary_member(text: str) -> bool:
    """Whether phase 1 keeps a member of a large class: nested classes (pruned in turn), the
    methods whose facts describe the class's objects, and what the prefilters want."""
    lines = (line for line in text.splitlines() if line.strip())
    header = next((line for line in lines if not line.lstrip().startswith("@")), "")
    return bool(
        header.lstrip().startswith("class ")
        or SUMMARY_METHOD.match(header)
        or worth_summarising(text)
        or may_hold_findings(text)
    )


def build_context(
    module: cst.Module,
    module_name: str,
    settings: Settings,
    index: ProjectIndex | None,
    local_names: frozenset[str] = frozenset(),
    gradient_walk: frozenset[str] | None = None,
    unasked: frozenset[str] = frozenset(),
) -> FileContext:
    """`gradient_walk`: the functions whose gradient facts are computed (all when None);
    `unasked`: top-level functions that no code of the file can call (see `separate_parts`),
    whose facts are not worked out again (phase 1's stand)."""
    imports = ImportMap(module, module_name)
    wrappings: list[tuple[str, Construction]] = []
    context = FileContext(
        imports,
        constructions=collect_constructions(module, imports, wrappings),
        local_names=local_names,
        detach_functions=frozenset(settings.detach_functions),
        recurrent_modules=frozenset(settings.recurrent_modules),
        module=module,
        interpretation=INTERPRETATION,
    )
    if index is not None:
        context.run = index.classes()
        context.inplace_detach_classes |= context.run.inplace_detach
        _import_facts(context, index)
        own = index.summaries.get(module_name)
        if own is not None:
            _local_facts(context, own)
    if index is not None:
        import_factories(context, index)
    own_wrappers(context, wrappings)
    factory_constructions(module, context)
    facts = summarise_module(module, context, gradient_walk, unasked)
    context.inplace_detach_classes |= facts.inplace_detach_classes
    context.forward_cuts.update(facts.forward_cuts)
    context.stateful_classes.update(facts.stateful_classes)
    context.state_methods.update(facts.state_methods)
    context.carrying_methods.update(facts.carrying_methods)
    context.forward_resets.update(facts.forward_resets)
    return context


def own_wrappers(context: FileContext, wrappings: list[tuple[str, Construction]]) -> None:
    """`model = Wrapper(model)` with a class of the run whose `forward` or `__call__` runs a
    backward (a training wrapper that back-propagates and hands back its loss): calls of the
    object run that code, so the object is of the wrapper's class. Any other wrapper
    (`DDP(model)`, `nn.DataParallel(model)`, a class the run does not define, or one whose
    call only hands on to the wrapped model) keeps the class the object was built from."""
    for name, built in wrappings:
        wrapper = built.qualified_class.rsplit(".", 1)[-1]
        if any(
            facts.does_backward or facts.returns_backprop or facts.backprop_params
            for method in CALL_METHODS
            for facts in context.methods_of_class(wrapper, method)
        ):
            context.constructions[name] = built


def _import_facts(context: FileContext, index: ProjectIndex) -> None:
    for dotted in context.imports.dotted_modules:
        module = index.module(dotted)
        if module is not None:
            _module_facts(context, dotted, module)
    for local, qualified in context.imports.aliases.items():
        module = index.module(qualified)
        if module is not None:
            _module_facts(context, local, module)
        found = index.lookup(qualified)
        if found is None:
            continue
        summary, name = found
        prefix = summary.module_name
        facts = summary.functions.get(f"{prefix}.{name}")
        if facts is not None:
            context.functions[local] = facts
        # An imported class's methods, for calls on its objects (`model.training_step(x, h)`).
        methods = f"{prefix}.{name}."
        for qualified_method, method_facts in summary.functions.items():
            method = qualified_method.removeprefix(methods)
            if method != qualified_method and "." not in method:
                context.functions[f"{local}.{method}"] = method_facts
        if f"{prefix}.{name}" in summary.inplace_detach_classes:
            context.inplace_detach_classes.add(local)
        cuts = summary.forward_cuts.get(f"{prefix}.{name}")
        if cuts:
            context.forward_cuts[local] = cuts
        resets = summary.forward_resets.get(f"{prefix}.{name}")
        if resets:
            context.forward_resets[local] = resets
        attributes = summary.stateful_classes.get(f"{prefix}.{name}")
        if attributes:
            context.stateful_classes[local] = attributes
            context.state_methods[local] = summary.state_methods.get(f"{prefix}.{name}", {})


def _module_facts(context: FileContext, local: str, summary: ModuleSummary) -> None:
    """`import utils` (or `from pkg import utils`): `utils.repackage(h)` and
    `utils.Model.method` name the module's functions."""
    prefix = summary.module_name + "."
    for qualified, facts in summary.functions.items():
        context.functions.setdefault(f"{local}.{qualified.removeprefix(prefix)}", facts)


def _local_facts(context: FileContext, summary: ModuleSummary) -> None:
    """Facts phase 1 found in this very module: its helpers may sit in blocks that were
    blanked out before parsing."""
    prefix = summary.module_name + "."
    for qualified, facts in summary.functions.items():
        context.functions.setdefault(qualified.removeprefix(prefix), facts)
    context.inplace_detach_classes |= {
        name.removeprefix(prefix) for name in summary.inplace_detach_classes
    }
    for qualified, cuts in summary.forward_cuts.items():
        context.forward_cuts.setdefault(qualified.removeprefix(prefix), cuts)
    for qualified, attributes in summary.stateful_classes.items():
        context.stateful_classes.setdefault(qualified.removeprefix(prefix), attributes)
    for qualified, resets in summary.forward_resets.items():
        context.forward_resets.setdefault(qualified.removeprefix(prefix), resets)
    for qualified, methods in summary.state_methods.items():
        context.state_methods.setdefault(qualified.removeprefix(prefix), methods)


def units_of(module: cst.Module) -> list[tuple[cst.CSTNode, list[cst.CSTNode], str | None]]:
    """(unit node, its statements, enclosing class) for the module body and every function."""
    units: list[tuple[cst.CSTNode, list[cst.CSTNode], str | None]] = [
        (module, list(module.body), None)
    ]
    stack: list[tuple[cst.CSTNode, str | None]] = [(module, None)]
    while stack:
        node, class_name = stack.pop()
        for child in children(node):
            child_type = type(child)
            if child_type is cst.FunctionDef:
                units.append((child, list(child.body.body), class_name))  # type: ignore[attr-defined]
                stack.append((child, None))
            elif child_type is cst.ClassDef:
                stack.append((child, child.name.value))  # type: ignore[attr-defined]
            elif not _holds_no_definition(child_type):
                stack.append((child, class_name))
    return units


# A def or class is a statement of a block's body: a simple statement line, an expression
# (a lambda's included), a decorator or a parameter list holds none, and is not walked.
_NO_DEFINITION: dict[type, bool] = {}


def _holds_no_definition(node_type: type) -> bool:
    known = _NO_DEFINITION.get(node_type)
    if known is None:
        known = _NO_DEFINITION[node_type] = issubclass(
            node_type,
            (
                cst.SimpleStatementLine,
                cst.BaseExpression,
                cst.Decorator,
                cst.Parameters,
                cst.Arg,
                cst.BaseSmallStatement,
            ),
        )
    return known


def build_model(
    source: str,
    module_name: str,
    settings: Settings,
    index: ProjectIndex | None = None,
    backward_helpers: Iterable[str] = (),
    narrow: bool = False,
) -> FileModel:
    """The model of all the kept blocks of a file, as one module (see `build_models`)."""
    models = build_models(source, module_name, settings, index, backward_helpers, narrow, False)
    return next(iter(models))


def build_models(
    source: str,
    module_name: str,
    settings: Settings,
    index: ProjectIndex | None = None,
    backward_helpers: Iterable[str] = (),
    narrow: bool = False,
    parts_allowed: bool = True,
) -> Iterator[FileModel]:
    """`narrow`: the file runs no backward of its own and is read only for a per-step reset
    (TBP015) or a loss a helper of the run back-propagates (TBP006), so only the blocks those
    need are kept (a 400 kB module of torch's would otherwise be interpreted whole).

    One model, unless the kept text is large and falls into parts that cannot see each other
    (`separate_parts`): then one model per part, each parsed and built after the last one was
    handed on, so that no tree of the whole file is held. Raises UnseparableParts when a part
    does not parse (the caller starts again with `parts_allowed=False`)."""
    helpers = tuple(backward_helpers)
    views = detaches_attributes_in_place(source)
    step_resets = per_step_reset_blocks(source)
    stateless_cells = stateless_cell_blocks(
        source, index.cell_names() if index is not None else frozenset()
    )
    loss_calls = loss_helper_calls(source, index.loss_helper_names() if index else ())
    aside = aside_state_blocks(source)
    own_steps = None if narrow else _own_backward_calls(source)
    if narrow:
        checked = _narrow_blocks(source, loss_calls)
    else:
        checked = keep_attribute_writers(
            source,
            lambda text: (
                may_hold_findings(text, helpers)
                # A loop handed a loss that a helper or an object's call back-propagated (TBP006).
                or bool(loss_calls and loss_calls.search(text))
                # A loop that calls a function or method of this file that runs a backward
                # (`hidden = self.train_window(x, hidden)`), which no import names.
                or bool(own_steps and own_steps.search(text))
                # A dataclass or NamedTuple whose fields may hold a state (`State(h, c)`).
                or bool(RECORD_BLOCK.search(text))
                or bool(METER_CLASS.search(text))
                or worth_summarising(text)
                # What a kept class's objects are built from (`self.model = RNNModel()`).
                or bool(INIT_METHOD.match(text))
                or (views and stores_attributes(text))
                # Inside a kept class only: its methods call what `__init__` builds.
                or (text.startswith((" ", "\t")) and builds_recurrent_attribute(text))
                # A step loop that re-initialises state on `self`, and the method it calls (TBP015).
                or bool(step_resets and step_resets(text))
                # A one-step cell, and the model that calls it without its state (TBP015).
                or bool(stateless_cells and stateless_cells(text))
                # A step loop that keeps a cell's new state aside, and the cell (TBP015).
                or bool(aside and aside(text))
            ),
            index.stateful_names() if index is not None else frozenset(),
        )
    # What TBP012 follows, in a file that steps an optimizer: code that steps or clears,
    # what calls it, and what builds the optimizers (not in a file with no backward).
    steps = not narrow and may_step(source, index.step_helper_names() if index else ())
    scope: frozenset[str] = frozenset()
    if steps:
        scope = gradient_scope(
            SourceFunctions(source),
            lambda text: may_hold_findings(text, helpers),
            index.gradient_helper_names() if index is not None else (),
        )
    kept = KeptForGradients(checked, defining(scope), steps, scope)
    reduced = keep_blocks(source, kept.wanted)
    flags = (step_resets is not None, stateless_cells is not None)
    separated = None if narrow or not parts_allowed else separate_parts(source, reduced)
    if separated is not None:
        parts, unasked = separated
        lines = LINE.findall(reduced)
        for part in parts:
            forget_node_facts()  # the last part's tree may go
            try:
                module = parse(part)
            except SourceSyntaxError:
                raise UnseparableParts from None
            model = _file_model(module, source, module_name, settings, index, flags, kept, unasked)
            model._lines = lines  # the kept text's lines, as one module of all parts has them
            yield model
        return
    try:
        module = parse(reduced)
    except SourceSyntaxError:
        if narrow:
            raise  # see check_source
        module = parse(source)  # the blocks were guessed wrong, or the file is broken
        kept = KeptForGradients(checked, None, steps, scope)
    yield _file_model(module, source, module_name, settings, index, flags, kept)


def _file_model(
    module: cst.Module,
    source: str,
    module_name: str,
    settings: Settings,
    index: ProjectIndex | None,
    flags: tuple[bool, bool],
    kept: KeptForGradients,
    unasked: frozenset[str] = frozenset(),
) -> FileModel:
    """The model of the kept blocks that `module` holds (all of them, or one part).
    `flags`: whether the file may reset a state per step, and leave a cell's state out."""
    steps, scope = kept.steps, kept.scope
    local_names = defined_names(source) if steps else frozenset()
    context = build_context(module, module_name, settings, index, local_names, scope, unasked)
    context.manual_optimization = bool(MANUAL_OPTIMIZATION.search(source))
    context.may_reset_per_step, context.may_leave_cell_state_out = flags
    context.may_drop_fetched_state = may_drop_fetched_state(source)
    # Methods without a loop matter when they keep state on their object between calls.
    attribute_state = bool(context.stateful_classes or ATTRIBUTE_STATE.search(source))
    context.source, context.module_name, context.index = source, module_name, index
    units = []
    gradient_units: list[tuple[cst.CSTNode, str | None]] = []
    loss_units: list[UnitEvents] = []
    loss_helpers = has_loss_helpers(context, source)
    local_helpers = {n for n, f in context.functions.items() if f.does_backward}
    backward_calls = gradient_backward_calls(context)
    for node, body, class_name in units_of(module):
        candidate = is_candidate_unit(body, context, local_helpers) and not (
            kept.only_for_gradients(node)
        )
        if candidate or (
            attribute_state
            and (
                (
                    class_name is not None
                    and keeps_state_between_calls(node, body, context, local_helpers, class_name)
                )
                or evaluates_kept_state(node, body, context, class_name)
            )
        ):
            interpreter = UnitInterpreter(node, context, class_name=class_name)
            if isinstance(node, cst.FunctionDef) and runs_without_gradients(node, context):
                interpreter.no_grad_depth = 1
            interpreter.run(body)
            units.append(repeat_between_calls(interpreter, body, source))
        else:
            if steps and (
                kept.only_for_gradients(node)
                or (backward_calls and calls_backward_method(body, backward_calls))
            ):
                gradient_units.append((node, class_name))
            if (loss_helpers and sums_in_loop(body) and loss_sites(body, context, class_name)) or (
                # A method that back-propagates and keeps a running total on its object.
                class_name is not None
                and isinstance(node, cst.FunctionDef)
                and node.name.value in local_helpers
                and sums_on_self(body)
            ):
                interpreter = UnitInterpreter(node, context, class_name=class_name)
                interpreter.run(body)
                loss_units.append(interpreter.events)
    return FileModel(module, context, units, gradient_units, loss_units)


class UnseparableParts(Exception):
    """A part of a file's kept blocks did not parse: the file is read whole instead."""


# A file's kept text is read in parts once its separate functions hold this many characters
# (a libcst tree of 500 kB of small loops takes 300 MB); each part holds about PART_CHARACTERS
# of them, beside the shared code, which must be no longer than SHARED_CHARACTERS (every part
# parses and reads it again). Tests set them low, to read every fixture in parts.
PARTS_FROM_CHARACTERS = 200_000
PART_CHARACTERS = 100_000
SHARED_CHARACTERS = 100_000
WORD = re.compile(r"\w+")
CALLED_NAME = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\s*\(")
CLASS_CALL = re.compile(r"\b[A-Z]\w*\s*\(")
SHARED_WORDS = re.compile(r"\b(?:global|nonlocal|self|cls|super|globals|locals|vars|eval|exec)\b")


def separate_parts(source: str, reduced: str) -> tuple[list[str], frozenset[str]] | None:
    """The kept text `reduced` of `source` as parts analysed one after the other, each the
    text with the blocks of the other parts blanked out, and the names of the separate
    functions; None when it is not worth it (the text is short) or not possible.

    Each part holds every kept block and statement that any other block may see, and a share
    of the *separate* functions: top-level `def`s (undecorated) whose name the file says
    nowhere else, that declare nothing `global` or `nonlocal`, build no object of a class
    (`Net(...)`: objects are known by name across the file) and call no function or class the
    file defines or imports by a bare name (a factory's object is known across the file too).
    No other code can reach such a function, and it reaches only the shared code, so its
    findings and those of the shared code are the same in every part as in the whole file,
    and what phase 2 would find out again about it for its callers is never asked."""
    if len(reduced) - reduced.count("\n") < PARTS_FROM_CHARACTERS:
        return None
    words = Counter(WORD.findall(source))
    own = defined_names(source) | imported_names(source)
    separate: list[Block] = []
    for block in top_level_blocks(reduced):
        if _separate(block.text, words, own):
            separate.append(block)
    size = sum(len(block.text) - block.text.count("\n") for block in separate)
    shared = len(reduced) - reduced.count("\n") - size
    if size < PARTS_FROM_CHARACTERS or shared > SHARED_CHARACTERS:
        return None  # what every part would hold is as large as a part
    groups: list[list[Block]] = [[]]
    held = 0
    for block in separate:
        if held >= PART_CHARACTERS:
            groups.append([])
            held = 0
        groups[-1].append(block)
        held += len(block.text)
    if len(groups) < 2 or not _python_parses(reduced):
        return None  # a broken file is read whole, as it would be without parts
    parts = [
        blank_blocks(reduced, [b for other in groups if other is not group for b in other])
        for group in groups
    ]
    return parts, frozenset(_defined_name(block.text) for block in separate)


def _python_parses(text: str) -> bool:
    try:
        ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def _separate(text: str, words: Counter[str], own: frozenset[str] | set[str]) -> bool:
    if not text.startswith(("def ", "async def ")):
        return False
    name = _defined_name(text)
    if not name or words[name] != 1:
        return False
    if SHARED_WORDS.search(text) or CLASS_CALL.search(text):
        return False
    # Its own name, in its `def` line, is the one word of the file that names it.
    return not any(called in own and called != name for called in CALLED_NAME.findall(text))


def _own_backward_calls(source: str) -> re.Pattern[str] | None:
    """Calls of the functions and methods of this file whose body runs a backward: a loop
    that calls one (`hidden = self.train_window(x, hidden)`) holds a backward through it,
    though no import names it."""
    names = sorted(
        name
        for name in SourceFunctions(source).matching(calls_backward)
        if not name.startswith("__") and name not in ("forward", "backward")
    )
    if not names:
        return None
    return re.compile(rf"\b(?:{'|'.join(map(re.escape, names))})\(")


def _narrow_blocks(source: str, loss_calls: re.Pattern[str] | None) -> Callable[[str], bool]:
    """The blocks of a file read for a per-step reset or a helper's loss alone: those of the
    reset, those that call a loss helper, and the `__init__` of the classes kept (what their
    objects are built from, as for any checked file)."""
    resets = reset_blocks(source)
    aside = aside_state_blocks(source)

    def wanted(text: str) -> bool:
        return bool(
            (resets and resets(text))
            or (aside and aside(text))
            or (loss_calls and loss_calls.search(text))
            or INIT_METHOD.match(text)
        )

    return wanted


class KeptForGradients:
    """Which blocks of a checked file are kept, and which only for TBP012 (a method that
    steps through a helper, an `__init__` that builds the optimizer): the functions kept only
    for it are left to TBP012, so that the other rules see what they saw before."""

    def __init__(
        self,
        checked: Callable[[str], bool],
        gradients: re.Pattern[str] | None,
        steps: bool,
        scope: frozenset[str] = frozenset(),
    ) -> None:
        self.checked = checked  # what the other rules check
        self.gradients = gradients
        self.steps = steps
        self.scope = scope  # the functions whose gradient facts are computed
        self.kept: set[str] = set()
        self.gradient_kept: set[str] = set()

    def wanted(self, text: str) -> bool:
        if self.checked(text):
            self.kept.add(_defined_name(text))
            return True
        if (self.steps and builds_optimizer(text)) or bool(
            self.gradients and self.gradients.search(text)
        ):
            self.gradient_kept.add(_defined_name(text))
            return True
        return False

    def only_for_gradients(self, node: cst.CSTNode) -> bool:
        if not isinstance(node, cst.FunctionDef):
            return False
        name = node.name.value
        return name in self.gradient_kept and name not in self.kept


def _defined_name(text: str) -> str:
    match = DEFINED_NAME.search(text)
    return match.group(1) if match else ""


MANUAL_OPTIMIZATION = re.compile(r"automatic_optimization\s*=\s*False")


def check_source(
    source: str,
    path: str,
    settings: Settings,
    index: ProjectIndex | None = None,
    module_name: str | None = None,
) -> list[Finding]:
    """Phase 2: the findings of every rule for one module's source text, before noqa and
    selection are applied. Raises SourceSyntaxError when the source does not parse."""
    helpers = index.backward_helper_names() if index is not None else ()
    # `self.net.train_step(loss, opt)`: a method of another file that back-propagates what it
    # is given, on an object whose class the file need not import (TBP006).
    dotted = index.dotted_loss_helpers().pattern if index is not None else None
    full = may_hold_code_findings(source, helpers)
    library_fit = not full and fits_with_library(source)
    # A model whose step loop resets its state, or a loop summing a loss a helper of the run
    # back-propagated: read for those alone.
    for_one_rule = not full and (
        may_reset_per_step(source)
        or bool(dotted and dotted.search(source))
        or may_keep_state_aside(source)
    )
    if not (full or library_fit or for_one_rule):
        return []
    module_name = module_name or _module_name(path)
    if index is None or module_name not in index.summaries:
        own = summarize_source(source, module_name)
        index = ProjectIndex({**(index.summaries if index else {}), module_name: own})
    if library_fit and not names_stateful_class(source, index):
        # A library's fit matters only over a model that keeps state on itself.
        library_fit = False
        if not for_one_rule:
            return []
    narrow = not (full or library_fit)
    forget_node_facts()
    try:
        try:
            try:
                findings = _run_rules(source, module_name, settings, index, helpers, narrow, True)
            except UnseparableParts:
                findings = _run_rules(source, module_name, settings, index, helpers, narrow, False)
        except SourceSyntaxError as error:
            if narrow:
                # The kept blocks were guessed wrong (a line continued at column 0) or the
                # file is broken: a file with no backward is neither parsed whole nor reported.
                unparsable_cut(
                    f"the blocks kept of {path} (line {error.line}: {error.message})", source
                )
                return []
            raise
    finally:
        forget_node_facts()  # the file's tree may go
    findings.sort(key=lambda f: (f.line, f.column, f.code))
    return findings


def _run_rules(
    source: str,
    module_name: str,
    settings: Settings,
    index: ProjectIndex,
    helpers: Iterable[str],
    narrow: bool,
    parts_allowed: bool,
) -> list[Finding]:
    """Every rule's findings on the file's model, or on each of its parts in turn (the shared
    code's findings, which every part repeats, once)."""
    from tbptt_lint.rules import ALL_RULES

    findings: list[Finding] = []
    seen: set[Finding] = set()
    models = build_models(source, module_name, settings, index, helpers, narrow, parts_allowed)
    for count, model in enumerate(models):
        for rule in ALL_RULES:
            for finding in rule().check(model):
                if count == 0:
                    findings.append(finding)
                    seen.add(finding)
                elif finding not in seen:
                    findings.append(finding)
    return findings


def names_stateful_class(source: str, index: ProjectIndex) -> bool:
    """Whether the source names a class of the run whose objects keep state on themselves
    (or a function that builds one)."""
    return any(re.search(rf"\b{re.escape(name)}\b", source) for name in index.stateful_names())


def _module_name(path: str) -> str:
    stem = path.replace("\\", "/").rsplit("/", 1)[-1]
    return stem[:-3] if stem.endswith(".py") else stem
