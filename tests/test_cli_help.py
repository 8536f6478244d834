"""`trautoml COMMAND --help` lists the command's own options, each default once (subprocesses, as users run it)."""
from __future__ import annotations

import re

import pytest

from helpers import run_cli

INGEST_ONLY = ("--backend", "--grouper", "--preset", "--executor", "--seed", "--set", "--backend-option", "--agent",
               "--mechanism", "--backbone", "--weights", "--cut", "--finetune")
OWN = {
    "demo": ("--workspace", "--tracking-uri") + INGEST_ONLY,
    "ingest": ("--workspace", "--tracking-uri") + INGEST_ONLY,
    "watch": ("--workspace", "--tracking-uri", "--poll", "--max-items", "--summary-every") + INGEST_ONLY,
    "groups": ("--workspace", "--json"),
    "show": ("--workspace", "--json"),
    "summary": ("--workspace", "--json"),
    "ui": ("--workspace", "--tracking-uri", "--port", "--no-browser"),
    "bench": ("--preset", "--backends", "--orders", "--methods", "--out", "--json", "--workspace", "--executor",
              "--seed"),
}
ALL = set(o for opts in OWN.values() for o in opts) | {"--quiet"}


def _options(help_text: str) -> set[str]:
    """The long options the help lists (in its option sections, not in the usage line)."""
    body = help_text.split("\n\n", 1)[1]
    return set(re.findall(r"^\s+(?:-\w, )?(--[a-z][a-z-]*)", body, flags=re.M))


@pytest.mark.parametrize("command", sorted(OWN))
def test_each_command_lists_only_its_own_options_with_each_default_once(command):
    out = run_cli(command, "--help", timeout=60)
    assert out.returncode == 0, out.stderr
    listed = _options(out.stdout)
    assert set(OWN[command]) <= listed, set(OWN[command]) - listed
    assert not (listed & (ALL - set(OWN[command]) - {"--quiet"})), listed - set(OWN[command])
    for line in re.split(r"\n  (?=-)", out.stdout):  # one option's help, wrapped lines joined
        assert len(re.findall(r"\(default", line)) <= 1, line


def test_ui_help_has_none_of_the_ingest_options():
    out = run_cli("ui", "--help", timeout=60).stdout
    for option in INGEST_ONLY:
        assert option not in out, option


def test_an_option_before_a_command_that_does_not_take_it_is_refused(tmp_path):
    out = run_cli("--backend", "random", "groups", "--workspace", tmp_path, timeout=60)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "--backend" in out.stderr and "trautoml groups" in out.stderr
    ok = run_cli("--workspace", tmp_path, "groups", timeout=60)  # one it takes is fine there
    assert ok.returncode == 0 and "no groups yet" in ok.stdout
