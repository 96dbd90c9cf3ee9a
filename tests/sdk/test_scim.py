"""The hub's SCIM 2.0 service provider checked by a public conformance tester.

`scim2-tester` (from PyPI) discovers what the provider publishes (ServiceProviderConfig,
ResourceTypes, Schemas), then creates, reads, lists, searches, replaces, patches and deletes
users and groups with generated values, and checks every answer against RFC 7643/7644. It runs
against the real demo, started here with a SCIM token, over loopback HTTP.
"""

import subprocess
import tempfile
import time
import urllib.request

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from conftest import BINARY, free_port

SCIM_TOKEN = "scim-conformance-token-0123456789"


@pytest.fixture(scope="module")
def scim_base():
    hub, sim = free_port(), free_port()
    with tempfile.TemporaryDirectory() as data:
        process = subprocess.Popen(
            [
                BINARY, "demo",
                "--listen", f"127.0.0.1:{hub}",
                "--sim-listen", f"127.0.0.1:{sim}",
                "--data-dir", data,
                "--people", "4",
                "--api-token", "scim-conformance-api-token-0123",
                "--scim-token", SCIM_TOKEN,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={"SWITCHBOARD_DEMO_PLATFORMS": "slack,teams", "PATH": "/usr/bin:/bin"},
        )
        base_url = f"http://127.0.0.1:{hub}"
        # The demo answers before it has set itself up; its SCIM token opens SCIM once it has.
        ready = urllib.request.Request(
            base_url + "/scim/v2/ServiceProviderConfig",
            headers={"Authorization": f"Bearer {SCIM_TOKEN}"},
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(ready, timeout=1):
                    break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError("the demo exited: " + process.stderr.read().decode())
                if time.monotonic() > deadline:
                    process.kill()
                    raise RuntimeError("the demo did not become healthy")
                time.sleep(0.1)
        yield base_url + "/scim/v2"
        process.terminate()
        process.wait(timeout=20)


def test_scim2_tester_finds_no_failure(scim_base):
    client = SyncSCIMClient(
        httpx2.Client(base_url=scim_base, headers={"Authorization": f"Bearer {SCIM_TOKEN}"})
    )
    results = check_server(client)
    failed = [
        f"{result.title}: {result.reason}"
        for result in results
        if result.status not in (Status.SUCCESS, Status.SKIPPED)
    ]
    assert results, "the tester ran no check"
    assert not failed, "\n".join(failed)
    # Users and groups were both created, read, changed and deleted, not skipped.
    succeeded = [result for result in results if result.status == Status.SUCCESS]
    assert len(succeeded) >= 80, f"only {len(succeeded)} checks succeeded"
