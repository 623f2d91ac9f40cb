"""Each request runs its synchronous code on one thread lent by the process, and threads are reused."""

import asyncio
import threading

import pytest
from django.core.signals import request_finished, request_started

from infra.sync_asgi import RequestThreads, SyncChainASGIHandler

pytestmark = pytest.mark.django_db(transaction=True)


async def _get(handler, path: str) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[dict] = []
    done = asyncio.Event()
    requested = False

    async def receive():
        nonlocal requested
        if requested:  # the body was read: the client goes away once it has the response
            await done.wait()
            return {"type": "http.disconnect"}
        requested = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    await handler(scope, receive, send)
    return sent[0]["status"]


@pytest.fixture
def thread_log():
    """The thread of every request_started and request_finished, in order."""
    log: list[tuple[str, int]] = []

    def started(**kwargs):
        log.append(("started", threading.get_ident()))

    def finished(**kwargs):
        log.append(("finished", threading.get_ident()))

    request_started.connect(started, dispatch_uid="test-thread-log-started")
    request_finished.connect(finished, dispatch_uid="test-thread-log-finished")
    yield log
    request_started.disconnect(dispatch_uid="test-thread-log-started")
    request_finished.disconnect(dispatch_uid="test-thread-log-finished")


@pytest.fixture
def handler():
    handler = SyncChainASGIHandler()
    yield handler
    handler.threads.close()


def test_sequential_requests_reuse_one_thread_for_all_their_synchronous_work(handler, thread_log, beat_alive):

    async def three() -> list[int]:
        return [await _get(handler, "/api/health") for _ in range(3)]

    assert asyncio.run(three()) == [200, 200, 200]
    assert handler.threads.started == 1
    assert [event for event, _ in thread_log] == ["started", "finished"] * 3
    assert len({ident for _, ident in thread_log}) == 1
    assert threading.get_ident() not in {ident for _, ident in thread_log}


def test_concurrent_requests_each_get_a_thread_of_their_own(handler, thread_log, beat_alive):

    async def together() -> list[int]:
        return list(await asyncio.gather(*[_get(handler, "/api/health") for _ in range(4)]))

    assert asyncio.run(together()) == [200] * 4
    assert 1 <= handler.threads.started <= 4
    # every request's started and finished signals ran on one thread, which no other request held meanwhile
    holder: dict[int, int] = {}
    for event, ident in thread_log:
        holder[ident] = holder.get(ident, 0) + (1 if event == "started" else -1)
        assert holder[ident] in (0, 1)


def test_threads_beyond_the_idle_limit_are_stopped_when_handed_back():
    threads = RequestThreads(idle_limit=1)
    first, second = threads.borrow(), threads.borrow()
    assert first is not second and threads.started == 2
    first.submit(lambda: None).result()
    second.submit(lambda: None).result()
    threads.give_back(first)
    threads.give_back(second)  # over the limit: shut down
    assert threads.borrow() is first
    with pytest.raises(RuntimeError):
        second.submit(lambda: None)


def test_a_request_crosses_to_its_thread_once_and_gives_its_connection_back_before_the_response_is_sent(
    handler, thread_log, monkeypatch, beat_alive
):
    from concurrent.futures import ThreadPoolExecutor

    submitted = []
    original = ThreadPoolExecutor.submit

    def submit(self, fn, *args, **kwargs):
        submitted.append(fn)
        return original(self, fn, *args, **kwargs)

    monkeypatch.setattr(ThreadPoolExecutor, "submit", submit)
    assert asyncio.run(_get(handler, "/api/health")) == 200
    assert len(submitted) == 1  # request_started, the chain and view, and request_finished: one call
    assert [event for event, _ in thread_log] == ["started", "finished"]


def test_a_streaming_response_is_closed_after_its_body_is_sent(handler, thread_log, monkeypatch):
    from django.http import StreamingHttpResponse

    sent_before_close = []

    def streaming(request):
        def body():  # views are synchronous: so are their streams
            yield b"a"
            sent_before_close.append([event for event, _ in thread_log])
            yield b"b"

        return StreamingHttpResponse(body())

    monkeypatch.setattr(handler.wsgi, "get_response", streaming)
    assert asyncio.run(_get(handler, "/anything")) == 200
    assert sent_before_close == [["started"]]  # request_finished came only after the whole body
    assert [event for event, _ in thread_log] == ["started", "finished"]
