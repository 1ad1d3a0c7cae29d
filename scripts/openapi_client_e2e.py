"""End-to-end test of a client generated from openapi.json by
openapi-python-client, against a running tooltool server.

Usage: openapi_client_e2e.py <generated client dir> <base url> <token>
Prints `N passed, 0 failed` and exits 0 when every check holds.
"""

import hashlib
import sys

import httpx

sys.path.insert(0, sys.argv[1])
BASE, TOKEN = sys.argv[2], sys.argv[3]

from tooltool_client import AuthenticatedClient, Client  # noqa: E402
from tooltool_client.api.download import download  # noqa: E402
from tooltool_client.api.file import get_file, patch_file, search_files  # noqa: E402
from tooltool_client.api.upload import create_batch, get_batch, search_batches, upload_complete  # noqa: E402
from tooltool_client.models import (  # noqa: E402
    CreatedBatchResult,
    FileWithInstances,
    PatchOpDocSetVisibilityOp,
    Problem,
    UploadRequestDoc,
)

passed = 0


def check(condition, what):
    global passed
    if not condition:
        print(f"FAILED: {what}")
        print("0 passed, 1 failed")
        sys.exit(1)
    passed += 1


client = AuthenticatedClient(base_url=BASE, token=TOKEN, follow_redirects=False)
anonymous = Client(base_url=BASE, follow_redirects=False)

content = b"bytes uploaded through the generated client\n"
digest = hashlib.sha512(content).hexdigest()
body = UploadRequestDoc.from_dict(
    {
        "message": "generated client e2e",
        "files": {
            "e2e.txt": {"size": len(content), "digest": digest, "algorithm": "sha512", "visibility": "public"}
        },
    }
)

created = create_batch.sync_detailed(client=client, body=body)
check(created.status_code == 200, f"create_batch answers 200, got {created.status_code}")
check(isinstance(created.parsed, CreatedBatchResult), "create_batch parses as CreatedBatchResult")
batch = created.parsed.result
entry = batch.files.additional_properties["e2e.txt"]
check(entry.digest == digest and entry.size == len(content), "the batch echoes the declaration")
check(batch.author == "openapi-e2e", "the author is the token's subject")

put = httpx.put(entry.put_url, content=content, headers={"Content-Type": "application/octet-stream"})
check(put.status_code == 200, f"PUT to put_url answers exactly 200, got {put.status_code}")

done = upload_complete.sync_detailed(digest, client=client)
check(done.status_code == 202, f"upload_complete answers 202, got {done.status_code}")

fetched = download.sync_detailed(digest, client=anonymous)
check(fetched.status_code == 302, f"download answers 302, got {fetched.status_code}")
location = fetched.headers["location"]
got = httpx.get(location).content
check(hashlib.sha512(got).hexdigest() == digest, "the redirect serves the uploaded bytes")

info = get_file.sync(digest, client=anonymous)
check(isinstance(info, FileWithInstances) and info.instances == ["local"], "get_file lists the instance")

found = search_files.sync(client=anonymous, q="e2e.txt")
check(found is not None and [f.digest for f in found.result] == [digest], "search_files finds the file")

batches = search_batches.sync(client=anonymous, q="generated client")
check(batches is not None and len(batches.result) == 1, "search_batches finds the batch")
again = get_batch.sync(str(batch.id), client=anonymous)
check(again is not None and again.message == "generated client e2e", "get_batch returns the batch")

patched = patch_file.sync(
    digest, client=client, body=[PatchOpDocSetVisibilityOp.from_dict({"op": "set_visibility", "visibility": "internal"})]
)
check(isinstance(patched, FileWithInstances) and patched.visibility.value == "internal", "patch_file changes visibility")

denied = download.sync_detailed(digest, client=anonymous)
check(denied.status_code == 403 and isinstance(denied.parsed, Problem), "an internal file is 403 with a Problem")
check(denied.parsed.error.description == denied.parsed.detail, "Problem carries error.description")

bad = get_file.sync_detailed("not-a-digest", client=anonymous)
check(bad.status_code == 400 and bad.parsed.detail == "Invalid sha512 digest", "bad digest is a 400 Problem")

print(f"{passed} passed, 0 failed")
