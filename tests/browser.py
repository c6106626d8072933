"""A real headless Chromium driven over the DevTools protocol, for tests that open the report page.

`open_page(path)` starts Chromium (Debian's `chromium` package, installed by `make chromium`) on 127.0.0.1 with a
throw-away profile, loads the file, waits for its load event, and returns what the page logged (console errors and
warnings, uncaught exceptions, failed loads) and the value of a JavaScript expression evaluated in it. The protocol
is spoken over the WebSocket client of aiohttp (a dependency of the project already).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
MAKE_TARGET = "make chromium"
# Set to 1 on a machine without Chromium to skip the browser tests locally; CI never sets it.
OPT_OUT = "METACLIP_SKIP_BROWSER_TESTS"


def chromium_binary() -> str:
    """The Chromium to drive: $CHROMIUM, else the first of BINARIES on the PATH. Missing, the test fails naming the
    make target that installs it (or is skipped when OPT_OUT is set)."""
    for candidate in ([os.environ["CHROMIUM"]] if os.environ.get("CHROMIUM") else []) + list(BINARIES):
        found = shutil.which(candidate)
        if found:
            return found
    if os.environ.get(OPT_OUT) == "1":
        pytest.skip(f"no Chromium and {OPT_OUT}=1: the report page was not opened in a browser")
    pytest.fail(f"Chromium is not installed: run `{MAKE_TARGET}` (Debian's chromium package), or set {OPT_OUT}=1 "
                "to skip the browser tests on this machine", pytrace=False)


@dataclass
class PageVisit:
    console: list[dict] = field(default_factory=list)  # console calls and log entries: {"level", "text"}
    exceptions: list[str] = field(default_factory=list)
    value: object = None

    @property
    def errors(self) -> list[str]:
        return self.exceptions + [f"{m['level']}: {m['text']}" for m in self.console
                                  if m["level"] in ("error", "assert", "warning")]


class _DevTools:
    def __init__(self, socket):
        self.socket, self.next_id, self.events = socket, 0, []

    async def call(self, method: str, **params) -> dict:
        self.next_id += 1
        await self.socket.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            message = await self.socket.receive_json()
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"DevTools {method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    async def wait_for(self, event: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == event for e in self.events):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {event} within {timeout} s")
            self.events.append(await asyncio.wait_for(self.socket.receive_json(), remaining))

    async def drain(self, seconds: float) -> None:
        """Events that arrive within `seconds` (late console messages)."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                self.events.append(await asyncio.wait_for(self.socket.receive_json(), remaining))
            except asyncio.TimeoutError:
                return


def _visit(events: list[dict], value) -> PageVisit:
    visit = PageVisit(value=value)
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            visit.console.append({"level": params.get("type"), "text": text})
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            visit.exceptions.append(details.get("exception", {}).get("description") or details.get("text", ""))
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            where = f" ({entry['url']})" if entry.get("url") else ""
            visit.console.append({"level": entry.get("level"), "text": f"{entry.get('source')}: {entry.get('text')}{where}"})
    return visit


async def _drive(port: int, url: str, expression: str, timeout: float) -> PageVisit:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
            targets = await response.json(content_type=None)
        page = next(t for t in targets if t.get("type") == "page")
        async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as socket:
            tools = _DevTools(socket)
            for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
                await tools.call(domain)
            await tools.call("Page.navigate", url=url)
            await tools.wait_for("Page.loadEventFired", timeout)
            await tools.drain(0.5)
            result = await tools.call("Runtime.evaluate", expression=expression, returnByValue=True,
                                      awaitPromise=True)
            if "exceptionDetails" in result:
                raise RuntimeError(f"the test's expression failed: {result['exceptionDetails']}")
            return _visit(tools.events, result.get("result", {}).get("value"))


def open_page(path: Path, expression: str, timeout: float = 60.0) -> PageVisit:
    """Load the file `path` in a headless Chromium and evaluate `expression` (a JSON-able value) once it loaded."""
    binary = chromium_binary()
    # Chromium's helper processes (renderer, crash handler) can outlive the browser for a moment and still write to
    # the profile: the whole process group is stopped, and a file they leave behind does not fail the test.
    with tempfile.TemporaryDirectory(prefix="metaclip-chromium-", ignore_cleanup_errors=True) as profile:
        process = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking", "--remote-debugging-address=127.0.0.1",
             "--remote-debugging-port=0", f"--user-data-dir={profile}", "--window-size=1280,2000", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + timeout
            while not (port_file.exists() and port_file.read_text().strip()):
                if process.poll() is not None:
                    raise RuntimeError(f"{binary} exited with {process.returncode} before listening")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{binary} did not open its DevTools port within {timeout} s")
                time.sleep(0.1)
            port = int(port_file.read_text().split()[0])
            return asyncio.run(_drive(port, path.resolve().as_uri(), expression, timeout))
        finally:
            _stop_group(process)


def _stop_group(process: subprocess.Popen) -> None:
    """Stop Chromium, started in a session of its own, and whatever of its process group outlives it."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # helpers still running (or the browser itself, after 10 s)
    except ProcessLookupError:
        pass
    process.wait()


SECTIONS_EXPRESSION = """
JSON.parse(JSON.stringify({
  title: document.title,
  sections: Array.from(document.querySelectorAll('section')).map(s => ({
    id: s.id,
    heading: (s.querySelector('h2') || {}).textContent || '',
    height: s.getBoundingClientRect().height,
    visible: getComputedStyle(s).display !== 'none' && getComputedStyle(s).visibility !== 'hidden',
    text: s.innerText.length,
    tables: s.querySelectorAll('table').length,
    rows: s.querySelectorAll('tbody tr').length,
    images: Array.from(s.querySelectorAll('img')).map(i => ({complete: i.complete, width: i.naturalWidth,
                                                           height: i.naturalHeight, alt: i.alt})),
    captions: Array.from(s.querySelectorAll('figcaption')).map(c => c.textContent),
  })),
  links: Array.from(document.querySelectorAll('nav a')).map(a => ({href: a.getAttribute('href'),
    target: !!document.querySelector(a.getAttribute('href'))})),
}))
"""


def dump(visit: PageVisit) -> str:
    return json.dumps({"errors": visit.errors, "value": visit.value}, indent=1)[:4000]


# How the page draws the first table cell holding Japanese (kana or Han): each of its distinct characters (up to 16)
# drawn alone in the cell's font on a canvas, its pixels hashed. A font without the script draws every character as
# the same empty box, so the hashes collapse to one; real glyphs give one hash per character.
GLYPHS_EXPRESSION = """
(() => {
  const japanese = /[\\u3040-\\u30ff\\u4e00-\\u9fff]/;
  const cell = Array.from(document.querySelectorAll('td')).find(td => japanese.test(td.textContent));
  if (!cell) return null;
  const chars = Array.from(new Set(Array.from(cell.textContent).filter(c => japanese.test(c)))).slice(0, 16);
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 64;
  const context = canvas.getContext('2d');
  const font = getComputedStyle(cell).fontFamily;
  const hashes = chars.map(c => {
    context.clearRect(0, 0, 64, 64);
    context.font = '48px ' + font;
    context.fillText(c, 4, 52);
    const pixels = context.getImageData(0, 0, 64, 64).data;
    let hash = 0, inked = 0;
    for (let i = 3; i < pixels.length; i += 4) { hash = (Math.imul(hash, 31) + pixels[i]) >>> 0; inked += pixels[i] > 0; }
    return hash + ':' + inked;
  });
  return {text: cell.textContent, chars: chars.length, distinct: new Set(hashes).size};
})()
"""
