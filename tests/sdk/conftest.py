"""Fixtures for driving the simulator with the vendors' official SDKs.

The `sim` fixture starts the real `switchboard sim` binary on a free loopback port (built by
`cargo build`; set SWITCHBOARD_BIN to use another build) and stops it after the session.
"""

import json
import os
import pathlib
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BINARY = os.environ.get("SWITCHBOARD_BIN", str(REPO / "target" / "debug" / "switchboard"))

# The SDKs honour proxy variables; the simulator is always reached directly.
for variable in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(variable, None)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sim:
    """A running simulator and its /_sim/ control API."""

    def __init__(self, base_url):
        self.base_url = base_url

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"content-type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read().decode()
                return response.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as error:
            text = error.read().decode()
            return error.code, (json.loads(text) if text else None)

    def control(self, method, path, body=None):
        status, payload = self.call(method, "/_sim" + path, body)
        assert 200 <= status < 300, (method, path, status, payload)
        return payload

    def seed(self, people=40, seed=1):
        return self.control("POST", "/seed", {"people": people, "seed": seed})

    def users(self, platform):
        return self.control("GET", f"/users?platform={platform}")

    def token(self, platform, email):
        return self.control("POST", "/token", {"platform": platform, "email": email})["token"]

    def set_faults(self, rules):
        return self.control("PUT", "/faults", rules)

    def clear_faults(self):
        return self.control("DELETE", "/faults")

    def settings(self, **changes):
        return self.control("PUT", "/settings", changes)

    def log(self, since=0, kind=None):
        query = f"?since={since}" + (f"&kind={kind}" if kind else "")
        return self.control("GET", "/log" + query)


@pytest.fixture(scope="session")
def sim_server():
    port = free_port()
    process = subprocess.Popen(
        [BINARY, "sim", "--listen", f"127.0.0.1:{port}", "--people", "40"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(base_url + "/healthz", timeout=1):
                break
        except OSError:
            if process.poll() is not None:
                raise RuntimeError("the simulator exited: " + process.stderr.read().decode())
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("the simulator did not become healthy")
            time.sleep(0.05)
    yield Sim(base_url)
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def sim(sim_server):
    """The simulator, re-seeded with 40 people, no faults, rate limits off, fast webhook retries."""
    sim_server.seed(40)
    sim_server.clear_faults()
    sim_server.settings(rate_limits=False, webhook_time_scale=0.001)
    return sim_server
