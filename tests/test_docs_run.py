"""The documentation's commands run: what a newcomer copies works on real (tiny) data.

Every command line of README.md's and docs/*.md's ``bash``/``sh``/``console`` blocks (read
as tests/test_docs.py reads them, which also checks every line's subcommand and flags) is
executed here, or is not run for a stated reason. The rule:

* **A block runs on its own**, its lines in document order, in a fresh copy of a workspace
  in which the names the docs use are tiny real things (``WORKSPACE`` below: ``ROOT``,
  ``clip.wav``, ``my_clips/``, ``RUN``...). A path a block writes before it reads it
  (``--output-dir RUN``) is removed from its copy first. Every line must exit 0; the first
  that does not fails the block's test with the doc, line, command and its output.
* **``deepfake-audio ...``**, ``python -m deepfake_audio ...`` and the original wrappers
  (``python3 train_new_dataset.py``, ``python3 test_all_models.py``) run in-process through
  ``deepfake_audio.cli.main`` (no torch import per command), as written except for three
  things the test controls: parts in brackets (a synopsis's ``[--json]``) are left out;
  ``train`` gets ``--epochs 1`` appended (the last value wins: a docs test checks that the
  command works, not how long it trains, and a 10-epoch run costs a minute on a loaded CPU);
  ``serve`` runs with ``uvicorn.run`` replaced by requests to its app (``GET /``,
  ``/api/health``, ``POST /api/analyze`` with clip.wav, as the curl line of docs/serve.md),
  so that it returns.
* **Any other line** (``espeak-ng ...``, ``python -c ...``) runs with bash in the
  workspace, the virtualenv's ``bin`` first on PATH.
* **Not run, as a category:** ``make ...`` and ``python bench/...`` lines (they install
  packages or build the demo; benchmarks run for minutes to an hour).
* **Not run, by a marker** that gives the reason:
  ``<!-- not run: REASON -->`` on the line directly above a block's fence (the whole block),
  ``<!-- not run "TEXT" "TEXT2": REASON -->`` there (the block's lines holding one of the
  texts), or a line ending in ``# not run: REASON``. HTML comments do not show in the
  rendered page: prefer them. A not-run ``deepfake-audio`` line is still parsed here by the
  real parser (choices, types), and test_docs.py checks its flags.

Blocks whose lines train are marked ``slow``. ``test_every_command_line_is_run_or_not_run``
fails for a command line that escapes the rule (in a block of another language, say). With
``DOCS_RUN_TIMES=FILE`` set, each line's time is appended to FILE.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from deepfake_audio.audio import write_audio
from deepfake_audio.cli import build_parser, main
from tests.test_docs import DOCS, REPO, SHELL_LANGUAGES, WRAPPERS, Command, _blocks, commands

PYTHONS = {"python", "python3"}
SHELL_SYNTAX = {";", "&&", "||", "|", "&", "(", ")", ">", "<", ">>", "<<"}
#: Options that name what a command writes: a block that writes a workspace path before
#: reading it gets a copy of the workspace without it.
OUTPUT_OPTIONS = {"--output-dir", "--output_dir", "--output", "-o"}
#: What the test appends to a ``train`` line (none to ``--resume``: it keeps its epochs).
TRAIN_EXTRA = ("--epochs", "1")
RATE = 16000
#: Each line's limit, for a subprocess; an in-process command is not interrupted.
SHELL_TIMEOUT = 300


# --- what each line is --------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """How one command line is handled: ``cli`` (``argv`` in-process), ``shell`` (bash),
    ``skip`` (not run, ``why``) or ``none`` (a comment)."""

    command: Command
    kind: str
    argv: tuple[str, ...] = ()
    why: str = ""

    def shown(self) -> str:
        if self.kind == "cli":
            return f"deepfake-audio {shlex.join(self.argv)}  (in-process)"
        return f"bash -c {shlex.quote(self.command.text)}"


def _tokens(text: str) -> list[str]:
    """Shell words of ``text`` without its comment, operators (``&&``, ``|``...) as words."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return list(lexer)


def _without_brackets(tokens: list[str]) -> list[str]:
    """``tokens`` less the optional parts of a synopsis: ``[--json]``, ``[--model M ...]``."""
    out, inside = [], False
    for token in tokens:
        if token.startswith("["):
            inside = True
        if not inside:
            out.append(token)
        elif token.endswith("]"):
            inside = False
    return out


def cli_argv(tokens: list[str]) -> list[str] | None:
    """The arguments of the ``deepfake-audio`` invocation that ``tokens`` start with (the
    program itself, ``python -m deepfake_audio`` or a wrapper), None for another program."""
    if not tokens:
        return None
    if Path(tokens[0]).name == "deepfake-audio":
        return tokens[1:]
    if tokens[0] in PYTHONS and tokens[1:3] == ["-m", "deepfake_audio"]:
        return tokens[3:]
    if tokens[0] in PYTHONS and len(tokens) > 1 and Path(tokens[1]).name in WRAPPERS:
        return [WRAPPERS[Path(tokens[1]).name], *tokens[2:]]
    return None


def plan(command: Command) -> Step:
    """What the runner does with ``command`` (see the module's rule)."""
    if command.not_run is not None:
        return Step(command, "skip", why=command.not_run)
    if not command.words:
        return Step(command, "none")
    try:
        tokens = _tokens(command.text)
    except ValueError:  # an unbalanced quote: bash says what is wrong with it
        return Step(command, "shell")
    if tokens[0] == "make":
        return Step(command, "skip", why="a make target (installs, or builds the demo)")
    if tokens[0] in PYTHONS and len(tokens) > 1 and tokens[1].startswith("bench/"):
        return Step(command, "skip", why="a benchmark (minutes to an hour)")
    argv = cli_argv(_without_brackets(tokens))
    plain = not any(t in SHELL_SYNTAX or "$" in t or "*" in t for t in tokens)
    if argv is None or not plain:
        return Step(command, "shell")
    if argv and argv[0] == "train" and "--resume" not in argv:
        argv = [*argv, *TRAIN_EXTRA]
    return Step(command, "cli", tuple(argv))


def blocks_of(doc: Path) -> list[list[Step]]:
    """Each shell block's steps, in document order."""
    by_block: dict[int, list[Step]] = {}
    for command in commands(doc):
        by_block.setdefault(command.block, []).append(plan(command))
    return list(by_block.values())


def _runs(steps: list[Step]) -> bool:
    return any(s.kind in ("cli", "shell") for s in steps)


def _trains(steps: list[Step]) -> bool:
    return any(s.kind == "cli" and s.argv[:1] == ("train",) for s in steps)


BLOCKS = [(doc, steps) for doc in DOCS for steps in blocks_of(doc) if _runs(steps)]


def _block_id(doc: Path, steps: list[Step]) -> str:
    return f"{doc.relative_to(REPO).as_posix()}:{steps[0].command.block}"


# --- the workspace ------------------------------------------------------------------------


def _speech_like(rng: np.random.Generator, label: str, seconds: float = 1.0) -> np.ndarray:
    """A clip a detector can tell apart: a clipped harmonic buzz (fake) or a wandering tone in
    noise (real); distinct for every draw, so no two files are duplicates."""
    t = np.arange(round(RATE * seconds)) / RATE
    f0 = rng.uniform(100, 250)
    if label == "fake":
        phases = rng.uniform(0, 6, size=5)
        buzz = sum(np.sin(2 * np.pi * f0 * k * t + phases[k - 1]) / k for k in range(1, 6))
        x = np.clip(3 * buzz, -1, 1)
    else:
        envelope = np.convolve(rng.standard_normal(t.size), np.ones(200) / 200, "same")
        x = np.sin(2 * np.pi * f0 * t) * envelope + rng.standard_normal(t.size)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def _write(path: Path, samples: np.ndarray) -> None:
    write_audio(path, samples, RATE)


def _labelled_tree(root: Path, rng: np.random.Generator, per_split: dict[str, int]) -> None:
    for split, count in per_split.items():
        for label in ("fake", "real"):
            for i in range(count):
                _write(root / split / label / f"{label}_{i}.wav", _speech_like(rng, label))


def _cli(*argv: str) -> None:
    """A command the workspace is built with (it must work: this is not what is tested)."""
    assert main(list(argv)) == 0, f"building the workspace: deepfake-audio {shlex.join(argv)}"


def _link_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, copy_function=os.link)
    else:
        os.link(source, target)


#: The names the docs' commands use, and what each is in the workspace (made by ``_build``).
WORKSPACE = {
    "ROOT": "a Fake-or-Real tree: for-2sec/{training,validation,testing}/{fake,real}/, "
    "3/2/2 one-second clips per label",
    "dataset_root, MY_LABELLED_ROOT, data/for-2sec": "the same data (data/for-2sec: the "
    "for-2sec folder itself)",
    "clip.wav, clip.m4a, call.m4a": "one clip each",
    "my_clips/, DIR/": "two clips under fake/ and two under real/",
    "folder/": "two clips",
    "recordings/": "a.wav and b.mp3, which is not audio (as in docs/using_models.md)",
    "runs/A, runs/B": "two seed_cnn runs of one epoch in batches of 2 (seeds 0 and 1; "
    "seed_cnn scores 3x faster than lcnn_lfcc)",
    "RUN, runs/R, runs/20260101_120000, demo/run, RUN_OR_CKPT": "copies of runs/A",
    "CKPT, A.safetensors / B.safetensors": "runs/A's final model / runs/A's and runs/B's",
    "run.toml": "the run.toml of docs/training.md's toml block",
}


def _run_toml() -> str:
    """The toml block of docs/training.md that describes run.toml (the file the docs' train
    --config line reads); a bare one if there is none."""
    for block in _blocks(REPO / "docs" / "training.md"):
        if block.language == "toml" and "run.toml" in "\n".join(block.lines):
            return "\n".join(block.lines) + "\n"
    return "seed = 0\n"


def _build(base: Path) -> None:
    base.mkdir()
    rng = np.random.default_rng(0)
    _labelled_tree(base / "ROOT" / "for-2sec", rng, {"training": 3, "validation": 2, "testing": 2})
    for name in ("dataset_root", "MY_LABELLED_ROOT"):
        shutil.copytree(base / "ROOT", base / name)
    shutil.copytree(base / "ROOT" / "for-2sec", base / "data" / "for-2sec")
    for name in ("clip.wav", "clip.m4a", "call.m4a", "folder/one.wav", "folder/two.flac"):
        _write(base / name, _speech_like(rng, "fake"))
    for label in ("fake", "real"):
        for i in range(2):
            _write(base / "my_clips" / label / f"{label}_{i}.wav", _speech_like(rng, label))
    shutil.copytree(base / "my_clips", base / "DIR")
    _write(base / "recordings" / "a.wav", _speech_like(rng, "real"))
    (base / "recordings" / "b.mp3").write_bytes(b"not audio at all" * 8)
    (base / "run.toml").write_text(_run_toml(), encoding="utf-8")

    os.chdir(base)
    for name, seed in (("A", "0"), ("B", "1")):
        # batches of 2: three steps, enough for scores that calibrate can fit
        _cli("train", "--data-root", "ROOT", "--model", "seed_cnn", "--epochs", "1",
             "--batch-size", "2", "--seed", seed, "--output-dir", f"runs/{name}",
             "--no-progress")  # fmt: skip
    run = base / "runs" / "A"
    for name in ("RUN", "runs/R", "runs/20260101_120000", "demo/run", "RUN_OR_CKPT"):
        _link_copy(run, base / name)
    final = "fake_or_real_classifier.safetensors"
    _link_copy(run / final, base / "CKPT")
    _link_copy(run / final, base / "A.safetensors")
    _link_copy(base / "runs" / "B" / final, base / "B.safetensors")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The workspace every block copies, built once. It is built where the blocks run, then
    moved aside: a block's copy (hard links: same sizes and times) at that same path finds
    every clip in the decode cache, which is the module's own (never the user's)."""
    root = tmp_path_factory.mktemp("docs")
    cwd = Path.cwd()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEEPFAKE_AUDIO_CACHE", str(root / "cache"))
        try:
            _build(root / "work")
        finally:
            os.chdir(cwd)
        (root / "work").rename(root / "base")
        yield root / "base"
    shutil.rmtree(root, ignore_errors=True)


# --- running a block ----------------------------------------------------------------------


def written_first(steps: list[Step]) -> list[str]:
    """Paths that a block's commands write (``--output-dir X``) before any of them reads X."""
    seen: set[str] = set()
    out = []
    for step in steps:
        for i, token in enumerate(step.argv):
            if token in OUTPUT_OPTIONS and i + 1 < len(step.argv):
                target = step.argv[i + 1]
                if target not in seen and target not in out:
                    out.append(target)
            seen.add(token)
    return out


def _serve_once(app, host: str = "", port: int = 0, **_: object) -> None:
    """``uvicorn.run``'s stand-in: the requests a user would make, then return."""
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        for path in ("/", "/api/health"):
            response = client.get(path)
            assert response.status_code == 200, f"GET {path}: {response.status_code}"
        with open("clip.wav", "rb") as clip:
            response = client.post(
                "/api/analyze", files={"file": ("clip.wav", clip)}, data={"aggregate": "max"}
            )
        assert response.status_code == 200, f"POST /api/analyze: {response.text[:500]}"
        verdict = response.json()["files"][0]["verdict"]
    print(f"served on {host}:{port}: GET /, /api/health; POST /api/analyze clip.wav: {verdict}")


def _run_cli(argv: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> tuple[int | str, str]:
    """Exit code (or "exception") and a traceback, if any, of one in-process command."""
    if argv[:1] == ("serve",):
        import uvicorn

        monkeypatch.setattr(uvicorn, "run", _serve_once)
    try:
        return main(list(argv)), ""
    except SystemExit as exc:  # --version, --help, usage errors
        code = exc.code
        return (code if isinstance(code, int) else 0 if code is None else 1), ""
    except Exception:
        return "exception", traceback.format_exc()


def _run_shell(text: str, cwd: Path) -> tuple[int | str, str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    try:
        done = subprocess.run(
            ["bash", "-c", text], cwd=cwd, env=env, capture_output=True, text=True,
            timeout=SHELL_TIMEOUT, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        return f"timeout after {SHELL_TIMEOUT} s", str(exc.stdout or "") + str(exc.stderr or "")
    return done.returncode, done.stdout + done.stderr


def _tail(text: str, lines: int = 40) -> str:
    kept = text.rstrip().splitlines()[-lines:]
    return "\n".join(f"    | {line}" for line in kept) or "    | (no output)"


def run_block(
    steps: list[Step],
    workspace: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Run ``steps`` in a fresh copy of ``workspace`` (``work`` beside it, removed after);
    fail at the first line that does not exit 0, showing where it is, what ran and what it
    printed."""
    target = workspace.parent / "work"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(workspace, target, copy_function=os.link)
    for path in written_first(steps):
        gone = target / path
        if gone.is_dir() and not gone.is_symlink():
            shutil.rmtree(gone)
        elif gone.exists():
            gone.unlink()
    cwd = Path.cwd()
    monkeypatch.chdir(target)
    try:
        for step in steps:
            if step.kind in ("cli", "shell"):
                _run_step(step, target, capfd, monkeypatch)
    finally:
        monkeypatch.chdir(cwd)
        shutil.rmtree(target, ignore_errors=True)  # run folders: up to 100s of MB each


def _run_step(
    step: Step, target: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    capfd.readouterr()
    start = time.monotonic()
    if step.kind == "cli":
        code, extra = _run_cli(step.argv, monkeypatch)
    else:
        code, extra = _run_shell(step.command.text, target)
    seconds = time.monotonic() - start
    out, err = capfd.readouterr()
    if code != 0:
        pytest.fail(
            f"{step.command.where()}\n  ran: {step.shown()}\n  in: {target}\n"
            f"  exit {code} after {seconds:.1f} s, expected 0; its output:\n"
            f"{_tail(out + err + extra)}",
            pytrace=False,
        )
    if os.environ.get("DOCS_RUN_TIMES"):  # where a block's time goes
        with open(os.environ["DOCS_RUN_TIMES"], "a", encoding="utf-8") as log:
            log.write(f"{seconds:6.1f} s  {step.command.where()}\n")


def _params() -> list:
    """One test per block that runs a line, ``slow`` when it trains."""
    return [
        pytest.param(
            doc, steps, id=_block_id(doc, steps), marks=[pytest.mark.slow] * _trains(steps)
        )
        for doc, steps in BLOCKS
    ]


@pytest.mark.parametrize("doc, steps", _params())
def test_documented_block_runs(
    doc: Path,
    steps: list[Step],
    workspace: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_block(steps, workspace, capfd, monkeypatch)


# --- the rule holds for every line --------------------------------------------------------

#: A line that starts a command the rule is about, in a block of any language.
COMMAND_START = re.compile(
    r"^\s*(\$\s+)?(deepfake-audio|python3? (-m deepfake_audio|\S*(train_new_dataset|"
    r"test_all_models)\.py))\b"
)


def outside_the_rule(doc: Path, blocks: list[tuple[Path, list[Step]]]) -> list[str]:
    """``doc``'s command lines that ``blocks`` (the block tests) do not run and that are not
    marked with a reason, and command lines in blocks of another language (never read)."""
    run = {(d, s.command.line) for d, steps in blocks for s in steps if s.kind != "skip"}
    bad = []
    for steps in blocks_of(doc):
        for step in steps:
            where = step.command.where()
            if step.kind == "skip" and not step.why.strip():
                bad.append(f"{where}\n    not run, without a reason")
            elif step.kind in ("cli", "shell") and (doc, step.command.line) not in run:
                bad.append(f"{where}\n    neither run nor marked")
    for block in _blocks(doc):
        if block.language in SHELL_LANGUAGES:
            continue
        for number, line in enumerate(block.lines, block.first):
            if COMMAND_START.match(line):
                bad.append(
                    f"{doc.name}:{number}: {line.strip()}\n    a command in a "
                    f"{block.language or 'untagged'} block: tag it bash or console"
                )
    return bad


def test_every_command_line_is_run_or_not_run() -> None:
    """A command line is run by a block test above, or not run for a reason: none escapes."""
    bad = [line for doc in DOCS for line in outside_the_rule(doc, BLOCKS)]
    assert not bad, "documented commands outside the rule:\n" + "\n".join(bad)


def test_the_rule_checker_finds_what_escapes(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text(
        "```bash\ndeepfake-audio models\ndeepfake-audio models --help  # not run:\n```\n"
        "```text\n$ deepfake-audio models\n```\n",
        encoding="utf-8",
    )
    bad = outside_the_rule(doc, [])
    assert [b.split("\n    ")[1] for b in bad] == [
        "neither run nor marked",
        "not run, without a reason",
        "a command in a text block: tag it bash or console",
    ]
    assert outside_the_rule(doc, [(doc, s) for s in blocks_of(doc)])[0].startswith(f"{doc}:3")


def unparsable(doc: Path) -> list[str]:
    """The not-run ``deepfake-audio`` lines of ``doc`` that the real parser refuses (a bad
    choice or type), their bracketed options left out; a line with a shell variable is not
    parsed, as its value is not known."""
    parser = build_parser()
    bad = []
    for command in commands(doc):
        if command.not_run is None:
            continue
        try:
            tokens = _without_brackets(_tokens(command.text))
        except ValueError:
            continue
        if any("$" in t for t in tokens):
            continue
        for start in range(len(tokens)):
            rest = tokens[start:]  # torchrun ... -m deepfake_audio ... too
            argv = rest[2:] if rest[:2] == ["-m", "deepfake_audio"] else cli_argv(rest)
            if argv is None:
                continue
            end = next((i for i, t in enumerate(argv) if t in SHELL_SYNTAX), len(argv))
            try:
                parser.parse_args(argv[:end])
            except SystemExit as exc:
                if exc.code:
                    bad.append(command.where())
            break
    return bad


def test_not_run_commands_still_parse(capsys: pytest.CaptureFixture[str]) -> None:
    bad = [where for doc in DOCS for where in unparsable(doc)]
    assert not bad, "not-run commands that do not parse:\n" + "\n".join(bad)


# --- the runner itself: it can fail -------------------------------------------------------


def _steps(tmp_path: Path, text: str) -> list[Step]:
    doc = tmp_path / "x.md"
    doc.write_text(text, encoding="utf-8")
    (steps,) = blocks_of(doc)
    return steps


def test_the_runner_fails_on_a_failing_command(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "a.txt").write_text("copied into work/, which is removed after")
    steps = _steps(
        tmp_path,
        "```bash\ndeepfake-audio models --help\ndeepfake-audio audit NO_SUCH_ROOT\n"
        "echo never\n```\n",
    )
    with pytest.raises(pytest.fail.Exception) as failure:
        run_block(steps, base, capfd, monkeypatch)
    message = str(failure.value)
    assert "x.md:3: deepfake-audio audit NO_SUCH_ROOT" in message
    assert "exit 1 after" in message and "NO_SUCH_ROOT" in message.split("output:")[1]

    steps = _steps(tmp_path, "```sh\necho fine\nfalse && echo no\n```\n")
    with pytest.raises(
        pytest.fail.Exception, match=r"(?s)x.md:3: false && echo no\n.*exit 1 after"
    ):
        run_block(steps, base, capfd, monkeypatch)
    assert not (tmp_path / "work").exists()


def test_the_plan_of_each_kind_of_line(tmp_path: Path) -> None:
    steps = _steps(
        tmp_path,
        '<!-- not run "serve": blocks -->\n```bash\n# a comment\n'
        "deepfake-audio predict --model CKPT clip.wav [--json] [--threshold 0.5]\n"
        "python3 train_new_dataset.py --data-root ROOT --output-dir RUN\n"
        "python -m deepfake_audio train --resume RUN\n"
        "deepfake-audio evaluate --run RUN --output-dir EVAL | head\n"
        "deepfake-audio serve --model RUN\nmake demo\npython bench/bench_zoo.py\n"
        "espeak-ng -w clip.wav hi\ndeepfake-audio models  # not run: why not\n```\n",
    )
    assert [(s.kind, s.argv, s.why) for s in steps] == [
        ("none", (), ""),
        ("cli", ("predict", "--model", "CKPT", "clip.wav"), ""),
        ("cli", ("train", "--data-root", "ROOT", "--output-dir", "RUN", *TRAIN_EXTRA), ""),
        ("cli", ("train", "--resume", "RUN"), ""),
        ("shell", (), ""),
        ("skip", (), "blocks"),
        ("skip", (), "a make target (installs, or builds the demo)"),
        ("skip", (), "a benchmark (minutes to an hour)"),
        ("shell", (), ""),
        ("skip", (), "why not"),
    ]
    assert written_first(steps) == ["RUN"]
    again = _steps(tmp_path, "```bash\ndeepfake-audio train --resume RUN -o RUN\n```\n")
    assert written_first(again) == []


def test_not_run_lines_are_parsed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "x.md"
    doc.write_text(
        "<!-- not run: a reason -->\n```bash\ndeepfake-audio train --model aasst\n"
        "deepfake-audio train --model aasist [--epochs many]\n"
        "torchrun -m deepfake_audio train --epochs x\nfor m in a; do deepfake-audio train "
        "--model $m; done\n```\n",
        encoding="utf-8",
    )
    assert unparsable(doc) == [
        f"{doc}:3: deepfake-audio train --model aasst",
        f"{doc}:5: torchrun -m deepfake_audio train --epochs x",
    ]
