"""Interop: the official MCP Python SDK (1.x) as a client of `conduit`.

Every test starts its own conduit (and kills it at the end) and talks to it
over one of the three transports the SDK offers:

- ``streamable``: Streamable HTTP at ``/mcp`` (``streamable_http_client``, the
  SDK's non-deprecated name for ``streamablehttp_client``)
- ``sse``: legacy HTTP+SSE at ``/mcp/sse`` (``sse_client``)
- ``stdio``: ``conduit stdio`` spawned by ``stdio_client`` (and once from
  another working directory with ``--models``, calling a model tool)

The binary comes from ``CONDUIT_BIN`` (default: ``target/debug/conduit`` in
the repository root). Everything is bounded: each test runs under
``anyio.fail_after``, the SDK session has a read timeout, and the server
process is terminated (then killed) in the fixture's teardown.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, AsyncIterator

import anyio
import httpx
import pytest

from mcp import ClientSession, types
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from conduit_proc import CHILD_ENV, CONDUIT_BIN, REPO, ConduitProcess

TRANSPORTS = ["streamable", "sse", "stdio"]
TEST_TIMEOUT = 20.0  # seconds, per test body (connect + calls + teardown)
READ_TIMEOUT = timedelta(seconds=10)  # per SDK request

STATELESS = "2026-07-28"
META_VERSION = "io.modelcontextprotocol/protocolVersion"
META_CAPS = "io.modelcontextprotocol/clientCapabilities"
META_INFO = "io.modelcontextprotocol/clientInfo"

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --------------------------------------------------------------------------
# server process
# --------------------------------------------------------------------------


class Server(ConduitProcess):
    """A `conduit serve` with the conformance fixtures, ready to use."""

    def __init__(self) -> None:
        super().__init__(["--fixtures", "conformance"])
        self.base = f"http://{self.addr}"
        self._await_ready(timeout=10.0)

    def _await_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/health/ready", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        pytest.fail("conduit never became ready:\n" + "".join(self.log))


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Any:
    """A fresh HTTP conduit; for the stdio transport none is needed."""
    transport = request.node.callspec.params.get("transport")
    if transport == "stdio":
        yield None
        return
    s = Server()
    try:
        yield s
    finally:
        s.stop()
        # pytest shows captured teardown output only for a failing test.
        print("--- conduit log (last 50 lines) ---")
        print("".join(s.log[-50:]))


@asynccontextmanager
async def connect(transport: str, server: Server | None, **session_kwargs: Any) -> AsyncIterator[ClientSession]:
    """An initialized ClientSession over `transport`."""
    session_kwargs.setdefault("read_timeout_seconds", READ_TIMEOUT)
    if transport == "streamable":
        assert server is not None
        async with streamable_http_client(f"{server.base}/mcp") as (read, write, _sid):
            async with ClientSession(read, write, **session_kwargs) as session:
                await session.initialize()
                yield session
    elif transport == "sse":
        assert server is not None
        async with sse_client(f"{server.base}/mcp/sse", timeout=5, sse_read_timeout=30) as (read, write):
            async with ClientSession(read, write, **session_kwargs) as session:
                await session.initialize()
                yield session
    elif transport == "stdio":
        params = StdioServerParameters(
            command=str(CONDUIT_BIN),
            args=["stdio", "--fixtures", "conformance"],
            env={**CHILD_ENV, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
        )
        with tempfile.TemporaryFile("w+") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write):
                async with ClientSession(read, write, **session_kwargs) as session:
                    await session.initialize()
                    yield session
    else:  # pragma: no cover
        raise ValueError(transport)


def texts(result: types.CallToolResult | types.GetPromptResult | types.ReadResourceResult) -> list[str]:
    if isinstance(result, types.CallToolResult):
        return [c.text for c in result.content if isinstance(c, types.TextContent)]
    if isinstance(result, types.GetPromptResult):
        return [m.content.text for m in result.messages if isinstance(m.content, types.TextContent)]
    return [c.text for c in result.contents if isinstance(c, types.TextResourceContents)]


transports = pytest.mark.parametrize("transport", TRANSPORTS)


# --------------------------------------------------------------------------
# per-transport tests
# --------------------------------------------------------------------------


@transports
async def test_initialize_and_list_tools(transport: str, server: Server | None) -> None:
    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(transport, server) as session:
            init = session.get_server_capabilities()
            assert init is not None and init.tools is not None
            tools = await session.list_tools()
            names = {t.name for t in tools.tools}
            for want in ("echo", "add", "sleep", "test_tool_with_progress", "test_sampling"):
                assert want in names, names
            add = next(t for t in tools.tools if t.name == "add")
            assert add.outputSchema is not None
            assert add.outputSchema["properties"]["sum"]["type"] == "number"
            await session.send_ping()


@transports
async def test_echo_and_add(transport: str, server: Server | None) -> None:
    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(transport, server) as session:
            echo = await session.call_tool("echo", {"text": "héllo, conduit"})
            assert not echo.isError
            assert texts(echo) == ["héllo, conduit"]

            # call_tool also validates structuredContent against the outputSchema.
            add = await session.call_tool("add", {"a": 2, "b": 3.5})
            assert not add.isError
            assert add.structuredContent == {"sum": 5.5}
            # Backwards compatibility: the structured result is also serialized text.
            assert json.loads(texts(add)[0]) == {"sum": 5.5}

            bad = await session.call_tool("add", {"a": "two", "b": 3})
            assert bad.isError, "input validation failure must be an isError result"


@transports
async def test_resources(transport: str, server: Server | None) -> None:
    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(transport, server) as session:
            listed = await session.list_resources()
            assert "test://static-text" in {str(r.uri) for r in listed.resources}
            templates = await session.list_resource_templates()
            assert "test://template/{id}/data" in {t.uriTemplate for t in templates.resourceTemplates}

            static = await session.read_resource("test://static-text")
            assert len(static.contents) == 1
            assert str(static.contents[0].uri) == "test://static-text"
            assert texts(static) and texts(static)[0]

            tmpl = await session.read_resource("test://template/123/data")
            assert str(tmpl.contents[0].uri) == "test://template/123/data"
            assert "123" in texts(tmpl)[0]

            binary = await session.read_resource("test://static-binary")
            assert isinstance(binary.contents[0], types.BlobResourceContents)


@transports
async def test_prompt_with_arguments(transport: str, server: Server | None) -> None:
    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(transport, server) as session:
            prompts = await session.list_prompts()
            assert "test_prompt_with_arguments" in {p.name for p in prompts.prompts}
            got = await session.get_prompt("test_prompt_with_arguments", {"arg1": "alpha", "arg2": "beta"})
            body = " ".join(texts(got))
            assert "alpha" in body and "beta" in body, got


@transports
async def test_progress(transport: str, server: Server | None) -> None:
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(transport, server) as session:
            result = await session.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
            assert not result.isError
    progress = [p for p, _ in seen]
    assert len(progress) >= 3, seen
    assert progress == sorted(progress), seen
    assert progress[0] == 0 and progress[-1] == 100, seen


@transports
async def test_logging(transport: str, server: Server | None) -> None:
    logs: list[types.LoggingMessageNotificationParams] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params)

    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(transport, server, logging_callback=on_log) as session:
            result = await session.call_tool("test_tool_with_logging", {})
            assert not result.isError
    assert len(logs) >= 3, logs


async def _cancel_running_sleep(session: ClientSession, notifications: list[Any]) -> tuple[Any, float]:
    """Starts `sleep` (20 s), waits until it reports progress, cancels it the way
    a 1.x SDK user has to (the SDK does not send notifications/cancelled when the
    awaiting task is cancelled): send the notification, then cancel the task.
    Returns (request id, seconds from call start until the task ended)."""
    first_progress = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        first_progress.set()

    outcome: dict[str, Any] = {}
    request_id = session._request_id  # the id the SDK gives the next request

    async def call(scope_ready: anyio.Event, holder: list[anyio.CancelScope]) -> None:
        with anyio.CancelScope() as scope:
            holder.append(scope)
            scope_ready.set()
            outcome["result"] = await session.call_tool("sleep", {"ms": 20000}, progress_callback=on_progress)

    t0 = time.monotonic()
    async with anyio.create_task_group() as tg:
        holder: list[anyio.CancelScope] = []
        scope_ready = anyio.Event()
        tg.start_soon(call, scope_ready, holder)
        await scope_ready.wait()
        with anyio.fail_after(6):  # first progress after 10% of 20 s
            await first_progress.wait()
        await session.send_notification(
            types.ClientNotification(
                types.CancelledNotification(
                    params=types.CancelledNotificationParams(requestId=request_id, reason="interop test")
                )
            )
        )
        holder[0].cancel()
    elapsed = time.monotonic() - t0
    assert "result" not in outcome, outcome
    return request_id, elapsed


def _recording_handler(into: list[Any]):
    async def handler(message: Any) -> None:
        into.append((time.monotonic(), message))

    return handler


@transports
async def test_cancel_sleep(transport: str, server: Server | None) -> None:
    notifications: list[Any] = []
    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(transport, server, message_handler=_recording_handler(notifications)) as session:
            request_id, elapsed = await _cancel_running_sleep(session, notifications)
            assert elapsed < 8, elapsed
            cancelled_at = time.monotonic()

            # The server must stop working on it: `sleep` reports progress every
            # 2 s, so none may arrive for this request after a grace period.
            await anyio.sleep(2.6)

            def progress_after(t: float) -> list[Any]:
                return [
                    m
                    for ts, m in notifications
                    if ts > t
                    and isinstance(m, types.ServerNotification)
                    and isinstance(m.root, types.ProgressNotification)
                    and m.root.params.progressToken == request_id
                ]

            assert progress_after(cancelled_at + 0.3) == [], "server kept working on the cancelled call"

            # The session is still usable.
            echo = await session.call_tool("echo", {"text": "still here"})
            assert texts(echo) == ["still here"]
            add = await session.call_tool("add", {"a": 1, "b": 1})
            assert add.structuredContent == {"sum": 2}


@transports
async def test_no_response_after_cancel(transport: str, server: Server | None) -> None:
    """MCP (2025-11-25, utilities/cancellation): the receiver of
    notifications/cancelled SHOULD NOT send a response for the cancelled
    request. The SDK reports a response for a request it no longer waits for
    as a RuntimeError("Received response with an unknown request ID ...")
    passed to the message handler."""
    messages: list[Any] = []
    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(transport, server, message_handler=_recording_handler(messages)) as session:
            request_id, _ = await _cancel_running_sleep(session, messages)
            await anyio.sleep(1.0)
            # A round trip after the cancel: anything the server sent for the
            # cancelled call before this reply has been seen by now.
            await session.call_tool("echo", {"text": "x"})
    stray = [str(m) for _, m in messages if isinstance(m, Exception)]
    assert stray == [], f"server answered cancelled request {request_id}: {stray}"


@transports
async def test_sampling(transport: str, server: Server | None) -> None:
    asked: list[types.CreateMessageRequestParams] = []

    async def sampling(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        asked.append(params)
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text="sampled by the python sdk"),
            model="interop-test-model",
            stopReason="endTurn",
        )

    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(transport, server, sampling_callback=sampling) as session:
            result = await session.call_tool("test_sampling", {"prompt": "What is 2+2?"})
            assert not result.isError, result
            body = " ".join(texts(result))
            assert "sampled by the python sdk" in body, body
            assert body.startswith("LLM response:"), body
            # and the session is still fine
            echo = await session.call_tool("echo", {"text": "after sampling"})
            assert texts(echo) == ["after sampling"]
    assert len(asked) == 1
    prompt_text = " ".join(
        m.content.text for m in asked[0].messages if isinstance(m.content, types.TextContent)
    )
    assert "What is 2+2?" in prompt_text, asked[0]


@transports
async def test_a_tool_set_change_reaches_the_client_as_list_changed(transport: str, server: Server | None) -> None:
    """Every change of the tool set sends notifications/tools/list_changed
    (#15): over stdio, on the session's GET stream, on the legacy stream."""
    changed = anyio.Event()

    async def handler(message: Any) -> None:
        if isinstance(message, types.ServerNotification) and isinstance(
            message.root, types.ToolListChangedNotification
        ):
            changed.set()

    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(transport, server, message_handler=handler) as session:
            before = {t.name for t in (await session.list_tools()).tools}
            result = await session.call_tool("test_trigger_tool_change", {})
            assert not result.isError, result
            with anyio.fail_after(5):
                await changed.wait()
            after = {t.name for t in (await session.list_tools()).tools}
            assert after ^ before == {"test_dynamic_tool"}, (before, after)


# --------------------------------------------------------------------------
# both eras on one server
# --------------------------------------------------------------------------


def _stateless_post(base: str, method: str, params: dict[str, Any], name: str | None = None, rid: int = 1) -> httpx.Response:
    params = dict(params)
    params["_meta"] = {
        META_VERSION: STATELESS,
        META_CAPS: {},
        META_INFO: {"name": "interop-raw", "version": "0"},
    }
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": STATELESS,
        "Mcp-Method": method,
    }
    if name is not None:
        headers["Mcp-Name"] = name
    body = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
    return httpx.post(f"{base}/mcp", json=body, headers=headers, timeout=10)


def _json_or_sse(resp: httpx.Response) -> dict[str, Any]:
    ctype = resp.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        return resp.json()
    assert ctype.startswith("text/event-stream"), ctype
    for line in resp.text.splitlines():
        if line.startswith("data:") and line[5:].strip():
            msg = json.loads(line[5:])
            if "result" in msg or "error" in msg:
                return msg
    raise AssertionError(f"no response in SSE body: {resp.text!r}")


@pytest.mark.parametrize("transport", ["streamable"])
async def test_session_and_stateless_on_one_server(transport: str, server: Server) -> None:
    with anyio.fail_after(TEST_TIMEOUT):
        async with connect(transport, server) as session:
            echo = await session.call_tool("echo", {"text": "session era"})
            assert texts(echo) == ["session era"]

            # Raw 2026-07-28 requests against the same server, while the session is open.
            def raw() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
                return (
                    _stateless_post(server.base, "server/discover", {}, rid=1),
                    _stateless_post(server.base, "tools/call", {"name": "echo", "arguments": {"text": "stateless era"}}, name="echo", rid=2),
                    _stateless_post(server.base, "tools/call", {"name": "add", "arguments": {"a": 20, "b": 22}}, name="add", rid=3),
                )

            discover, r_echo, r_add = await anyio.to_thread.run_sync(raw)
            for resp in (discover, r_echo, r_add):
                assert resp.status_code == 200, (resp.status_code, resp.text)
                assert "mcp-session-id" not in resp.headers, "stateless replies carry no session"

            d = _json_or_sse(discover)
            assert d["id"] == 1 and d["result"]["resultType"] == "complete", d
            assert STATELESS in d["result"]["supportedVersions"], d

            e = _json_or_sse(r_echo)
            assert e["id"] == 2, e
            assert e["result"]["resultType"] == "complete", e
            assert e["result"]["content"] == [{"type": "text", "text": "stateless era"}], e

            a = _json_or_sse(r_add)
            assert a["result"]["structuredContent"] == {"sum": 42}, a

            # Header/body mismatch is rejected in the stateless era.
            bad = await anyio.to_thread.run_sync(
                lambda: _stateless_post(server.base, "tools/call", {"name": "echo", "arguments": {"text": "x"}}, name="add", rid=4)
            )
            assert bad.status_code == 400, (bad.status_code, bad.text)
            assert bad.json()["error"]["code"] == -32020, bad.text

            # The session-era client is unaffected.
            add = await session.call_tool("add", {"a": 1, "b": 2})
            assert add.structuredContent == {"sum": 3}
            again = await session.call_tool("echo", {"text": "session era again"})
            assert texts(again) == ["session era again"]


# --------------------------------------------------------------------------
# text models as tools (issue #14)
# --------------------------------------------------------------------------


async def test_an_agent_embeds_and_ranks_text_with_minilm() -> None:
    """The SDK's client calls embed_minilm and rank_minilm (models/minilm,
    fetched by scripts/fetch-text-models) over Streamable HTTP."""
    ort = os.environ.get("ORT_DYLIB_PATH", str(REPO / ".cache/onnxruntime/libonnxruntime.so.1.31.1"))
    proc = ConduitProcess(["--models", str(REPO / "models")], {"ORT_DYLIB_PATH": ort})
    base = f"http://{proc.addr}"
    try:
        deadline = time.monotonic() + 60
        while httpx.get(f"{base}/v2/models/minilm/ready", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "minilm did not load:\n" + "".join(proc.log)
            time.sleep(0.1)
        async with streamable_http_client(f"{base}/mcp") as (read, write, _sid):
            async with ClientSession(read, write, read_timeout_seconds=READ_TIMEOUT) as session:
                await session.initialize()
                names = {t.name for t in (await session.list_tools()).tools}
                assert {"embed_minilm", "rank_minilm"} <= names, names
                r = await session.call_tool("embed_minilm", {"texts": ["hello world", "hi"]})
                assert not r.isError, r
                s = r.structuredContent
                assert s["dimensions"] == 384 and len(s["embeddings"]) == 2
                assert abs(sum(x * x for x in s["embeddings"][0]) - 1.0) < 1e-3
                r = await session.call_tool(
                    "rank_minilm",
                    {
                        "query": "How do I bake bread?",
                        "documents": ["Stocks fell today.", "Knead the dough, let it rise, bake at 220 C."],
                    },
                )
                assert not r.isError, r
                assert r.structuredContent["results"][0]["index"] == 1, r.structuredContent
    finally:
        proc.stop()


async def test_stdio_started_from_another_directory_calls_a_model_tool() -> None:
    """A desktop agent starts `conduit stdio --models /abs/path` from a
    directory of its own, with no ONNX Runtime setting (#15): the library
    is found relative to the executable or in the user cache (both filled
    by scripts/fetch-onnxruntime), the first tools/list has the model's
    tool, and calling it runs the model."""
    expected = json.loads((REPO / "tests/fixtures/models/expected.json").read_text())
    env = {k: v for k, v in CHILD_ENV.items() if k not in ("ORT_DYLIB_PATH", "CONDUIT_ML_ORT_LIBRARY")}
    env["RUST_LOG"] = os.environ.get("RUST_LOG", "info")
    with tempfile.TemporaryDirectory() as cwd, tempfile.TemporaryFile("w+") as errlog:
        params = StdioServerParameters(
            command=str(CONDUIT_BIN),
            args=["stdio", "--models", str(REPO / "tests/fixtures/models")],
            env=env,
            cwd=cwd,
        )
        with anyio.fail_after(TEST_TIMEOUT):
            async with stdio_client(params, errlog=errlog) as (read, write):
                async with ClientSession(read, write, read_timeout_seconds=READ_TIMEOUT) as session:
                    await session.initialize()
                    names = {t.name for t in (await session.list_tools()).tools}
                    errlog.seek(0)
                    log = errlog.read()
                    assert {"model_mlp", "model_two_io", "list_models"} <= names, (names, log)
                    r = await session.call_tool("model_mlp", {"input": expected["mlp"]["input"]})
                    assert not r.isError, r
                    out = r.structuredContent["outputs"]["output"]
                    assert out["shape"] == [len(expected["mlp"]["input"]), 4], out
                    want = [x for row in expected["mlp"]["output"] for x in row]
                    assert all(abs(g - w) <= 1e-4 * max(abs(w), 1.0) for g, w in zip(out["data"], want)), (out, want)
        errlog.seek(0)
        log = errlog.read()
    assert "ONNX Runtime loaded" in log, log
    assert "inference is off" not in log, log
