"""Docs are part of the product: a key or command missing from them fails the build."""
import argparse
from pathlib import Path

from services.cli import build_parser
from services.core.config import SCHEMA
from services.core.config_tables import SERVICE_KEYS
from services.core.config_docs import example_toml, markdown_table
from services.rc.layout import RC_DIR
from services.rc.newsyslog import parse_conf

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def commands(parser: argparse.ArgumentParser, prefix: str = "hearth"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix} {name}"
                yield from commands(sub, f"{prefix} {name}")


def test_quick_start_is_make_up_then_make_test():
    block = README.split("```sh", 1)[1].split("```", 1)[0].strip().splitlines()
    assert [line.split("#")[0].strip() for line in block[:2]] == ["make up", "make test"]


def test_every_config_key_is_in_the_readme_table():
    assert markdown_table() in README, "README's config table is stale: paste `hearth config --markdown`"
    for option in SCHEMA:
        assert option.env in README
    for key in SERVICE_KEYS:
        assert f"`{key}`" in README


def test_every_command_is_documented():
    missing = [name for name in commands(build_parser()) if f"`{name}" not in README]
    assert not missing, f"README lacks: {missing}"


def test_example_config_lists_every_key():
    assert (ROOT / "deploy" / "hearth.toml.example").read_text() == example_toml(), \
        "regenerate with `hearth config --example > deploy/hearth.toml.example`"


def test_shipped_newsyslog_conf_covers_every_daemon():
    logs = {Path(entry.logfile).name for entry in parse_conf(ROOT / "deploy" / "newsyslog.conf")}
    for script in RC_DIR.glob("hearth_*"):
        assert script.name.removeprefix("hearth_") + ".log" in logs
