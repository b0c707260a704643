"""The fake Telegram Bot API answers python-telegram-bot as Telegram does (real HTTP, 127.0.0.1)."""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from telegram import Bot
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.request import HTTPXRequest

from fakes.telegram import DEFAULT_TOKEN, FakeTelegram


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    fake = FakeTelegram(blocked_chats={"666"}, missing_chats={"404"})
    with fake.running_in_thread():
        yield fake


def bot(fake: FakeTelegram, token: str = DEFAULT_TOKEN, read_timeout: float = 5) -> Bot:
    request = HTTPXRequest(read_timeout=read_timeout, httpx_kwargs={"trust_env": False})
    return Bot(token, base_url=f"{fake.base_url}/bot", request=request)


def send(fake: FakeTelegram, text: str = "<b>hi</b>", chat_id: str = "42", **kwargs):
    async def go():
        async with bot(fake, **kwargs) as b:
            return await b.send_message(chat_id, text, parse_mode="HTML")

    return asyncio.run(go())


def test_send_message_is_answered_with_a_message_and_recorded(fake: FakeTelegram) -> None:
    message = send(fake, chat_id="-1001234")
    assert message.message_id == 1
    assert message.chat.id == -1001234
    assert message.chat.type == "supergroup"
    assert message.text == "<b>hi</b>"
    assert [(m.chat_id, m.text, m.parse_mode) for m in fake.messages] == [
        ("-1001234", "<b>hi</b>", "HTML")
    ]


def test_a_json_body_is_accepted_like_a_form(fake: FakeTelegram) -> None:
    reply = httpx.post(
        f"{fake.base_url}/bot{DEFAULT_TOKEN}/sendMessage",
        json={"chat_id": 7, "text": "plain", "disable_notification": True},
        trust_env=False,
    ).json()
    assert reply["ok"] is True
    assert reply["result"]["chat"] == {"id": 7, "type": "private"}
    assert fake.messages[-1].disable_notification is True


def test_429_carries_retry_after_and_the_client_raises_retry_after(fake: FakeTelegram) -> None:
    fake.rate_limit_next(1, retry_after=3)
    with pytest.raises(RetryAfter) as caught:
        send(fake)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert caught.value.retry_after in (3, timedelta(seconds=3))
    assert fake.requests[-1].status == 429
    assert send(fake).message_id == 1  # only the next one was limited


def test_broken_html_is_refused_as_telegram_does(fake: FakeTelegram) -> None:
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        send(fake, text="<b>unclosed")
    assert not fake.messages


def test_wrong_token_blocked_bot_and_missing_chat(fake: FakeTelegram) -> None:
    with pytest.raises(InvalidToken):
        send(fake, token="999:WRONG")
    with pytest.raises(Forbidden, match="blocked"):
        send(fake, chat_id="666")
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        send(fake, chat_id="404")


def test_down_refuses_connections_then_comes_back(fake: FakeTelegram) -> None:
    fake.go_down("refuse")
    with pytest.raises(NetworkError) as caught:
        send(fake)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    fake.come_back()
    assert send(fake).message_id == 1


def test_down_as_502(fake: FakeTelegram) -> None:
    fake.go_down("502")
    with pytest.raises(NetworkError, match="502"):
        send(fake)
    fake.come_back()
    assert send(fake).message_id == 1


def test_stall_records_the_message_and_never_answers(fake: FakeTelegram) -> None:
    fake.stall()
    with pytest.raises(TimedOut):
        send(fake, read_timeout=0.5)
    assert fake.texts() == ["<b>hi</b>"]  # delivered, though the sender never heard so
    fake.stall(False)
    assert send(fake).message_id == 2


def test_latency_delays_the_answer(fake: FakeTelegram) -> None:
    fake.switches.latency = 0.3
    started = time.monotonic()
    send(fake)
    assert time.monotonic() - started >= 0.3


def test_get_updates_serves_injected_updates_until_confirmed(fake: FakeTelegram) -> None:
    update = fake.inject_update(
        {
            "message": {
                "message_id": 5,
                "date": int(time.time()),
                "chat": {"id": 42, "type": "private"},
                "text": "/top",
            }
        }
    )

    async def go():
        async with bot(fake) as b:
            first = await b.get_updates(timeout=0)
            again = await b.get_updates(offset=update["update_id"] + 1, timeout=0)
            me = await b.get_me()
            return first, again, me

    first, again, me = asyncio.run(go())
    assert [u.message.text for u in first] == ["/top"]
    assert again == ()
    assert me.is_bot is True


def test_the_control_plane_lets_a_person_type_into_a_chat_and_read_what_was_delivered(
    fake: FakeTelegram,
) -> None:
    typed = httpx.post(
        f"{fake.base_url}/__fake__/updates",
        json={"chat_id": 42, "text": "/status"},
        trust_env=False,
    ).json()
    send(fake, text="<b>ok</b>", chat_id="42")

    async def go():
        async with bot(fake) as b:
            return await b.get_updates(timeout=0)

    (update,) = asyncio.run(go())
    assert typed["ok"] is True
    assert update.update_id == typed["result"]["update_id"]
    assert (update.message.chat.id, update.message.chat.type) == (42, "private")
    assert update.message.from_user.id == 42
    assert update.message.text == "/status"
    delivered = httpx.get(f"{fake.base_url}/__fake__/messages", trust_env=False).json()
    assert [(m["chat_id"], m["text"]) for m in delivered["result"]] == [("42", "<b>ok</b>")]


@pytest.mark.parametrize(
    "body",
    [{"text": "/status"}, {"chat_id": 42}, {"chat_id": 42, "text": "  "}, {"chat_id": True}],
)
def test_the_control_plane_refuses_an_update_without_chat_or_text(
    fake: FakeTelegram, body: dict
) -> None:
    answer = httpx.post(f"{fake.base_url}/__fake__/updates", json=body, trust_env=False)

    assert answer.status_code == 400
    assert answer.json()["ok"] is False
    assert fake.inject_update({"message": {"text": "probe"}})["update_id"] == 1  # none queued
