"""Every code block of README.md runs, collected from the file itself so the README cannot drift.

Convention (README.md): a fenced block's language says what it is.

- ``python`` blocks run, each in a fresh namespace, in a scratch folder;
- ``bash`` blocks run with ``bash -euo pipefail`` in a scratch folder, with this
  interpreter's folder first on ``PATH`` (so ``python`` is the test's own);
- ``text`` blocks are not code (a file tree, say) and do not run;
- a block right after a line ``<!-- readme-test: skip (REASON) -->`` does not run: for
  blocks that need a GPU or a download. Any other language is an error here, so that
  no block goes untested unnoticed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
SKIP_MARKER = re.compile(r"<!--\s*readme-test:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->")
RUNNABLE = ("python", "bash")


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    skip_reason: str | None


def readme_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a markdown text, with their language and skip marker."""
    blocks, lines, index = [], text.splitlines(), 0
    while index < len(lines):
        opening = re.fullmatch(r"```(\S*)\s*", lines[index])
        if opening is None:
            index += 1
            continue
        end = next(j for j in range(index + 1, len(lines)) if lines[j].strip() == "```")
        previous = lines[index - 1] if index else ""
        marker = SKIP_MARKER.fullmatch(previous.strip())
        blocks.append(Block(index + 1, opening.group(1), "\n".join(lines[index + 1 : end]),
                            marker.group("reason") if marker else None))
        index = end + 1
    return blocks


BLOCKS = readme_blocks(README.read_text())


def test_every_block_says_what_it_is():
    assert BLOCKS, "README.md has no code blocks"
    untagged = [b.line for b in BLOCKS if b.language not in (*RUNNABLE, "text")]
    assert not untagged, f"README.md blocks at lines {untagged}: tag them python, bash or text"


def test_blocks_are_collected_with_their_markers():
    sample = (
        "intro\n<!-- readme-test: skip (needs a GPU) -->\n```bash\nnvidia-smi\n```\n"
        "```python\nx = 1\n```\n"
    )
    first, second = readme_blocks(sample)
    assert (first.line, first.language, first.code) == (3, "bash", "nvidia-smi")
    assert first.skip_reason == "needs a GPU"
    assert (second.language, second.code, second.skip_reason) == ("python", "x = 1", None)


@pytest.mark.parametrize(
    "block", [b for b in BLOCKS if b.language in RUNNABLE],
    ids=lambda b: f"line{b.line}-{b.language}",
)
def test_readme_block_runs(block: Block, tmp_path, monkeypatch):
    if block.skip_reason is not None:
        pytest.skip(block.skip_reason)
    monkeypatch.chdir(tmp_path)
    if block.language == "python":
        exec(compile(block.code, f"README.md:{block.line}", "exec"), {"__name__": "__readme__"})
        return
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block.code], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"README.md:{block.line} failed:\n{result.stderr[-3000:]}"
