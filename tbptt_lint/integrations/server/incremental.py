"""Phase 2 of one buffer, block by block, re-checking only the blocks an edit can change.

A file's top-level `def` and `class` blocks are put in groups: two blocks share a group when
one mentions a name the other defines (the function or class, the methods and nested
functions it holds, the attributes it sets on `self`, the names it declares `global`), and
the statements outside blocks (imports, module-level code: "the skeleton") join the group of
every block that mentions a name they assign or that they mention. The analysis reads names,
so a block's findings depend on its group's text, the skeleton and the module's phase-1
summary (helpers' facts), and nothing else of the file.

Each group is checked on its own source: the skeleton and the group's blocks, the other
blocks left out. Its findings are kept by that source (so a group the edit did not touch is
found again even when lines above it were added or removed: its findings are moved to where
the group now sits), the settings, the summaries of the modules it imports and those facts
of the module's own summary that its text names. The result is the one a whole-file check
gives; `tests/integrations/test_lsp_incremental.py` checks that against `lint_source` over
random edits. Whatever the groups cannot be checked for (the file does not parse, a group's
source does not parse because a block was guessed wrong) is checked whole.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from tbptt_lint.analysis import ModuleSummary, ProjectIndex, SourceSyntaxError
from tbptt_lint.analysis.chunks import Block, top_level_blocks
from tbptt_lint.diagnostics import Edit, Finding
from tbptt_lint.settings import Settings

CheckSource = Callable[..., list[Finding]]

WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DEFINED = re.compile(r"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+([A-Za-z_]\w*)", re.MULTILINE)
SELF_ATTRIBUTE = re.compile(r"\bself\s*\.\s*([A-Za-z_]\w*)")
DECLARED = re.compile(r"\b(?:global|nonlocal)[ \t]+([\w \t,]+)")
LINE_REFERENCE = re.compile(r"\bline (\d+)")
# Python's own parser stops here (see `analysis.api.parse`); a deeper file is checked whole.
MAX_NESTING = 150
SKELETON = -1


@dataclass(frozen=True)
class Group:
    """Some blocks (indices into the file's blocks) and whether the skeleton belongs to it
    (its findings are the group's to report)."""

    blocks: tuple[int, ...]
    skeleton: bool


class Touched(dict[object, object]):
    """A cache that keeps what one analysis used: entries read from `previous` or added."""

    def __init__(self, previous: dict[object, object]) -> None:
        super().__init__()
        self.previous = previous

    def get(self, key: object, default: object = None) -> object:
        if key in self:
            return self[key]
        found = self.previous.get(key, default)
        if found is not default:
            self[key] = found
        return found


class IncrementalChecker:
    """The block caches of one document. `check` is `analysis.check_source` (looked up by the
    caller at each call, so tests may replace it)."""

    def __init__(self) -> None:
        self.summary_blocks: dict[object, object] = {}
        self.block_infos: dict[object, object] = {}
        self.results: dict[object, object] = {}
        # How the last check went, for tests and the benchmark: groups checked, groups found.
        self.checked = 0
        self.reused = 0

    def summary_cache(self) -> Touched:
        """The phase-1 block cache for one analysis (`summarize_source(block_cache=...)`);
        `keep_summaries` then keeps what it used."""
        return Touched(self.summary_blocks)

    def keep_summaries(self, used: Touched) -> None:
        self.summary_blocks = dict(used)

    def findings(
        self,
        check: CheckSource,
        source: str,
        path: str,
        settings: Settings,
        index: ProjectIndex,
        module_name: str,
    ) -> list[Finding]:
        """`check(source, path, settings, index, module_name)`, group by group. Raises
        SourceSyntaxError as that call does."""
        self.checked = self.reused = 0

        def whole() -> list[Finding]:
            self.checked += 1
            self.results = {}
            return check(source, path, settings, index, module_name)

        infos = Touched(self.block_infos)
        layout = _Layout.of(source, infos)
        self.block_infos = dict(infos)
        if layout is None or not layout.blocks:
            return whole()
        facts = _OwnFacts(index.summaries.get(module_name))
        context = tuple(
            (name, id(summary)) for name, summary in index.summaries.items() if name != module_name
        )
        results = Touched(self.results)
        found: list[Finding] = []
        for group in layout.groups():
            text, lines = layout.source_of(group)
            words = frozenset(WORD.findall(text))
            key = (text, path, id(settings), context, facts.named(words))
            raw = results.get(key)
            if raw is None:
                try:
                    raw = check(text, path, settings, index, module_name)
                except SourceSyntaxError:
                    return whole()  # a block guessed wrong: the file parses, the group not
                results[key] = raw
                self.checked += 1
            else:
                self.reused += 1
            found.extend(_placed(raw, lines, layout.owner, group))  # type: ignore[arg-type]
        self.results = dict(results)
        found.sort(key=lambda f: (f.line, f.column, f.code))
        return found


@dataclass(frozen=True)
class _BlockInfo:
    """What grouping needs of one top-level block, kept by its text."""

    too_deep: bool
    mentioned: frozenset[str]
    # See `_bound_by`; `built`: the names bound to a call of a name, by that name (a name
    # imported under another name may be a class whatever its case).
    defined: frozenset[str]
    built: tuple[tuple[str, frozenset[str]], ...]
    aliases: frozenset[str]


@dataclass
class _Layout:
    lines: list[str]
    blocks: list[Block]
    # For each line (0-based): the index of its block, or SKELETON.
    owner: list[int]
    infos: list[_BlockInfo]
    # What the statements outside blocks bind (not imports), and the names they import
    # under another name.
    skeleton_defined: set[str]
    skeleton_aliases: set[str]

    @classmethod
    def of(cls, source: str, cache: Touched) -> _Layout | None:
        """None when the file does not parse (the whole-file check reports it), or its
        blocks cannot be told apart."""
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
        lines = source.splitlines(keepends=True)
        blocks = list(top_level_blocks(source))
        owner = [SKELETON] * len(lines)
        for number, block in enumerate(blocks):
            for line in range(block.first_line, block.end_line):
                owner[line] = number
        infos: list[_BlockInfo | None] = [None] * len(blocks)
        defined: set[str] = set()
        aliases: set[str] = set()
        for statement in tree.body:
            line = statement.lineno - 1
            number = owner[line] if 0 <= line < len(owner) else SKELETON
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if number == SKELETON or infos[number] is not None:
                    return None  # not one def or class a block
                text = blocks[number].text
                info = cache.get(text)
                if not isinstance(info, _BlockInfo):
                    info = cache[text] = _block_info(statement, text)
                infos[number] = info
                if info.too_deep:
                    return None
                continue
            if number != SKELETON or _deeper_than(statement, MAX_NESTING - 1):
                return None
            defined |= _assigned(statement)
            aliases |= _aliases(statement)
        if any(info is None for info in infos):
            return None
        return cls(lines, blocks, owner, infos, defined, aliases)  # type: ignore[arg-type]

    def groups(self) -> list[Group]:
        count = len(self.blocks)
        parent = list(range(count + 1))  # the skeleton is node `count`

        def find(node: int) -> int:
            while parent[node] != node:
                parent[node] = parent[parent[node]]
                node = parent[node]
            return node

        renamed = set(self.skeleton_aliases)
        for info in self.infos:
            renamed |= info.aliases
        defined: dict[str, list[int]] = {}
        mentioned: list[frozenset[str]] = []
        for number, info in enumerate(self.infos):
            names = set(info.defined)
            for head, built in info.built:
                if head in renamed:
                    names |= built
            for name in names:
                defined.setdefault(name, []).append(number)
            mentioned.append(info.mentioned)
        for name in self.skeleton_defined:
            defined.setdefault(name, []).append(count)
        skeleton_text = "".join(
            line for line, owner in zip(self.lines, self.owner, strict=True) if owner == SKELETON
        )
        mentioned.append(frozenset(WORD.findall(skeleton_text)))
        for node, words in enumerate(mentioned):
            for word in words:
                for other in defined.get(word, ()):
                    parent[find(other)] = find(node)
        members: dict[int, list[int]] = {}
        for node in range(count + 1):
            members.setdefault(find(node), []).append(node)
        return [
            Group(tuple(n for n in nodes if n != count), count in nodes)
            for nodes in members.values()
        ]

    def source_of(self, group: Group) -> tuple[str, list[int]]:
        """The group's source (the skeleton and its blocks, in the file's order) and, for each
        of its lines, the 0-based line of the file it comes from."""
        wanted = set(group.blocks)
        kept = [
            number
            for number, owner in enumerate(self.owner)
            if owner == SKELETON or owner in wanted
        ]
        return "".join(self.lines[number] for number in kept), kept


def _deeper_than(tree: ast.AST, limit: int) -> bool:
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return False


def _block_info(statement: ast.stmt, text: str) -> _BlockInfo:
    """What a top-level def or class binds that other blocks' analysis may read by name: its
    functions and classes (at any depth), the attributes it sets or reads on `self` and sets
    on anything, the names it declares global, and the targets of assignments that build an
    object, which the analysis keeps by name file-wide (`collect_constructions`): a call of a
    capitalised name, or (`built`) of a name that may be imported under another name."""
    names = set(DEFINED.findall(text)) | set(SELF_ATTRIBUTE.findall(text))
    for declared in DECLARED.findall(text):
        names.update(WORD.findall(declared))
    built: dict[str, set[str]] = {}
    aliases: set[str] = set()
    for node in ast.walk(statement):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.attr)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            aliases.update(a.asname for a in node.names if a.asname)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bound = {
                part.id if isinstance(part, ast.Name) else part.attr
                for target in targets
                for part in ast.walk(target)
                if isinstance(part, (ast.Name, ast.Attribute))
            }
            for capitalised, head in _calls(node.value):
                if capitalised:
                    names |= bound
                elif head is not None:
                    built.setdefault(head, set()).update(bound)
    return _BlockInfo(
        _deeper_than(statement, MAX_NESTING - 1),
        frozenset(WORD.findall(text)),
        frozenset(names),
        tuple((head, frozenset(bound)) for head, bound in built.items()),
        frozenset(aliases),
    )


def _calls(value: ast.expr) -> Iterable[tuple[bool, str | None]]:
    """For each call in `value`: whether the called name is capitalised, and the name its
    dotted path starts with."""
    for node in ast.walk(value):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        while isinstance(function, ast.Call):
            function = function.func
        last = (
            function.attr
            if isinstance(function, ast.Attribute)
            else function.id
            if isinstance(function, ast.Name)
            else ""
        )
        head = function
        while isinstance(head, (ast.Attribute, ast.Call, ast.Subscript)):
            head = head.func if isinstance(head, ast.Call) else head.value
        yield last[:1].isupper(), head.id if isinstance(head, ast.Name) else None


def _aliases(statement: ast.stmt) -> set[str]:
    return {
        alias.asname
        for node in ast.walk(statement)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
        if alias.asname
    }


def _assigned(statement: ast.stmt) -> set[str]:
    """Names a statement outside the blocks binds (not its imports, which every group's
    source holds): assignments, loop and `with` targets, functions and classes defined under
    an `if`, attributes set on module-level objects, imports under an `if` or `try`."""
    names: set[str] = set()
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return names
    for node in ast.walk(statement):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names


class _OwnFacts:
    """What a group's check reads of the module's own summary: every name it records, the
    facts of those the group's text names, and the module-wide facts."""

    def __init__(self, summary: ModuleSummary | None) -> None:
        self.entries: list[tuple[frozenset[str], object]] = []
        self.common: object = None
        if summary is None:
            return
        prefix = summary.module_name + "."
        by_name: tuple[Mapping[str, object], ...] = (
            summary.functions,
            summary.forward_cuts,
            summary.stateful_classes,
            summary.state_methods,
            summary.forward_resets,
        )
        for number, field in enumerate(by_name):
            for name, value in field.items():
                parts = frozenset(name.removeprefix(prefix).split("."))
                self.entries.append((parts, (number, name, _freeze(value))))
        self.common = (
            tuple(_freeze(frozenset(field)) for field in by_name),
            _freeze(summary.inplace_detach_classes),
            summary.may_hold_findings,
            _freeze(summary.imported),
            _freeze(summary.factories),
            _freeze(summary.optional_state_cells),
            _freeze(summary.loader_calls),
            _freeze(summary.optimizer_calls),
            _freeze(summary.called_methods),
        )

    def named(self, words: frozenset[str]) -> object:
        return self.common, tuple(entry for parts, entry in self.entries if parts & words)


def _freeze(value: object) -> object:
    """A hashable value equal for equal data, whatever the order sets were built in."""
    if isinstance(value, dict):
        return ("dict", tuple(sorted(((repr(k), _freeze(v)) for k, v in value.items()))))
    if isinstance(value, (set, frozenset)):
        return ("set", tuple(sorted(repr(_freeze(v)) for v in value)))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            tuple(_freeze(getattr(value, f.name)) for f in dataclasses.fields(value)),
        )
    return value


def _placed(
    raw: Iterable[Finding], lines: Sequence[int], owner: Sequence[int], group: Group
) -> list[Finding]:
    """The group's own findings (in its blocks, or in the skeleton when it is the group's),
    moved from the lines of its source to the file's."""

    def file_line(line: int) -> int:
        if 1 <= line <= len(lines):
            return lines[line - 1] + 1
        last = lines[-1] + 1 if lines else 0
        return last + line - len(lines)

    def file_end(line: int, column: int) -> int:
        # An end at the start of a line ends the line above it: the line after that one in
        # the group's source may sit far below in the file.
        return file_line(line - 1) + 1 if column == 1 and line > 1 else file_line(line)

    mine = set(group.blocks)
    if group.skeleton:
        mine.add(SKELETON)
    placed = []
    for finding in raw:
        line = file_line(finding.line)
        if not 1 <= line <= len(owner) or owner[line - 1] not in mine:
            continue
        fix = finding.fix
        if fix is not None:
            fix = dataclasses.replace(
                fix,
                edits=tuple(
                    Edit(
                        edit.content,
                        (file_line(edit.location[0]), edit.location[1]),
                        (file_end(*edit.end_location), edit.end_location[1]),
                    )
                    for edit in fix.edits
                ),
            )
        placed.append(
            dataclasses.replace(
                finding,
                message=LINE_REFERENCE.sub(
                    lambda m: f"line {file_line(int(m.group(1)))}", finding.message
                ),
                line=line,
                end_line=file_end(finding.end_line, finding.end_column),
                fix=fix,
            )
        )
    return placed
