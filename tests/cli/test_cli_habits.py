"""The command line's habits: --version, shell completion, examples in every --help, and no
Prefect telemetry notice."""

from __future__ import annotations

import os
import pty
import shlex
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import typer.main
from run_checks import read_terminal
from typer.testing import CliRunner

import regflow
from regflow.cli import app
from regflow.cli.examples import EXAMPLES

REPO = Path(__file__).resolve().parents[2]
REGFLOW = [sys.executable, "-m", "regflow"]
# Prefect counts these as CI, where it never shows its notice.
CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "BUILDKITE", "TF_BUILD")
NOTICE = "anonymous usage data"


def _commands() -> dict[str, Any]:
    """Every command and group by its path ('' is the root, 'models list' a subcommand)."""
    found: dict[str, Any] = {}

    def walk(command: Any, path: str) -> None:
        found[path] = command
        # typer builds on its own copy of click: a group is whatever has subcommands.
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}".strip())

    walk(typer.main.get_command(app), "")
    return found


def test_version_prints_the_installed_version_without_torch_or_prefect() -> None:
    code = (
        "import sys\n"
        "sys.argv = ['regflow', '--version']\n"
        "from regflow.cli import main\n"
        "try:\n    main()\n"
        "except SystemExit as done:\n    assert not done.code, done.code\n"
        "print(sorted(m for m in ('torch', 'prefect') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"regflow {version('regflow')}", "[]"]
    done = subprocess.run([*REGFLOW, "--version"], capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (0, f"regflow {version('regflow')}\n")
    assert regflow.__version__ == version("regflow")  # the fallback of an uninstalled tree


def test_every_command_shows_an_example_that_parses() -> None:
    commands = _commands()
    assert set(commands) == set(EXAMPLES)  # a new command needs its example
    assert {"train", "predict", "serve", "models list", "models monitor"} <= set(commands)
    for path in commands:
        shown = CliRunner().invoke(app, [*path.split(), "--help"], env={"COLUMNS": "200"})
        assert shown.exit_code == 0, (path, shown.output)
        assert "Example" in shown.output, path
        for example in EXAMPLES[path]:
            assert example in shown.output, (path, example)
            # Each example names real options and arguments of the command it runs.
            args = shlex.split(example)[1:]
            target = commands[""]
            while args and args[0] in getattr(target, "commands", {}):
                target = target.commands[args.pop(0)]
            target.make_context("regflow", args)


def test_completion_script_and_completions() -> None:
    env = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    shown = subprocess.run(
        [*REGFLOW, "--show-completion", "bash"], capture_output=True, text=True, env=env
    )
    assert shown.returncode == 0, shown.stderr
    assert "complete -o default -F _regflow_completion regflow" in shown.stdout
    assert "_REGFLOW_COMPLETE=complete_bash" in shown.stdout

    def complete(words: str) -> list[str]:
        cword = str(len(words.split()) - 1)
        env = {**os.environ, "_REGFLOW_COMPLETE": "complete_bash"}
        env.update(COMP_WORDS=words, COMP_CWORD=cword)
        done = subprocess.run(REGFLOW, capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete("regflow mo") == ["models"]
    assert complete("regflow models mon") == ["monitor"]
    assert "--preset" in complete("regflow train data/seed.csv --pre")


def test_install_completion_writes_the_script_for_bash(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    done = subprocess.run(
        [*REGFLOW, "--install-completion", "bash"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    script = tmp_path / ".bash_completions" / "regflow.sh"
    assert "_regflow_completion" in script.read_text()
    assert str(script.relative_to(tmp_path)) in (tmp_path / ".bashrc").read_text()


def _in_a_terminal(args: list[str], env: dict[str, str], timeout: float = 240) -> str:
    """Run `args` with a pseudo-terminal as stdin, stdout and stderr; all it printed.
    Prefect shows its notice only where it sees a terminal."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        args, stdin=follower, stdout=follower, stderr=follower, env=env, cwd=REPO
    )
    os.close(follower)
    output = read_terminal(leader, process, timeout)
    process.wait()
    assert process.returncode == 0, output.decode(errors="replace")
    return output.decode(errors="replace")


@pytest.mark.slow
def test_no_prefect_telemetry_notice(prefect_harness: str, tmp_path: Path) -> None:
    # A new user's terminal: a fresh Prefect home, no CI, nothing opted out.
    env = {k: v for k, v in os.environ.items() if k not in (*CI_VARIABLES, "DO_NOT_TRACK")}
    env.update(PREFECT_API_URL=prefect_harness, PREFECT_HOME=str(tmp_path / "home"))
    # Prefect itself shows the notice here, so its absence below is regflow's doing.
    assert NOTICE in _in_a_terminal([sys.executable, "-c", "import prefect"], env)
    env["PREFECT_HOME"] = str(tmp_path / "fresh-home")
    output = _in_a_terminal(
        [*REGFLOW, "train", "data/seed.csv", "--target", "y", "--out", str(tmp_path / "runs")],
        env,
    )
    assert "model 'seed' trained" in output
    assert NOTICE not in output and "DO_NOT_TRACK" not in output
