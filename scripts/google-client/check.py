"""Google's own Python client (google-api-python-client, with google-auth) drives the
rosterd emulator's Directory API view through every call rosterd makes, with the discovery
document the client ships (static_discovery=True): a service account's token for an admin,
users by address and in pages, a group made and found, a second of the same address refused,
members added in a batch and read in pages, a member already there and one gone refused as
Google refuses them, a rename, a delete. tests/google.rs runs it; each step prints `ok STEP`.

usage: check.py TENANT_URL KEY_JSON_FILE ADMIN USER_EMAIL...
"""

import json
import sys

from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

SCOPES = [
    "https://www.googleapis.com/auth/admin.directory.group",
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
]


def ok(step):
    print(f"ok {step}", flush=True)


def status_of(call):
    try:
        call.execute()
    except HttpError as e:
        return e.resp.status, e.error_details
    return 200, None


def main():
    url, key_file, admin, *users = sys.argv[1:]
    with open(key_file) as f:
        info = json.load(f)
    creds = service_account.Credentials.from_service_account_info(
        info, scopes=SCOPES, subject=admin
    )
    directory = build(
        "admin",
        "directory_v1",
        credentials=creds,
        static_discovery=True,
        client_options={"api_endpoint": url.rstrip("/") + "/"},
    )

    for email in users:
        user = directory.users().get(userKey=email.upper()).execute()
        assert user["primaryEmail"].lower() == email.lower(), user
    ok("users found by address")

    seen, token = [], None
    while True:
        page = directory.users().list(
            customer="my_customer", maxResults=7, pageToken=token
        ).execute()
        seen.extend(u["primaryEmail"].lower() for u in page.get("users", []))
        token = page.get("nextPageToken")
        if not token:
            break
    assert len(seen) == len(set(seen)) and all(u.lower() in seen for u in users), seen
    ok("users listed in pages")

    address = "vendor-check@groups.example.com"
    group = directory.groups().insert(
        body={"email": address, "name": "Vendor check", "description": "made by check.py"}
    ).execute()
    assert group["email"] == address and group["id"], group
    assert directory.groups().get(groupKey=address).execute()["id"] == group["id"]
    ok("group created and found")

    status, _ = status_of(directory.groups().insert(body={"email": address, "name": "Again"}))
    assert status == 409, status
    ok("a second group at the same address refused")

    answers = {}

    def collect(request_id, response, exception):
        answers[request_id] = exception.resp.status if exception else 200

    batch = BatchHttpRequest(callback=collect, batch_uri=url.rstrip("/") + "/batch")
    for email in users:
        batch.add(
            directory.members().insert(
                groupKey=group["id"], body={"email": email, "role": "MEMBER"}
            )
        )
    batch.execute(http=directory._http)
    assert sorted(answers.values()) == [200] * len(users), answers
    members, token = [], None
    while True:
        page = directory.members().list(
            groupKey=address, maxResults=2, pageToken=token
        ).execute()
        members.extend(m["email"] for m in page.get("members", []))
        token = page.get("nextPageToken")
        if not token:
            break
    assert sorted(members) == sorted(u.lower() for u in users), members
    ok("members added in a batch and read in pages")

    status, details = status_of(
        directory.members().insert(groupKey=address, body={"email": users[0], "role": "MEMBER"})
    )
    assert status == 409, (status, details)
    ok("a member already there refused")

    directory.members().delete(groupKey=address, memberKey=users[0]).execute()
    status, _ = status_of(directory.members().delete(groupKey=address, memberKey=users[0]))
    assert status == 404, status
    ok("a member removed, and removing it again refused")

    renamed = directory.groups().patch(groupKey=group["id"], body={"name": "Vendor check 2"}).execute()
    assert renamed["name"] == "Vendor check 2" and renamed["email"] == address, renamed
    ok("group renamed")

    directory.groups().delete(groupKey=address).execute()
    status, _ = status_of(directory.groups().get(groupKey=address))
    assert status == 404, status
    ok("group deleted")


if __name__ == "__main__":
    main()
