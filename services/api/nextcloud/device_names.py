"""The name an app password gets from the Nextcloud app that asked for it: its User-Agent, read as a person would.

The apps' User-Agents (desktop `… mirall/3.7.3git (Nextcloud, debian-6.1.0 …)`,
`Mozilla/5.0 (Android) Nextcloud-android/33.0.1`, `Mozilla/5.0 (iOS)
Nextcloud-iOS/6.1`) become "Nextcloud desktop 3.7.3 (debian-6.1.0)", "Nextcloud
Android 33.0.1", "Nextcloud iOS 6.1" (and the command-line client, which says
`(nextcloudcmd, …)`, "nextcloudcmd 3.7.3 (…)"); anything else is kept as sent, cut to
the label's length, so `hearth token list` still tells devices apart.
"""
from __future__ import annotations

import re

from services.core.accounts import MAX_LABEL_LENGTH

_DESKTOP = re.compile(r"mirall/(?P<version>[0-9.]+)\S*(?: \((?P<app>[^,)]*), (?P<os>[^ )]+))?")
_MOBILE = re.compile(r"Nextcloud-(?P<os>android|iOS)/(?P<version>[0-9.]+)", re.IGNORECASE)
_UNKNOWN = "unknown device"


def device_label(user_agent: str | None) -> str:
    """A short, printable name for the device behind `user_agent`."""
    agent = "".join(ch for ch in (user_agent or "") if ch.isprintable()).strip()
    desktop = _DESKTOP.search(agent)
    if desktop:
        where = f" ({desktop['os']})" if desktop["os"] else ""
        app = "nextcloudcmd" if desktop["app"] == "nextcloudcmd" else "Nextcloud desktop"
        return f"{app} {desktop['version']}{where}"[:MAX_LABEL_LENGTH]
    mobile = _MOBILE.search(agent)
    if mobile:
        system = "Android" if mobile["os"].lower() == "android" else "iOS"
        return f"Nextcloud {system} {mobile['version']}"
    return agent[:MAX_LABEL_LENGTH] or _UNKNOWN
