"""Debian's Chromium, headless, driven without dependencies: ``--dump-dom``/``--screenshot``
for one look, and the DevTools protocol over ``--remote-debugging-pipe`` (file descriptors 3
and 4, NUL-terminated JSON) to follow a page while it changes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
)


def chromium() -> str:
    """The chromium binary, or skip the test saying why."""
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("no chromium binary (Debian: `apt-get install -y chromium`; .ci/run installs it)")


def run_once(url: str, *extra: str, timeout: float = 120) -> str:
    """Load ``url`` in a fresh profile with ``extra`` flags; stdout (the DOM for --dump-dom)."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        proc = subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, url],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


class DevTools:
    """A headless Chromium driven through the DevTools protocol over a pipe."""

    def __init__(self, profile: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def fds() -> None:  # in the child: the protocol's descriptors are 3 and 4
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [
                chromium(),
                *FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            preexec_fn=fds,  # noqa: PLW1509 - only dup2 before exec
            # Descriptors 3 and 4 must survive the exec: the ones os.pipe() made are not
            # inheritable, so nothing else of this process leaks into the browser.
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._id = 0
        self.session = ""

    def close(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(timeout=30)
        finally:
            os.close(self._to_chrome)
            os.close(self._from_chrome)

    def call(
        self, method: str, params: dict[str, Any] | None = None, *, session: bool = True
    ) -> Any:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_chrome, 65536)
            if not chunk:
                raise AssertionError("chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        data: dict[str, Any] = json.loads(raw)
        return data

    def open(self, url: str) -> None:
        target = self.call("Target.createTarget", {"url": url}, session=False)["targetId"]
        attached = self.call(
            "Target.attachToTarget", {"targetId": target, "flatten": True}, session=False
        )
        self.session = attached["sessionId"]
        self.call("Runtime.enable")

    def open_without_script(self, url: str) -> None:
        """Open ``url`` in a tab whose page scripts never run (JavaScript off)."""
        self.open("about:blank")
        self.call("Emulation.setScriptExecutionDisabled", {"value": True})
        self.call("Page.navigate", {"url": url})

    def html(self) -> str:
        """The document as the browser holds it, read through the DOM domain (no script)."""
        root = self.call("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        return str(self.call("DOM.getOuterHTML", {"nodeId": root})["outerHTML"])

    def count(self, selector: str) -> int:
        """Elements matching ``selector`` in the document, through the DOM domain (no script)."""
        root = self.call("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        found = self.call("DOM.querySelectorAll", {"nodeId": root, "selector": selector})
        return len(found["nodeIds"])

    def wait_for_html(self, needle: str, *, timeout: float = 120) -> str:
        """The document once it contains ``needle`` (a condition with a generous deadline)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                text = self.html()
            except AssertionError:  # the document was replaced between the two calls
                text = ""
            if needle in text or time.monotonic() > deadline:
                return text
            time.sleep(0.05)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            return None
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        import base64

        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))

    def wait_for(self, expression: str, *, timeout: float = 120) -> Any:
        """Evaluate until truthy (a condition with a generous deadline, not a fixed sleep)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.05)
