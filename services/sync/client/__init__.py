"""The sync client's local-disk side: atomic writes, conflict copies, ignore rules,
name checks, the scanner, the client's own state database and the deletion guard.

Nothing here touches the network; the daemon composes these pieces.
"""
