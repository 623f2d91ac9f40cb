"""The push journal (infra.push): each journalled change has a per-user number; a page socket opened
with ``?since=`` learns where it stands, gets what it missed when it reconnects, and gets a change
whose push was lost (its worker died) at its next gap check."""

import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.models import User
from infra import push
from infra.consumers import UserConsumer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def journal(monkeypatch):
    """A memory journal of this test's own, and a replayer that names the entries it is given."""
    monkeypatch.setattr(push, "_journal_instance", push._MemoryJournal())
    monkeypatch.setitem(
        push._replayers,
        "probe",
        lambda user_id, entries: [
            [(f"probe-{e['n']}", f'<div id="probe-{e["n"]}" hx-swap-oob="true"></div>')] for e in entries
        ],
    )
    return push._journal_instance


def test_numbers_are_per_user_and_the_log_keeps_the_entries():
    journal = push._MemoryJournal()
    assert journal.record([1, 2], '{"kind":"probe","n":1}') == {1: 1, 2: 1}
    assert journal.record([1], '{"kind":"probe","n":2}') == {1: 2}
    assert journal.current(1) == 2 and journal.current(2) == 1 and journal.current(3) == 0
    assert journal.entries(1, 1, None) == [(2, {"kind": "probe", "n": 2})]


@pytest.mark.redis
def test_the_redis_journal_numbers_trims_and_reads_back(settings, monkeypatch):
    import redis

    user_id = 900_000_001
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(f"{push.JOURNAL_KEY_PREFIX}seq:{user_id}", f"{push.JOURNAL_KEY_PREFIX}log:{user_id}")
    journal = push._RedisJournal(settings.REDIS_URL)
    first = journal.record([user_id], '{"kind":"probe","n":1}')[user_id]
    second = journal.record([user_id], '{"kind":"probe","n":2}')[user_id]
    assert second == first + 1 == journal.current(user_id)
    assert journal.entries(user_id, first, None) == [(second, {"kind": "probe", "n": 2})]
    assert client.ttl(f"{push.JOURNAL_KEY_PREFIX}log:{user_id}") > 0
    monkeypatch.setattr(push, "JOURNAL_LENGTH", 2)
    third = journal.record([user_id], '{"kind":"probe","n":3}')[user_id]
    assert [seq for seq, _entry in journal.entries(user_id, 0, None)] == [second, third]  # the oldest trimmed
    client.delete(f"{push.JOURNAL_KEY_PREFIX}seq:{user_id}", f"{push.JOURNAL_KEY_PREFIX}log:{user_id}")


def test_a_cursor_holds_everything_up_to_its_low_number():
    cursor = push.Cursor(5)
    assert not cursor.saw([7, 8])  # 6 is missing
    assert cursor.low == 5 and cursor.seen() == {7, 8}
    assert cursor.saw([6]) and cursor.low == 8
    assert cursor.advance_to(10) and cursor.low == 10 and not cursor.advance_to(9)


def test_a_journal_that_cannot_be_written_does_not_stop_the_change(monkeypatch, caplog):
    class Broken:
        def record(self, users, entry):
            raise ConnectionError("redis is down")

    monkeypatch.setattr(push, "_journal_instance", Broken())
    assert push.record([1], "probe", n=1) == {}
    assert "could not journal" in caplog.text


def _socket(user, query: str = "") -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(UserConsumer.as_asgi(), f"/ws/user/{query}")
    communicator.scope["user"] = user
    communicator.scope["query_string"] = query.lstrip("?").encode()
    return communicator


def test_a_page_learns_where_it_stands_and_gets_what_it_missed_when_it_reconnects(journal):
    trader = User.objects.create_user("trader", password="x-long-password-1")

    async def scenario():
        page = _socket(trader, "?since=")
        assert (await page.connect())[0]
        assert json.loads(await page.receive_from(timeout=5)) == {"type": "seq", "seq": 0}
        numbers = await sync_to_async(push.record)([trader.pk], "probe", n=1)
        await sync_to_async(push.push_to_user)(trader.pk, "<p>one</p>", [numbers[trader.pk]])
        assert await page.receive_from(timeout=5) == "<p>one</p>"
        assert json.loads(await page.receive_from(timeout=5)) == {"type": "seq", "seq": 1}
        await page.disconnect()
        # While the page is away: a change whose push nobody received.
        await sync_to_async(push.record)([trader.pk], "probe", n=2)
        again = _socket(trader, "?since=1")
        assert (await again.connect())[0]
        assert json.loads(await again.receive_from(timeout=5)) == {
            "type": "replay",
            "after": 1,
            "upto": 2,
            "changes": 1,
        }
        assert await again.receive_from(timeout=5) == '<div id="probe-2" hx-swap-oob="true"></div>'
        assert json.loads(await again.receive_from(timeout=5)) == {"type": "seq", "seq": 2}
        await again.disconnect()

    async_to_sync(scenario)()


def test_an_open_socket_gets_a_change_whose_push_was_lost_at_its_next_gap_check(journal, monkeypatch):
    monkeypatch.setattr(push, "GAP_CHECK_SECONDS", 0.1)
    trader = User.objects.create_user("trader", password="x-long-password-1")

    async def scenario():
        page = _socket(trader, "?since=0")
        assert (await page.connect())[0]
        assert json.loads(await page.receive_from(timeout=5)) == {"type": "seq", "seq": 0}
        await sync_to_async(push.record)([trader.pk], "probe", n=7)  # journalled; its worker died before pushing
        assert json.loads(await page.receive_from(timeout=5))["type"] == "replay"
        assert await page.receive_from(timeout=5) == '<div id="probe-7" hx-swap-oob="true"></div>'
        assert json.loads(await page.receive_from(timeout=5)) == {"type": "seq", "seq": 1}
        await page.disconnect()

    async_to_sync(scenario)()


@pytest.mark.parametrize("query", ["", "?since=abc", "?since=-4", "?since=%ff"])
def test_a_socket_without_a_usable_since_only_forwards_pushes(journal, query):
    trader = User.objects.create_user("trader", password="x-long-password-1")

    async def scenario():
        page = _socket(trader, query)
        assert (await page.connect())[0]
        if query:  # asked, with nothing usable: from now on
            assert json.loads(await page.receive_from(timeout=5)) == {"type": "seq", "seq": 0}
        else:
            assert await page.receive_nothing(timeout=0.3)
        await page.disconnect()

    async_to_sync(scenario)()


def test_a_page_away_longer_than_the_log_keeps_is_told_to_reload_its_books(journal, monkeypatch):
    monkeypatch.setattr(push, "JOURNAL_LENGTH", 2)
    trader = User.objects.create_user("trader", password="x-long-password-1")
    for n in range(1, 5):
        push.record([trader.pk], "probe", n=n)
    assert not push.replay_complete(trader.pk, 0) and push.replay_complete(trader.pk, 2)

    async def scenario():
        page = _socket(trader, "?since=0")
        assert (await page.connect())[0]
        assert json.loads(await page.receive_from(timeout=5)) == {"type": "resync"}
        assert json.loads(await page.receive_from(timeout=5)) == {"type": "replay", "after": 0, "upto": 4, "changes": 2}
        replayed = await page.receive_from(timeout=5)
        assert "probe-3" in replayed and "probe-4" in replayed and "probe-1" not in replayed
        assert json.loads(await page.receive_from(timeout=5)) == {"type": "seq", "seq": 4}
        await page.disconnect()

    async_to_sync(scenario)()


def test_a_page_ahead_of_the_journal_after_redis_lost_it_is_told_to_reload_its_books(journal):
    trader = User.objects.create_user("trader", password="x-long-password-1")
    push.record([trader.pk], "probe", n=1)

    async def scenario():
        page = _socket(trader, "?since=40")  # numbered before Redis restarted empty
        assert (await page.connect())[0]
        assert json.loads(await page.receive_from(timeout=5)) == {"type": "resync"}
        assert json.loads(await page.receive_from(timeout=5)) == {"type": "seq", "seq": 1}
        await page.disconnect()

    async_to_sync(scenario)()


def test_a_push_the_layer_delivers_after_its_change_was_replayed_is_not_forwarded(journal, monkeypatch):
    from channels.layers import get_channel_layer

    from infra.consumers import user_group

    monkeypatch.setattr(push, "GAP_CHECK_SECONDS", 0.1)
    trader = User.objects.create_user("trader", password="x-long-password-1")

    async def scenario():
        page = _socket(trader, "?since=0")
        assert (await page.connect())[0]
        assert json.loads(await page.receive_from(timeout=5)) == {"type": "seq", "seq": 0}
        await sync_to_async(push.record)([trader.pk], "probe", n=7)  # its push is late
        assert json.loads(await page.receive_from(timeout=5))["type"] == "replay"
        assert await page.receive_from(timeout=5) == '<div id="probe-7" hx-swap-oob="true"></div>'  # replayed
        assert json.loads(await page.receive_from(timeout=5)) == {"type": "seq", "seq": 1}
        layer = get_channel_layer()
        await layer.group_send(user_group(trader.pk), {"type": "user.push", "html": "stale", "seqs": [1]})
        await layer.group_send(user_group(trader.pk), {"type": "user.push", "html": "unjournalled", "seqs": []})
        assert await page.receive_from(timeout=5) == "unjournalled"  # the stale one was dropped before it
        await page.disconnect()

    async_to_sync(scenario)()


def test_a_cursor_knows_what_it_has_delivered():
    cursor = push.Cursor(3)
    cursor.saw([5])
    assert cursor.delivered([2, 3]) and cursor.delivered([5]) and not cursor.delivered([4])
    assert not cursor.delivered([3, 4])


def test_a_page_further_behind_than_a_replay_is_worth_is_told_to_reload_its_books(journal, monkeypatch):
    from channels.layers import get_channel_layer

    from infra.consumers import user_group

    monkeypatch.setattr(push, "REPLAY_LIMIT", 3)
    trader = User.objects.create_user("trader", password="x-long-password-1")
    for n in range(1, 6):
        push.record([trader.pk], "probe", n=n)

    async def scenario():
        page = _socket(trader, "?since=1")  # 4 changes behind: more than a replay is allowed to cover
        assert (await page.connect())[0]
        assert json.loads(await page.receive_from(timeout=5)) == {"type": "resync"}
        assert json.loads(await page.receive_from(timeout=5)) == {"type": "seq", "seq": 5}
        assert await page.receive_nothing(timeout=0.3)
        # The reloaded books show every change up to 5: a push of one of them that comes late is stale.
        layer = get_channel_layer()
        await layer.group_send(user_group(trader.pk), {"type": "user.push", "html": "stale", "seqs": [4, 5]})
        await layer.group_send(user_group(trader.pk), {"type": "user.push", "html": "unjournalled", "seqs": []})
        assert await page.receive_from(timeout=5) == "unjournalled"
        await page.disconnect()

    async_to_sync(scenario)()


def test_the_sockets_of_one_user_that_missed_the_same_changes_share_one_render(journal, monkeypatch):
    trader = User.objects.create_user("trader", password="x-long-password-1")
    renders = []
    real = push.render_replay
    monkeypatch.setattr(push, "render_replay", lambda user_id, after: renders.append(after) or real(user_id, after))
    for n in range(1, 4):
        push.record([trader.pk], "probe", n=n)

    async def scenario():
        pages = [_socket(trader, "?since=1") for _ in range(3)]
        for page in pages:
            assert (await page.connect())[0]
        for page in pages:
            assert json.loads(await page.receive_from(timeout=5))["type"] == "replay"
            html = await page.receive_from(timeout=5)
            assert "probe-2" in html and "probe-3" in html and "probe-1" not in html
            assert json.loads(await page.receive_from(timeout=5)) == {"type": "seq", "seq": 3}
        for page in pages:
            await page.disconnect()

    async_to_sync(scenario)()
    assert renders == [1]  # rendered once, for all three


def test_a_render_older_than_a_push_the_socket_forwarded_is_not_replayed():
    rendered = push.Replay(after=0, as_of=4, rows={"a": "<p>a</p>"}, shows={3: ["a"], 4: ["a"]})
    assert rendered.serves(0, 4) and rendered.serves(2, 3)
    assert not rendered.serves(0, 5)  # the socket was sent change 5: this render may show older rows
    cursor = push.Cursor(2)
    cursor.saw([5])
    assert cursor.newest == 5 and cursor.low == 2
