"""Runs the SCIM conformance checker scim2-tester against a SCIM base URL.

    scim-conformance.py BASE_URL [--token TOKEN] [--expect FILE] [--record FILE]

Prints one line per check (status, resource type, title, reason) and a tally. With
`--expect FILE`, the checks that are known not to pass are listed in FILE (one
`RESOURCE TITLE` per line, `-` for no resource type, `#` comments): the run fails when any
other check does not pass (a regression) and also when a listed one now passes (the list
must be updated, so it never hides a fixed gap). With `--record FILE` it writes the checks
that do not pass to FILE in that form.
"""

import argparse
import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

PASSING = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE}


def key(result):
    return f"{result.resource_type or '-'} {result.title}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--token")
    parser.add_argument("--expect")
    parser.add_argument("--record")
    args = parser.parse_args()

    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    http = Client(base_url=args.url.rstrip("/") + "/", headers=headers, timeout=30)
    results = check_server(SyncSCIMClient(http))

    tally = {}
    failing = []
    for r in results:
        tally[r.status.name] = tally.get(r.status.name, 0) + 1
        reason = " ".join((r.reason or "").split())[:200]
        print(f"{r.status.name:10} {r.resource_type or '-':6} {r.title}: {reason}")
        if r.status not in PASSING and r.status != Status.SKIPPED:
            failing.append(key(r))
    print("scim2-tester:", ", ".join(f"{n} {s.lower()}" for s, n in sorted(tally.items())))

    if args.record:
        with open(args.record, "w") as f:
            f.write("".join(f"{k}\n" for k in sorted(set(failing))))
    if args.expect is None:
        return 1 if failing else 0

    with open(args.expect) as f:
        expected = {
            line.strip()
            for line in f
            if line.strip() and not line.lstrip().startswith("#")
        }
    new = sorted(set(failing) - expected)
    fixed = sorted(expected - set(failing))
    for k in new:
        print(f"regression: {k} no longer passes", file=sys.stderr)
    for k in fixed:
        print(f"fixed: {k} passes now; take it off {args.expect}", file=sys.stderr)
    return 1 if new or fixed else 0


if __name__ == "__main__":
    sys.exit(main())
