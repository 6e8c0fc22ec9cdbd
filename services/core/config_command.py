"""`hearth config`: what the daemons will actually see, after HEARTH_… overrides."""
import argparse
import json

from .config import SCHEMA, load_config
from .config_docs import example_toml, markdown_table


def run(args: argparse.Namespace) -> int:
    if args.example:
        print(example_toml(), end="")
        return 0
    if args.markdown:
        print(markdown_table())
        return 0
    config = load_config(args.config)
    print(f"# config file: {config.path or '(none: defaults and environment only)'}")
    print(f"# data_dir resolves to {config.data_dir}")
    section = None
    for option in SCHEMA:
        if option.section != section:
            section = option.section
            if section:
                print(f"\n[{section}]")
        value = config.values[option.section][option.key]
        print(f"{option.key} = {json.dumps(list(value) if isinstance(value, tuple) else value)}")
    for service in config.services:
        print(f"\n[[service]]\nname = {json.dumps(service.name)}\ncommand = {json.dumps(list(service.command))}")
        if service.env:
            print("env = { " + ", ".join(f"{k} = \"(hidden)\"" for k in service.env) + " }")
    return 0
