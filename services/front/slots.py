"""Which colour of each slotted service answers its prod and staging routes, and what each is still answering.

The mapping is the slot records (services.core.slots), read at start and on
SIGHUP, which `hearth promote` sends after writing a new record. Between
reloads, resolving `hello@prod` to blue or green is a dict lookup, and a
reload swaps the mapping between two requests: a request already sent to the
old prod finishes there (nothing is stopped), every later one goes to the new.

Requests are counted while they run, per colour and per the label they were
routed by, and `GET /healthz/slots` reports the counts with each service's
generation: `hearth promote` polls it to see the switch take effect, then to
see the old prod finish what it was given under its old label.
"""
from __future__ import annotations

import logging
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from services.core.slots import COLOURS, LABELS, SlotRecord, read_record

from .upstream import UpstreamAddress

log = logging.getLogger("front.slots")


class Slots:
    """The current prod/staging mapping of every slotted service, and the requests in flight to each colour."""

    def __init__(self, data_dir: Path, addresses: dict[str, dict[str, UpstreamAddress]]):
        self.data_dir = data_dir
        self.addresses = addresses            # service -> colour -> real address
        self.records: dict[str, SlotRecord] = {service: SlotRecord(service) for service in addresses}
        self.in_flight: Counter[tuple[str, str, str]] = Counter()  # (service, colour, label) -> requests
        self.reload()

    def reload(self) -> None:
        """Re-read the slot records; a missing one means blue is prod, a damaged one keeps the mapping."""
        for service in self.addresses:
            try:
                record = read_record(self.data_dir, service) or SlotRecord(service)
            except (ValueError, OSError) as error:
                log.warning("slots: %s: keeping prod=%s: %s", service, self.records[service].prod, error)
                continue
            previous = self.records[service]
            self.records[service] = record
            if (previous.prod, previous.generation) != (record.prod, record.generation):
                log.info("slots: %s: prod is %s, staging %s (generation %d)", service, record.prod,
                         record.staging, record.generation)

    @contextmanager
    def serving(self, address: UpstreamAddress) -> Iterator[UpstreamAddress]:
        """The real address to send one request to, counted as in flight until the block ends."""
        if address.slot is None or address.service is None:
            yield address
            return
        colour = self.records[address.service].colour_of(address.slot)
        key = (address.service, colour, address.slot)
        self.in_flight[key] += 1
        try:
            yield self.addresses[address.service][colour]
        finally:
            self.in_flight[key] -= 1

    def report(self) -> dict:
        """{service: {generation, prod, staging, in_flight: {colour: {label: requests}}}} for /healthz."""
        return {
            service: {
                "generation": record.generation, "prod": record.prod, "staging": record.staging,
                "in_flight": {colour: {label: self.in_flight[(service, colour, label)] for label in LABELS}
                              for colour in COLOURS},
            }
            for service, record in self.records.items()
        }
