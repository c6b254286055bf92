"""The documentation's commands and links work: what a newcomer copies must run.

Every fenced ``bash``/``sh``/``console`` block of README.md and docs/*.md is read (in
``console`` blocks, the lines that start with ``$ ``); in each command

* ``deepfake-audio SUBCOMMAND ... --flag`` (also ``python -m deepfake_audio``, and the
  original wrappers ``train_new_dataset.py`` and ``test_all_models.py``) must name a
  subcommand that exists and flags its parser has (the parser is built in-process: no
  subprocess per command);
* ``python bench/X.py ... --flag`` must name a script that exists and flags its argparse
  defines (read from its source, so no benchmark is imported);
* ``make TARGET`` must name a Makefile target.

Every line is checked, also the lines marked *not run*: the markers (a line ending in
``# not run: REASON``, or an HTML comment ``<!-- not run: REASON -->`` or
``<!-- not run "TEXT": REASON -->`` directly above a block) only keep a command from being
executed by tests/test_docs_run.py, whose docstring gives the rule; here they must be
well formed, give a reason and match a line.

Every relative link (``[text](path#anchor)``, images included) must point to a file that
exists and, for a Markdown file, to a heading that exists.
"""

from __future__ import annotations

import argparse
import ast
import re
import shlex
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from deepfake_audio.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
#: The original commands, thin wrappers over a subcommand (same options).
WRAPPERS = {"train_new_dataset.py": "train", "test_all_models.py": "compare"}
#: A line's own not-run marker: a trailing ``# not run: REASON``.
NOT_RUN_LINE = re.compile(r"#\s*not run\b:?\s*(?P<reason>[^#]*?)\s*$")
#: A block's not-run marker, on a line of its own directly above the fence: the whole block,
#: or with quoted texts only the block's lines holding one of them.
NOT_RUN_BLOCK = re.compile(
    r'^\s*<!--\s*not run(?P<texts>(?:\s+"[^"]+")*)\s*:\s*(?P<reason>.*?)\s*-->\s*$'
)
FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)")
SEPARATORS = {";", "&&", "||", "|", "&", "(", ")"}


@dataclass(frozen=True)
class Command:
    """One command line of a code block: where it is, its words, and why it is not run
    (None: tests/test_docs_run.py runs it); ``block`` is its block's first line."""

    doc: str
    line: int
    text: str
    words: tuple[str, ...]
    not_run: str | None = None
    block: int = 0

    def where(self) -> str:
        return f"{self.doc}:{self.line}: {self.text}"


@dataclass(frozen=True)
class Marker:
    """A block's ``<!-- not run ... -->`` comment: the texts that pick its lines (none: all)."""

    line: int
    texts: tuple[str, ...]
    reason: str

    def picks(self, text: str) -> bool:
        return not self.texts or any(t in text for t in self.texts)


@dataclass(frozen=True)
class Block:
    """A fenced code block: its language, first line, lines and the markers above it."""

    language: str
    first: int
    lines: tuple[str, ...]
    markers: tuple[Marker, ...] = ()


def _closes(line: str, fence: str) -> bool:
    """Whether ``line`` closes a block opened by ``fence`` (the same character, as many or more)."""
    bare = line.strip()
    return bare.startswith(fence) and set(bare) == {fence[0]}


def _blocks(path: Path) -> list[Block]:
    """Every fenced code block, with the not-run markers directly above its fence."""
    return _read_blocks(path)[0]


MISPLACED = "a not-run marker not directly above a code block"


def _read_blocks(path: Path) -> tuple[list[Block], list[str]]:
    """The blocks, and what is wrong with the markers: a comment that starts like one but is
    malformed, or one that is not directly above a fence (a blank line in between too)."""
    blocks, problems = [], []
    current: list | None = None
    fence, markers = "", []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = FENCE.match(line)
        if current is None and match:
            fence, current = match.group(1), [match.group(2).lower(), number + 1, [], markers]
            markers = []
        elif current is not None and _closes(line, fence):
            blocks.append(Block(current[0], current[1], tuple(current[2]), tuple(current[3])))
            current = None
        elif current is not None:
            current[2].append(line)
        elif re.match(r"^\s*<!--\s*not run", line):
            marker = NOT_RUN_BLOCK.match(line)
            if marker is None:
                problems.append(f"line {number}: a malformed not-run marker: {line.strip()}")
                continue
            texts = tuple(re.findall(r'"([^"]+)"', marker.group("texts")))
            markers.append(Marker(number, texts, marker.group("reason")))
        elif markers:
            problems += [f"line {m.line}: {MISPLACED}" for m in markers]
            markers = []
    problems += [f"line {m.line}: {MISPLACED}" for m in markers]
    return blocks, problems


def _words(text: str) -> tuple[str, ...]:
    """Shell words of ``text`` without its comment; separators (``;``, ``&&``...) kept as
    words of their own. Brackets of optional parts (``[--json]``) are dropped."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        words = list(lexer)
    except ValueError:  # an unbalanced quote in prose-like output: read it word by word
        words = text.split("#")[0].split()
    return tuple(w.strip("[]") for w in words if w.strip("[]"))


def _display(path: Path) -> str:
    """A document's name in failure messages: relative to the repository when inside it."""
    return path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)


def commands(path: Path) -> list[Command]:
    """Every command line of ``path``'s shell blocks, continuation lines joined."""
    name = _display(path)
    out = []
    for block in _blocks(path):
        if block.language not in SHELL_LANGUAGES:
            continue
        pending, start = "", block.first
        for number, line in enumerate(block.lines, block.first):
            if block.language == "console":
                if not line.startswith("$ ") and not pending:
                    continue
                line = line[2:] if line.startswith("$ ") and not pending else line
            if not pending:
                start = number
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            text = (pending + line).strip()
            pending = ""
            if text:
                why = _not_run(text, block)
                out.append(Command(name, start, text, _words(text), why, block.first))
    return out


def _not_run(text: str, block: Block) -> str | None:
    """Why a line is not run (its own marker first, then its block's), None when it is."""
    own = NOT_RUN_LINE.search(text)
    if own:
        return own.group("reason")
    return next((m.reason for m in block.markers if m.picks(text)), None)


def marker_problems(path: Path) -> list[str]:
    """What is wrong with ``path``'s not-run markers: malformed, misplaced, without a reason,
    or picking no command line of its block (a marker left behind by an edit)."""
    blocks, problems = _read_blocks(path)
    for block in blocks:
        lines = [c.text for c in commands(path) if c.block == block.first]
        for marker in block.markers:
            if not marker.reason:
                problems.append(f"line {marker.line}: a not-run marker without a reason")
            if not any(marker.picks(text) for text in lines):
                problems.append(f"line {marker.line}: a not-run marker that picks no command line")
    problems += [
        f"line {c.line}: `# not run` without a reason: {c.text}"
        for c in commands(path)
        if c.not_run == "" and NOT_RUN_LINE.search(c.text)
    ]
    return problems


def _invocations(words: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """``(program, arguments up to the next separator)`` for each program a line runs that
    this test checks: ``deepfake-audio``, a wrapper, ``bench/X.py`` or ``make``."""
    found = []
    for i, word in enumerate(words):
        following = list(words[i + 1 :])
        end = next((j for j, w in enumerate(following) if w in SEPARATORS), len(following))
        args = following[:end]
        name = Path(word).name
        previous = words[i - 1] if i else ""
        if name == "deepfake-audio" or (word == "deepfake_audio" and previous == "-m"):
            found.append(("deepfake-audio", args))
        elif name in WRAPPERS:
            found.append(("deepfake-audio", [WRAPPERS[name], *args]))
        elif word.startswith("bench/") and word.endswith(".py"):
            found.append((word, args))
        elif word == "make" and (not previous or previous in SEPARATORS):
            found.append(("make", args))
    return found


def _flags(args: list[str]) -> list[str]:
    """The long and short options among ``args`` (``--gain-db=-6,6`` is ``--gain-db``)."""
    return [a.split("=", 1)[0] for a in args if re.match(r"^--?[A-Za-z]", a)]


@cache
def cli_options() -> dict[str | None, set[str]]:
    """Option strings of the top-level parser (key None) and of each subcommand."""
    parser = build_parser()
    out: dict[str | None, set[str]] = {None: set(parser._option_string_actions)}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out[name] = set(sub._option_string_actions)
    return out


def _added_options(source: Path) -> set[str]:
    """Option strings of every ``add_argument`` call in ``source``."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    return {
        arg.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "add_argument"
        for arg in node.args
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value[:1] == "-"
    }


@cache
def script_options(script: str) -> set[str] | None:
    """Options of ``bench/X.py``'s argparse, None when the script does not exist. A script that
    only calls another module's ``main`` (``make_corpus.py``) has that module's options."""
    path = REPO / script
    if not path.is_file():
        return None
    options = _added_options(path)
    if not options:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                module = path.parent / f"{node.module}.py"
                if module.is_file():
                    options |= _added_options(module)
    return options | {"-h", "--help"}


@cache
def make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, re.MULTILINE))


def problems(command: Command) -> list[str]:
    """What is wrong with one command line (empty when nothing is)."""
    found = []
    for program, args in _invocations(command.words):
        if program == "make":
            targets = [t for t in args if not t.startswith("-") and "=" not in t]
            found += [f"no Makefile target {t!r}" for t in targets if t not in make_targets()]
        elif program == "deepfake-audio":
            options = cli_options()
            sub = args[0] if args and not args[0].startswith("-") else None
            if sub is not None and sub not in options:
                found.append(f"no subcommand {sub!r}")
                continue
            flags = _flags(args[1:] if sub else args)
            found += [
                f"deepfake-audio {sub or ''} has no {f}" for f in flags if f not in options[sub]
            ]
        else:
            known = script_options(program)
            if known is None:
                found.append(f"no script {program}")
                continue
            found += [f"{program} has no {f}" for f in _flags(args) if f not in known]
    return found


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """The anchors of a Markdown file's headings (outside code blocks), GitHub-numbered."""
    seen: Counter[str] = Counter()
    out = set()
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            in_code = not in_code
            continue
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if in_code or not heading:
            continue
        slug = _slug(heading.group(1))
        out.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
        seen[slug] += 1
    return frozenset(out)


def broken_links(path: Path) -> list[str]:
    """Relative links of ``path`` (outside code blocks and inline code) that lead nowhere."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"^\s*```.*?^\s*```", "", text, flags=re.MULTILINE | re.DOTALL)
    text = re.sub(r"`[^`\n]*`", "", text)
    out = []
    for target in re.findall(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, mailto:...
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            out.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            out.append(f"{target}: no heading with anchor #{anchor}")
    return out


#: An inline command: ``deepfake-audio SUBCOMMAND ...``, a wrapper, a bench script or make.
INLINE_COMMAND = re.compile(
    r"^(deepfake-audio|python3? (bench/|train_new_dataset|test_all_models)|make )"
)


def inline_commands(path: Path) -> list[Command]:
    """Inline code spans of the prose that are whole commands (``deepfake-audio evaluate
    --run RUN``), wrapped lines joined. A span whose second word is neither a word nor an
    option is prose about the program, not a command: ``deepfake-audio predict/evaluate``
    names commands, ``deepfake-audio 0.1.0`` is output."""
    text = path.read_text(encoding="utf-8")
    # blocks blanked, not removed, so that line numbers stay those of the file
    blank = lambda block: "\n" * block.group(0).count("\n")  # noqa: E731
    text = re.sub(r"^\s*```.*?^\s*```", blank, text, flags=re.MULTILINE | re.DOTALL)
    out = []
    for match in re.finditer(r"`([^`]+)`", text):
        span = " ".join(match.group(1).split())
        words = _words(span)
        second = words[1] if len(words) > 1 and words[0] == "deepfake-audio" else "-"
        if INLINE_COMMAND.match(span) and re.fullmatch(r"[a-z][a-z-]*|-.*", second):
            line = text.count("\n", 0, match.start()) + 1
            out.append(Command(_display(path), line, span, words))
    return out


DOC_IDS = [p.relative_to(REPO).as_posix() for p in DOCS]


@pytest.mark.parametrize("doc", DOCS, ids=DOC_IDS)
def test_documented_commands_exist(doc: Path) -> None:
    bad = [f"{c.where()}\n    {p}" for c in commands(doc) for p in problems(c)]
    assert not bad, "documented commands that would fail:\n" + "\n".join(bad)


@pytest.mark.parametrize("doc", DOCS, ids=DOC_IDS)
def test_inline_commands_exist(doc: Path) -> None:
    bad = [f"{c.where()}\n    {p}" for c in inline_commands(doc) for p in problems(c)]
    assert not bad, "commands in the prose that would fail:\n" + "\n".join(bad)


@pytest.mark.parametrize("doc", DOCS, ids=DOC_IDS)
def test_not_run_markers_are_well_formed(doc: Path) -> None:
    assert not marker_problems(doc), marker_problems(doc)


@pytest.mark.parametrize("doc", DOCS, ids=DOC_IDS)
def test_relative_links_resolve(doc: Path) -> None:
    assert not broken_links(doc), broken_links(doc)


# --- the checker itself: each rule can fail ---------------------------------------------


def _problems_of(text: str) -> list[str]:
    return problems(Command("x.md", 1, text, _words(text)))


def test_the_checker_catches_what_it_should() -> None:
    assert _problems_of("deepfake-audio train --data-root R --epochs 3  # fine") == []
    assert _problems_of("deepfake-audio train --no-such-flag") == [
        "deepfake-audio train has no --no-such-flag"
    ]
    assert _problems_of("deepfake-audio trian --epochs 3") == ["no subcommand 'trian'"]
    assert _problems_of("deepfake-audio --version") == []
    assert _problems_of("python3 test_all_models.py --audio_dir D --bogus") == [
        "deepfake-audio compare has no --bogus"
    ]
    assert _problems_of("for m in a b; do deepfake-audio train --model $m --oops; done") == [
        "deepfake-audio train has no --oops"
    ]
    assert _problems_of("python bench/bench_zoo.py --data D --epochs 6") == []
    assert _problems_of("python bench/bench_zoo.py --nope") == ["bench/bench_zoo.py has no --nope"]
    assert _problems_of("python bench/make_corpus.py /tmp/c --files 750") == []
    assert _problems_of("python bench/no_such_bench.py") == ["no script bench/no_such_bench.py"]
    assert _problems_of("make demo && make nothing-here") == ["no Makefile target 'nothing-here'"]
    assert _problems_of("deepfake-audio train [--gain-db=-6,6] [--augment a,b]") == []


def test_blocks_not_run_markers_and_console_prompts(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text(
        "```console\n$ deepfake-audio predict a.wav \\\n    --json\nFAKE 0.9 --not-a-flag\n```\n"
        "```bash\ndeepfake-audio predict --bad-flag x.wav  # not run: a reason\n```\n"
        "```\ndeepfake-audio predict --untagged-blocks-are-not-read\n```\n"
        '<!-- not run "serve": blocks -->\n'
        "```sh\ndeepfake-audio models\ndeepfake-audio serve\n```\n"
        "<!-- not run: all of it -->\n```bash\nmake demo\n```\n"
    )
    assert [(c.line, c.words[:2], c.not_run) for c in commands(doc)] == [
        (2, ("deepfake-audio", "predict"), None),
        (7, ("deepfake-audio", "predict"), "a reason"),  # not run, still checked:
        (14, ("deepfake-audio", "models"), None),
        (15, ("deepfake-audio", "serve"), "blocks"),
        (19, ("make", "demo"), "all of it"),
    ]
    assert problems(commands(doc)[1]) == ["deepfake-audio predict has no --bad-flag"]
    assert marker_problems(doc) == []


def test_the_marker_checker_catches_bad_markers(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text(
        '<!-- not run "nothing like it": stale -->\n```bash\ndeepfake-audio models\n```\n'
        "<!-- not run: far from its block -->\n\n```bash\ndeepfake-audio models\n```\n"
        "<!-- not run -->\n```bash\ndeepfake-audio models\n```\n"
        "```bash\ndeepfake-audio models  # not run\n```\n"
    )
    assert marker_problems(doc) == [
        "line 5: a not-run marker not directly above a code block",
        "line 10: a malformed not-run marker: <!-- not run -->",
        "line 1: a not-run marker that picks no command line",
        "line 15: `# not run` without a reason: deepfake-audio models  # not run",
    ]


def test_inline_commands_are_read_from_the_prose(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text(
        "Run `deepfake-audio evaluate\n--run RUN --bogus` or `deepfake-audio predict/evaluate`;\n"
        "it prints `deepfake-audio 0.1.0`.\n"
        "```bash\necho `deepfake-audio train --in-a-block`\n```\n`make demo` and `ls -l`.\n"
    )
    found = inline_commands(doc)
    assert [(c.line, c.text) for c in found] == [
        (1, "deepfake-audio evaluate --run RUN --bogus"),
        (7, "make demo"),
    ]
    assert problems(found[0]) == ["deepfake-audio evaluate has no --bogus"]


def test_the_link_checker_catches_missing_files_and_anchors(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# A title, with `code`\n## Same\n## Same\n")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "[ok](other.md#a-title-with-code) [ok](other.md#same-1) [web](https://x.org/a)\n"
        "[gone](missing.md) [bad anchor](other.md#nope) `[in code](nowhere.md)`\n"
        "```\n[in a block](nowhere.md)\n```\n"
    )
    assert broken_links(doc) == [
        "missing.md: no such file",
        "other.md#nope: no heading with anchor #nope",
    ]
