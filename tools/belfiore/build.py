#!/usr/bin/env python3
"""Builds simulators/domain/data/belfiore.tsv, the table of Belfiore codes: every
Italian comune (with the dates it existed) and every foreign state (Z codes).

The facts come from the public ISTAT/ANPR data as packaged by python-codicefiscale
(MIT licence, https://github.com/fabiocaccamo/python-codicefiscale), downloaded from
PyPI at the pinned version, so the table is reproducible:

    python3 tools/belfiore/build.py            # writes the table
    python3 tools/belfiore/build.py --check    # exits 1 if the committed table differs

Columns: code, first day it existed (YYYY-MM-DD), first day it no longer existed
(empty while it exists), province (EE abroad), name. Back-to-back periods are joined
(a change of province or name is not a gap); a comune suppressed and re-created has
a row per period.
"""

import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

VERSION = "0.12.1"
OUT = Path(__file__).resolve().parents[2] / "simulators" / "domain" / "data" / "belfiore.tsv"


def day(text):
    return text[:10] if text else ""


def rows():
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp,
             f"python-codicefiscale=={VERSION}"],
            check=True,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as z:
            data = {
                name: json.loads(z.read(f"codicefiscale/data/{name}.json"))
                for name in ("municipalities", "countries", "deleted-countries")
            }
    seen = set()
    out = []
    for entry in data["municipalities"] + data["countries"] + data["deleted-countries"]:
        code = entry["code"].strip().upper()
        if len(code) != 4:
            continue
        row = (
            code,
            day(entry.get("date_created", "")) or "1861-03-17",
            day(entry.get("date_deleted", "")),
            (entry.get("province") or "EE").strip(),
            entry["name"].strip().replace("\t", " "),
        )
        if row[:3] not in seen:
            seen.add(row[:3])
            out.append(row)
    out.sort()
    return merge(out)


def merge(table):
    """Joins a code's back-to-back periods (a province or name change is not a gap);
    the latest name and province are kept."""
    import datetime

    merged = []
    for row in table:
        if merged and merged[-1][0] == row[0] and merged[-1][2]:
            prev_end = datetime.date.fromisoformat(merged[-1][2])
            start = datetime.date.fromisoformat(row[1])
            if start <= prev_end + datetime.timedelta(days=1):
                merged[-1] = (row[0], merged[-1][1], row[2], row[3], row[4])
                continue
        merged.append(row)
    return merged


def render(table):
    header = "# Belfiore codes: code, existed from, existed until (exclusive, empty: still), province (EE abroad), name\n"
    header += f"# Built by tools/belfiore/build.py from python-codicefiscale {VERSION} (ISTAT/ANPR data).\n"
    return header + "".join("\t".join(r) + "\n" for r in table)


def main():
    text = render(rows())
    if "--check" in sys.argv:
        same = OUT.exists() and OUT.read_text(encoding="utf-8") == text
        print("belfiore.tsv is up to date" if same else "belfiore.tsv differs: run tools/belfiore/build.py")
        sys.exit(0 if same else 1)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT} ({text.count(chr(10)) - 2} rows)")


if __name__ == "__main__":
    main()
