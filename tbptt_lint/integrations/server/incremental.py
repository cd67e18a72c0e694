"""Phase 2 of one buffer, block by block, re-checking only the blocks an edit can change.

A file's top-level `def` and `class` blocks are put in groups: two blocks share a group when
one mentions a name the other defines (the function or class, the methods and nested
functions it holds, the attributes it sets on `self`, the names it declares `global`), and
the statements outside blocks (imports, module-level code: "the skeleton") join the group of
every block that mentions a name they assign or that they mention. The analysis reads names,
so a block's findings depend on its group's text, the skeleton and the module's phase-1
summary (helpers' facts), and nothing else of the file.

Each group is checked on its own source: its blocks and those statements of the skeleton
it may read, the other blocks left out. A statement is kept when it shares a name with the
group's blocks or with a statement already kept; when the skeleton is the group's, every
statement is kept but imports and assignments of constants (`LR = 0.1`, a docstring), which
only their names reach (a star import is kept in every group). Kept statements lose their
comments and trailing blanks, so typing those changes no group's source; a finding that
reaches such a line, or whose message may quote one, is checked again on the statements as
written. An edit outside every function (an import added, a constant changed, a comment
typed) thus re-checks only the groups that name what it changed.

A group's findings are kept by its source (so a group the edit did not touch is found again
even when lines above it were added or removed: its findings are moved to where the group
now sits), the settings, the summaries of the modules it imports and those facts of the
module's own summary that its text names. The result is the one a whole-file check gives;
`tests/integrations/test_lsp_incremental.py` checks that against `lint_source` over random
edits, inside functions and outside them. Whatever the groups cannot be checked for (the
file does not parse, a group's source does not parse because a block was guessed wrong) is
checked whole; where the skeleton holds a line outside its statements that is neither blank
nor a comment (a line continued at column 0), or line breaks Python does not count, every
group's source holds the whole skeleton as written.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import keyword
import re
import tokenize
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
KEYWORDS = frozenset(keyword.kwlist)
PLAIN_TOKENS = frozenset(
    (
        tokenize.NEWLINE,
        tokenize.NL,
        tokenize.OP,
        tokenize.NUMBER,
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.ENDMARKER,
    )
)
# The line breaks `str.splitlines` cuts at and Python's parser does not.
OTHER_LINE_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
LITERAL_NODES = (
    ast.Constant,
    ast.List,
    ast.Tuple,
    ast.Set,
    ast.Dict,
    ast.UnaryOp,
    ast.BinOp,
    ast.unaryop,
    ast.operator,
    ast.expr_context,
)
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

    def _group_findings(
        self,
        check: CheckSource,
        results: Touched,
        text: str,
        path: str,
        settings: Settings,
        index: ProjectIndex,
        module_name: str,
        context: object,
        facts: _OwnFacts,
    ) -> list[Finding] | None:
        """The findings of one group's source, kept by it; None when it does not parse."""
        words = frozenset(WORD.findall(text))
        key = (text, path, id(settings), context, facts.named(words))
        raw = results.get(key)
        if raw is None:
            try:
                raw = check(text, path, settings, index, module_name)
            except SourceSyntaxError:
                return None
            results[key] = raw
            self.checked += 1
        else:
            self.reused += 1
        return raw  # type: ignore[return-value]

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
            raw: list[Finding] | None = None
            for verbatim in (False, True):
                text, lines = layout.source_of(group, verbatim)
                raw = self._group_findings(
                    check, results, text, path, settings, index, module_name, context, facts
                )
                if raw is None:
                    return whole()  # a block guessed wrong: the file parses, the group not
                if verbatim or not layout.strips_under(raw, lines):
                    break
            assert raw is not None
            found.extend(_placed(raw, lines, layout.owner, group))
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
    # The statements outside blocks, in the file's order; None where the file's lines are
    # not Python's (a form feed or other line break `str.splitlines` cuts at): then every
    # group's source holds all of the skeleton, as written.
    units: list[_Unit] | None
    # The units by the words that reach them (`relevant`), made on first use.
    by_word: dict[str, list[int]] | None = None

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
        units = _skeleton_units(source, tree, lines, owner, cache)
        return cls(lines, blocks, owner, infos, defined, aliases, units)  # type: ignore[arg-type]

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

    def source_of(self, group: Group, verbatim: bool = False) -> tuple[str, list[int]]:
        """The group's source and, for each of its lines, the 0-based line of the file it
        comes from: its blocks and the statements outside blocks that it may read (see
        `relevant`), in the file's order, those statements without their comments and
        trailing blanks unless `verbatim`."""
        wanted = set(group.blocks)
        if self.units is None:
            kept = [
                number
                for number, owner in enumerate(self.owner)
                if owner == SKELETON or owner in wanted
            ]
            return "".join(self.lines[number] for number in kept), kept
        pieces: list[tuple[int, list[str]]] = [
            (block.first_line, self.lines[block.first_line : block.end_line])
            for number, block in enumerate(self.blocks)
            if number in wanted
        ]
        for unit in self.relevant(group):
            assert unit.info is not None
            if verbatim or unit.info.stripped is None:
                text = self.lines[unit.first_line : unit.end_line]
            else:
                text = list(unit.info.stripped)
            pieces.append((unit.first_line, text))
        pieces.sort(key=lambda piece: piece[0])
        kept = [start + offset for start, text in pieces for offset in range(len(text))]
        return "".join(line for _, text in pieces for line in text), kept

    def relevant(self, group: Group) -> list[_Unit]:
        """The statements outside blocks whose text the group's findings may depend on: the
        statements that share a name with its blocks or with a statement already kept, and,
        when the skeleton is the group's, every statement but imports and assignments of
        constants (which only a name can reach)."""
        assert self.units is not None
        if self.by_word is None:
            self.by_word = {}
            for number, unit in enumerate(self.units):
                for word in unit.words() or ():
                    self.by_word.setdefault(word, []).append(number)
        kept = [False] * len(self.units)
        words: list[str] = []
        for number, unit in enumerate(self.units):
            found = unit.words()
            if found is None or (group.skeleton and unit.names is None):
                kept[number] = True
                words.extend(found or ())
        for number in group.blocks:
            words.extend(self.infos[number].mentioned)
        seen: set[str] = set()
        while words:
            word = words.pop()
            if word in seen:
                continue
            seen.add(word)
            for number in self.by_word.get(word, ()):
                if not kept[number]:
                    kept[number] = True
                    words.extend(self.units[number].words() or ())
        return [unit for number, unit in enumerate(self.units) if kept[number]]

    def strips_under(self, raw: Iterable[Finding], lines: Sequence[int]) -> bool:
        """Whether a finding of a group's source (`source_of`, not verbatim) reaches a line
        of a statement outside blocks whose comment or trailing blanks were taken out, or
        may quote one: such a group is checked again on the statements as written."""
        if self.units is None:
            return False
        stripped: set[int] = set()
        for unit in self.units:
            assert unit.info is not None
            if unit.info.stripped is not None:
                stripped.update(unit.first_line + n for n in unit.info.changed)
        if not stripped:
            return False

        def reaches(line: int) -> bool:
            return 1 <= line <= len(lines) and lines[line - 1] in stripped

        for finding in raw:
            if "#" in finding.message or any(
                reaches(line)
                for line in (
                    finding.line,
                    finding.end_line,
                    *(int(m.group(1)) for m in LINE_REFERENCE.finditer(finding.message)),
                )
            ):
                return True
            if finding.fix is not None and any(
                reaches(edit.location[0]) or reaches(edit.end_location[0])
                for edit in finding.fix.edits
            ):
                return True
        return False


@dataclass
class _Unit:
    """Top-level statements outside blocks, on lines of their own (statements that share a
    line are one unit)."""

    first_line: int  # 0-based
    end_line: int  # 0-based, one past the last
    # For imports and assignments of constants to names (a docstring too), which only a name
    # reaches: those names (see `_inert_names`). None for any other statement.
    names: frozenset[str] | None
    info: _UnitInfo | None = None

    def words(self) -> frozenset[str] | None:
        """The names that make the unit part of a group's source; None: every group's."""
        if self.names is not None:
            return self.names
        return None if self.info is None else self.info.words


@dataclass(frozen=True)
class _UnitInfo:
    """What a unit's text gives, kept by that text: its lines without comments and trailing
    blanks (None when tokenizing fails, or nothing was taken out), the 0-based lines that
    changed, and the words of its code, keywords left out (None: unknown, it is kept)."""

    stripped: tuple[str, ...] | None
    changed: frozenset[int]
    words: frozenset[str] | None


def _skeleton_units(
    source: str, tree: ast.Module, lines: list[str], owner: list[int], cache: Touched
) -> list[_Unit] | None:
    """The statements outside blocks, with what their text gives; None where the skeleton
    is to be kept as written (see `_Layout.units`)."""
    if OTHER_LINE_BREAKS.search(source):
        return None
    units: list[_Unit] = []
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        line = statement.lineno - 1
        end = statement.end_lineno or statement.lineno
        if any(owner[n] != SKELETON for n in range(line, min(end, len(owner)))):
            return None
        _add_statement(units, statement, line, end)
    if not _only_blanks_between(lines, owner, units):
        return None  # a line continued at column 0, say
    for unit in units:
        text = "".join(lines[unit.first_line : unit.end_line])
        info = cache.get(("unit", text))
        if not isinstance(info, _UnitInfo):
            info = cache[("unit", text)] = _unit_info(text)
        unit.info = info
    return units


def _only_blanks_between(
    lines: Sequence[str], owner: Sequence[int], units: Sequence[_Unit]
) -> bool:
    """Whether the skeleton's lines outside its statements are blank or comments alone."""
    inside = [False] * len(lines)
    for unit in units:
        for number in range(unit.first_line, min(unit.end_line, len(lines))):
            inside[number] = True
    return all(
        inside[number] or owner[number] != SKELETON or line.lstrip()[:1] in ("", "#")
        for number, line in enumerate(lines)
    )


def _add_statement(units: list[_Unit], statement: ast.stmt, line: int, end: int) -> None:
    names = _inert_names(statement)
    if units and line < units[-1].end_line:
        last = units[-1]
        last.end_line = max(last.end_line, end)
        last.names = None if last.names is None or names is None else last.names | names
        return
    units.append(_Unit(line, end, names))


def _inert_names(statement: ast.stmt) -> frozenset[str] | None:
    """The names that reach an import (those it binds, and its module's) or an assignment
    of constants (its targets; none for a docstring); None for any other statement."""
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        if any(alias.name == "*" for alias in statement.names):
            return None  # binds what the module holds
        names = set(WORD.findall(getattr(statement, "module", None) or ""))
        for alias in statement.names:
            names.update(WORD.findall(alias.name))
            if alias.asname:
                names.add(alias.asname)
        return frozenset(names)
    if _constant_assignment(statement):
        return frozenset(
            node.id
            for node in ast.walk(statement)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
        )
    return None


def _constant_assignment(statement: ast.stmt) -> bool:
    """`LR = 0.1`, `SIZES: list[int] = [1, 2]`, a docstring: names bound to literals."""
    if isinstance(statement, ast.Expr):
        return isinstance(statement.value, ast.Constant)
    if isinstance(statement, ast.Assign):
        targets: list[ast.expr] = list(statement.targets)
        value: ast.expr | None = statement.value
    elif isinstance(statement, ast.AnnAssign):
        targets, value = [statement.target], statement.value
    else:
        return False
    return all(isinstance(t, ast.Name) for t in targets) and (
        value is None or all(isinstance(node, LITERAL_NODES) for node in ast.walk(value))
    )


def _unit_info(text: str) -> _UnitInfo:
    lines = text.splitlines(keepends=True)
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, ValueError):
        return _UnitInfo(None, frozenset(), None)
    comments: dict[int, int] = {}
    in_string: set[int] = set()
    code: list[str] = []
    for token in tokens:
        if token.type == tokenize.COMMENT:
            comments[token.start[0] - 1] = token.start[1]
            continue
        if token.type == tokenize.NAME:
            code.append(token.string)
        elif token.type == tokenize.STRING:
            code.extend(WORD.findall(token.string))
        elif token.type not in PLAIN_TOKENS:
            return _UnitInfo(None, frozenset(), None)  # f-strings and the like: as written
        if token.start[0] < token.end[0]:
            in_string.update(range(token.start[0] - 1, token.end[0] - 1))
    stripped = list(lines)
    changed: set[int] = set()
    for number, line in enumerate(lines):
        if number in in_string:
            continue
        body = line.rstrip("\r\n")
        ending = line[len(body) :]
        cut = comments.get(number, len(body))
        if body.rstrip(" \t").endswith("\\") and number not in comments:
            continue
        new = body[:cut].rstrip(" \t") + ending
        if new != line:
            stripped[number] = new
            changed.add(number)
    return _UnitInfo(
        tuple(stripped) if changed else None, frozenset(changed), frozenset(code) - KEYWORDS
    )


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
        # Phase 2 reads the module's own `imported` and `called_methods` by name alone.
        self.imported: frozenset[str] = frozenset()
        self.called: frozenset[str] = frozenset()
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
            _freeze(summary.factories),
            _freeze(summary.optional_state_cells),
            _freeze(summary.loader_calls),
            _freeze(summary.optimizer_calls),
        )
        self.imported = summary.imported
        self.called = summary.called_methods

    def named(self, words: frozenset[str]) -> object:
        return (
            self.common,
            tuple(entry for parts, entry in self.entries if parts & words),
            _freeze(self.imported & words),
            _freeze(self.called & words),
        )


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
