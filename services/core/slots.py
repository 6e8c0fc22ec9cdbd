"""Staging and production slots of a `[[service]]` with `slots = true`: names, addresses, the slot record.

Such a service runs as two physical instances, "blue" and "green", each an
ordinary supervised service (`hearth_NAME_blue`, `hearth_NAME_green`, with
their own pid, state, log and env files). Which colour is `prod` and which
`staging` is the slot record, var/run/slots/NAME.json, replaced atomically:

    {"service": "hello", "generation": 4, "prod": "green", "staging": "blue",
     "blue":  {"command": ["…"], "deployed_at": 1767225600.0, "status": "ready"},
     "green": {"command": ["…"], "deployed_at": 1767229200.0, "status": "ready"},
     "updated_at": 1767229260.0}

`hearth deploy` writes a colour's command, `hearth promote` swaps the labels
and bumps the generation; the supervisor generates each colour's rc.d script
from the record, and the front end routes by it. This module is the shared
file format and naming, so neither side needs the other's internals.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .config import Config, ServiceSpec

COLOURS = ("blue", "green")
LABELS = ("prod", "staging")
STATUSES = ("ready", "deploying", "failed")


def instance_name(service: str, colour: str) -> str:
    """The supervised name of one colour: `hello_blue` (rc.d names must be shell identifiers)."""
    return f"{service}_{colour}"


def slot_listen(spec: ServiceSpec, colour: str) -> str:
    """Where one colour listens: its entry in listen_slots, else a Unix socket var/run/NAME_COLOUR.sock."""
    if spec.listen_slots:
        return spec.listen_slots[COLOURS.index(colour)]
    return f"unix:run/{instance_name(spec.name, colour)}.sock"


def listen_environment(spec: ServiceSpec, colour: str, data_dir: Path) -> dict[str, str]:
    """What the command is told about where to listen: HEARTH_LISTEN always, HOST and PORT on TCP."""
    listen = slot_listen(spec, colour)
    env = {"HEARTH_SLOT": colour}
    if listen.startswith("unix:"):
        env["HEARTH_LISTEN"] = "unix:" + str((data_dir / listen[5:]).resolve())
    else:
        host, _, port = listen.rpartition(":")
        env.update(HEARTH_LISTEN=listen, HOST=host.strip("[]") or "127.0.0.1", PORT=port)
    return env


@dataclass(frozen=True)
class Instance:
    """One colour of a slotted service, as the supervisor runs it."""

    spec: ServiceSpec
    colour: str

    @property
    def name(self) -> str:
        return instance_name(self.spec.name, self.colour)

    @property
    def listen(self) -> str:
        return slot_listen(self.spec, self.colour)


def instances(config: Config) -> list[Instance]:
    return [Instance(spec, colour) for spec in config.services if spec.slots for colour in COLOURS]


def find_instance(config: Config, name: str) -> Instance | None:
    """The instance called `name` (hello_blue), if `name` is one."""
    return next((instance for instance in instances(config) if instance.name == name), None)


@dataclass(frozen=True)
class SlotRecord:
    """Which colour is prod, which is staging, and what each runs."""

    service: str
    prod: str = "blue"
    staging: str = "green"
    generation: int = 0
    colours: dict[str, dict[str, Any]] = field(default_factory=dict)  # colour -> command, deployed_at, status

    @classmethod
    def initial(cls, spec: ServiceSpec) -> SlotRecord:
        """First run: blue is prod, green staging, both running the config's command."""
        now = time.time()
        entry = {"command": list(spec.command), "deployed_at": now, "status": "ready"}
        return cls(spec.name, generation=1, colours={colour: dict(entry) for colour in COLOURS})

    def colour_of(self, label: str) -> str:
        return self.prod if label == "prod" else self.staging

    def label_of(self, colour: str) -> str:
        return "prod" if colour == self.prod else "staging"

    def command(self, colour: str) -> tuple[str, ...]:
        return tuple(self.colours[colour]["command"])

    def deployed(self, colour: str, command: tuple[str, ...] | list[str], status: str) -> SlotRecord:
        """The record after deploying `command` to `colour`."""
        colours = {c: dict(entry) for c, entry in self.colours.items()}
        colours[colour] = {"command": list(command), "deployed_at": time.time(), "status": status}
        return replace(self, colours=colours)

    def with_status(self, colour: str, status: str) -> SlotRecord:
        colours = {c: dict(entry) for c, entry in self.colours.items()}
        colours[colour]["status"] = status
        return replace(self, colours=colours)

    def promoted(self) -> SlotRecord:
        """Staging becomes prod and prod staging; the generation tells the front end's answer apart."""
        return replace(self, prod=self.staging, staging=self.prod, generation=self.generation + 1)

    def to_json(self) -> dict[str, Any]:
        return {"service": self.service, "generation": self.generation, "prod": self.prod,
                "staging": self.staging, **self.colours, "updated_at": time.time()}

    @classmethod
    def from_json(cls, data: Any, service: str) -> SlotRecord:
        """Parse a record, raising ValueError on anything malformed."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        prod, staging = data.get("prod"), data.get("staging")
        if {prod, staging} != set(COLOURS):
            raise ValueError(f"prod and staging must be {' and '.join(COLOURS)}, got {prod!r} and {staging!r}")
        generation = data.get("generation")
        if not isinstance(generation, int) or isinstance(generation, bool):
            raise ValueError(f"generation: expected an integer, got {generation!r}")
        colours = {}
        for colour in COLOURS:
            entry = data.get(colour)
            command = entry.get("command") if isinstance(entry, dict) else None
            if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
                raise ValueError(f"{colour}.command: expected a non-empty list of strings")
            colours[colour] = {"command": command, "deployed_at": entry.get("deployed_at"),
                               "status": entry.get("status", "ready")}
        return cls(service, prod=prod, staging=staging, generation=generation, colours=colours)


def slots_dir(data_dir: Path) -> Path:
    return data_dir / "run" / "slots"


def record_path(data_dir: Path, service: str) -> Path:
    return slots_dir(data_dir) / f"{service}.json"


def read_record(data_dir: Path, service: str) -> SlotRecord | None:
    """The service's slot record; None if there is none yet. A damaged file raises ValueError."""
    path = record_path(data_dir, service)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return SlotRecord.from_json(json.loads(text), service)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def write_record(data_dir: Path, record: SlotRecord) -> None:
    """Replace the record atomically and durably: temp file, fsync, rename, fsync the directory."""
    path = record_path(data_dir, record.service)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temp, "w", encoding="utf-8") as handle:
        json.dump(record.to_json(), handle, indent=1)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def ensure_record(data_dir: Path, spec: ServiceSpec) -> SlotRecord:
    """The record, created on first use (see SlotRecord.initial)."""
    record = read_record(data_dir, spec.name)
    if record is None:
        record = SlotRecord.initial(spec)
        write_record(data_dir, record)
    return record


def slot_of(config: Config, name: str) -> tuple[Instance, SlotRecord | None] | None:
    """For a supervised name that is one colour of a slotted service: the instance and its record."""
    instance = find_instance(config, name)
    if instance is None:
        return None
    try:
        return instance, read_record(config.data_dir, instance.spec.name)
    except ValueError:
        return instance, None


def display_name(config: Config, name: str) -> str:
    """How people see a supervised name: `hello_blue` is `hello@prod(blue)`; others are unchanged."""
    found = slot_of(config, name)
    if found is None:
        return name
    instance, record = found
    if record is None:
        return f"{instance.spec.name}@{instance.colour}"
    return f"{instance.spec.name}@{record.label_of(instance.colour)}({instance.colour})"
