"""A Hub left running in a real Jupyter kernel (ipykernel, driven by jupyter_client) never hangs it.

Each test starts a kernel on this interpreter, runs a Hub in it with a `Subscriber` consuming through
`on_event` in a background thread, and then interrupts, restarts or shuts the kernel down. jupyter_client
is told to wait far longer than the asserted bound before it would terminate or kill the kernel, so a
kernel that exits in time, with status 0, exited by itself. A raw stream held open from this process shows
that the Hub inside was stopped gracefully (clients told `disconnected`) on the way out.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from jupyter_client.provisioning.local_provisioner import LocalProvisioner

from tests.support.hubs import wait_for
from tests.support.raw_stream import RawStream

pytestmark = pytest.mark.slow  # real kernels started and restarted

WAIT = 30.0  # seconds for a kernel to start or a cell to run: generous, for a loaded CI machine
PROMPT = 5.0  # seconds an interrupt, restart or shutdown may take at most (each takes well under 1 s)

# What a notebook user would run: a Hub on a free port and a subscriber calling back from a thread.
SETUP = """
import threading
from metricstream import Hub

hub = Hub(port=0).start()
seen = threading.Event()

def note(event):
    if event.type == "metric_reading_created":
        seen.set()

sub = hub.subscribe().on_event(note)
print(hub.url)
"""


@dataclass
class Kernel:
    manager: KernelManager
    client: BlockingKernelClient
    log: Path

    def run(self, code: str, cell_id: str | None = None) -> str:
        """Execute a cell; its printed output, or an AssertionError carrying its traceback. With `cell_id`,
        the request carries it as JupyterLab sends it (`cellId` in the metadata); without, as nbval does."""
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {}}
        metadata = {} if cell_id is None else {"cellId": cell_id}
        request = self.client.session.msg("execute_request", content, metadata=metadata)
        self.client.shell_channel.send(request)
        msg_id = request["header"]["msg_id"]
        output: list[str] = []
        deadline = time.monotonic() + WAIT
        while True:  # the cell's output, up to the kernel's going idle after it
            try:
                message = self.client.get_iopub_msg(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"the cell did not finish within {WAIT}s: {output}") from None
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            kind, body = message["msg_type"], message["content"]
            if kind == "stream":
                output.append(body["text"])
            elif kind == "error":
                output.append("\n".join(body["traceback"]))
            elif kind == "status" and body["execution_state"] == "idle":
                break
        assert self.reply(msg_id)["status"] == "ok", "".join(output)
        return "".join(output)

    def reply(self, msg_id: str) -> dict[str, Any]:
        """The content of the execute_reply to `msg_id`."""
        deadline = time.monotonic() + WAIT
        while True:
            try:
                message = self.client.get_shell_msg(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"no reply within {WAIT}s; kernel log:\n{self.log.read_text()}"
                ) from None
            if message["parent_header"].get("msg_id") == msg_id:
                return cast(dict[str, Any], message["content"])

    def process(self) -> Any:
        """The kernel's `subprocess.Popen`, kept to read its exit status after jupyter_client lets go."""
        return cast(LocalProvisioner, self.manager.provisioner).process

    def start_hub(self) -> str:
        """Run SETUP; the hub's URL once its subscriber is connected."""
        url = self.run(SETUP).strip()
        wait_for(lambda: clients(url) == 1, what="the kernel's subscriber to connect")
        return url


def clients(url: str) -> int:
    return int(httpx.get(f"{url}/healthz", timeout=10).json()["clients"])


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Kernel]:
    """A kernel running this interpreter, isolated from the user's Jupyter and IPython files."""
    spec = tmp_path / "kernels" / "metricstream-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "test", "language": "python"})
    )
    manager = KernelManager(
        kernel_name="metricstream-test",
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")]),
        connection_file=str(tmp_path / "connection.json"),
        shutdown_wait_time=4 * PROMPT,  # it must exit by itself long before jupyter_client would act
    )
    env = {name: value for name, value in os.environ.items() if not name.startswith("METRICSTREAM_")}
    env["IPYTHONDIR"] = str(tmp_path / "ipython")
    log = tmp_path / "kernel.log"
    with log.open("w") as output:
        manager.start_kernel(env=env, stdout=output, stderr=output)
        client = manager.client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=WAIT)
            yield Kernel(manager, client, log)
        finally:
            client.stop_channels()
            if manager.has_kernel:
                manager.shutdown_kernel(now=True)


def expect_goodbye(stream: RawStream) -> None:
    """The hub in the kernel ended this stream properly: `disconnected`, then the end of the body."""
    assert [frame.data for frame in stream.read_to_end(timeout=PROMPT) if frame.fields] == ["disconnected"]
    assert stream.chunked_done


def test_interrupt_ends_a_cell_iterating_a_subscriber_and_the_kernel_answers(kernel: Kernel) -> None:
    url = kernel.start_hub()
    msg_id = kernel.client.execute("for event in hub.subscribe():\n    pass")
    wait_for(lambda: clients(url) == 2, what="the cell to block on its subscriber")

    interrupted_at = time.monotonic()
    kernel.manager.interrupt_kernel()
    reply = kernel.reply(msg_id)
    assert time.monotonic() - interrupted_at < PROMPT
    assert (reply["status"], reply["ename"]) == ("error", "KeyboardInterrupt")

    wait_for(lambda: clients(url) == 1, what="the interrupted cell's subscriber to leave")
    metric = httpx.post(f"{url}/metrics", json={"name": "after the interrupt"}, timeout=10).json()
    httpx.post(f"{url}/metrics/readings", json={"metric_id": metric["id"], "value": 1}, timeout=10)
    # The kernel answers; the hub and the background subscriber were left untouched by the interrupt.
    assert kernel.run("print(seen.wait(10), hub.running, sub.error)").split() == ["True", "True", "None"]


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "cell-blocked-on-a-subscriber"])
def test_restart_is_prompt_and_stops_the_hub_gracefully(kernel: Kernel, busy: bool) -> None:
    url = kernel.start_hub()
    port = int(url.rsplit(":", 1)[1])
    stream = RawStream(url)
    try:
        stream.expect_open()
        if busy:
            kernel.client.execute("for event in hub.subscribe():\n    pass")
            wait_for(lambda: clients(url) == 3, what="the cell to block on its subscriber")
        old = kernel.process()

        restarted_at = time.monotonic()
        kernel.manager.restart_kernel(now=False)
        assert time.monotonic() - restarted_at < PROMPT
        assert old.returncode == 0, kernel.log.read_text()
        expect_goodbye(stream)
    finally:
        stream.close()

    kernel.client.wait_for_ready(timeout=WAIT)
    # A fresh kernel, and the old hub's port is free again for a hub started in it.
    code = f"from metricstream import Hub\nprint('hub' in dir(), Hub(port={port}).start().url)"
    assert kernel.run(code).split() == ["False", url]
    if not busy:  # (ipykernel itself logs an error when a busy kernel's reply cannot be sent any more)
        assert "Traceback" not in kernel.log.read_text()


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "cell-blocked-on-a-subscriber"])
def test_shutdown_is_prompt_and_stops_the_hub_gracefully(kernel: Kernel, busy: bool) -> None:
    url = kernel.start_hub()
    stream = RawStream(url)
    try:
        stream.expect_open()
        if busy:
            kernel.client.execute("for event in hub.subscribe():\n    pass")
            wait_for(lambda: clients(url) == 3, what="the cell to block on its subscriber")
        process = kernel.process()

        shutdown_at = time.monotonic()
        kernel.manager.shutdown_kernel(now=False)
        assert time.monotonic() - shutdown_at < PROMPT
        assert process.returncode == 0, kernel.log.read_text()
        assert not kernel.manager.has_kernel
        expect_goodbye(stream)
    finally:
        stream.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz", timeout=10)
    if not busy:
        assert "Traceback" not in kernel.log.read_text()


# --- a re-run cell replaces the hub its earlier run started ---------------------------------------

CELL = "hub = Hub(port=0).start()\nprint(hub.url)"


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=10).status_code == 200
    except httpx.ConnectError:
        return False


def hubs_running(kernel: Kernel) -> int:
    """How many hub threads the kernel runs (each hub serves from one, named after it)."""
    code = (
        "import threading\nprint(sum(t.name.startswith('metricstream-hub-') for t in threading.enumerate()))"
    )
    return int(kernel.run(code))


def test_a_rerun_cell_stops_the_hub_its_earlier_run_started(kernel: Kernel) -> None:
    kernel.run("from metricstream import Hub")
    first = kernel.run(CELL, cell_id="cell-a").strip()
    other = kernel.run("other = Hub(port=0).start()\nprint(other.url)", cell_id="cell-b").strip()

    *notes, second = kernel.run(CELL, cell_id="cell-a").splitlines()
    assert notes == [f"metricstream: stopping the hub at {first}, started by an earlier run of this cell"]
    assert not answers(first)
    assert answers(second)
    assert answers(other)  # another cell's hub is untouched

    # The cell edited and run again is still the same cell (its id stays).
    third = kernel.run(CELL.replace("port=0", "port=0, heartbeat=5"), cell_id="cell-a").splitlines()[-1]
    assert not answers(second)
    # Hubs one run of a cell creates are all kept.
    pair = kernel.run(
        "pair = [Hub(port=0).start() for _ in range(2)]\nprint(*(h.url for h in pair))", "cell-c"
    )
    assert all(answers(url) for url in [third, other, *pair.split()])
    assert hubs_running(kernel) == 4


def test_without_a_cell_id_a_rerun_of_the_same_code_stops_its_earlier_hub(kernel: Kernel) -> None:
    """nbval and bare jupyter_client send no cell id: the code itself identifies the cell."""
    kernel.run("from metricstream import Hub")
    first = kernel.run(CELL).strip()
    second = kernel.run(CELL).splitlines()[-1]
    assert not answers(first)
    other = kernel.run(CELL.replace("port=0", "port=0, heartbeat=5")).strip()  # other code: another cell
    assert answers(second)
    assert answers(other)
    assert hubs_running(kernel) == 2
