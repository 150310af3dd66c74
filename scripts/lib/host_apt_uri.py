"""Print the Debian archive URL the host's apt uses, for scripts/test-debian13, so that no
mirror is written down in the repository. The only argument is `main` (the archive)
or `security`. Reads deb822 .sources files and one-line .list files; prints nothing
when the host has no such archive."""
from __future__ import annotations

import glob
import re
import sys


def sources() -> list[tuple[str, str]]:
    """(URI, suite) of every enabled `deb` source, .sources files first."""
    found = []
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with open(path) as f:
            stanzas = re.split(r"\n\s*\n", f.read())
        for stanza in stanzas:
            fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.M))
            if fields.get("Types", "deb").split()[0] != "deb" or fields.get("Enabled", "yes") == "no":
                continue
            found += [(uri, suite) for uri in fields.get("URIs", "").split()
                      for suite in fields.get("Suites", "").split()]
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        for line in lines:
            m = re.match(r"^\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", line)
            if m:
                found.append((m.group(1), m.group(2)))
    return found


def main(kind: str) -> None:
    for uri, suite in sources():
        is_security = suite.endswith("-security") or suite.endswith("/updates")
        if "debian" in uri and is_security == (kind == "security"):
            print(uri.rstrip("/"))
            return


if __name__ == "__main__":
    main(sys.argv[1])
