"""A local fake of the Telegram Bot API, speaking its wire format over real HTTP on 127.0.0.1.

python-telegram-bot is pointed at it through TELEGRAM_API_URL (the Bot's `base_url` is
`{TELEGRAM_API_URL}/bot`), so tests exercise the real client: its request encoding, its error
mapping (`RetryAfter`, `BadRequest`, `Forbidden`, `InvalidToken`, `NetworkError`, `TimedOut`).

    fake = FakeTelegram(token="123:TEST")
    with fake.running_in_thread() as base_url:      # e.g. http://127.0.0.1:41234
        fake.rate_limit_next(1, retry_after=1)      # the next sendMessage gets a 429
        ...
        fake.messages                               # what Telegram "delivered", in order

Methods: `sendMessage` (JSON or form body), `getMe`, `getUpdates` (a queue the test fills with
`inject_update`). Errors are Telegram's: 429 with `parameters.retry_after`, 400 "can't parse
entities" for broken HTML, 400 "chat not found", 401 for a wrong token, 403 for a blocked bot.

Switches: `go_down("refuse" | "502")` / `come_back()`, `rate_limit_next(n, retry_after)`,
`latency` (seconds before each answer) and `stall_after_receiving` (record the message as
delivered, then never answer: the client's send is cut off after Telegram got the message, which is
what a worker killed between send and mark looks like).

Run by hand: `python -m fakes.telegram --port 8081`. A person trying the product against it (the
guide docs/guides/telegram.md) has a control plane instead of the test's method calls:
`POST /__fake__/updates` with `{"chat_id": 42, "text": "/status"}` (optional "username") queues
what that chat typed as a getUpdates message, and `GET /__fake__/messages` lists what the fake
delivered; `--echo` (on when run by hand) also prints each delivered message.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from aiohttp import web

from fakes.threaded_server import serve_in_thread

DEFAULT_TOKEN = "123456:TEST-TOKEN"  # noqa: S105 - the fake's own token, not a secret
MAX_TEXT_LENGTH = 4096
# The tags Telegram's HTML parse mode accepts (https://core.telegram.org/bots/api#html-style).
ALLOWED_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
    }
)
ALLOWED_ENTITIES = frozenset({"lt", "gt", "amp", "quot"})


@dataclass(frozen=True)
class Received:
    """One sendMessage request as the fake saw it (every attempt, answered or not)."""

    at: float  # time.time() when it arrived
    chat_id: str
    text: str
    parse_mode: str | None
    disable_notification: bool
    status: int  # the HTTP status answered (0: never answered: stalled or down)
    message_id: int | None  # set when the message counts as delivered


@dataclass
class _Switches:
    down: str | None = None  # None, "refuse" (connection refused) or "502"
    rate_limit_next: int = 0
    retry_after: int = 1
    latency: float = 0.0
    stall_after_receiving: bool = False


class _HtmlChecker(HTMLParser):
    """Telegram's HTML parse mode, strictly enough to reject what Telegram rejects."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.error: str | None = None

    def _fail(self, message: str) -> None:
        if self.error is None:
            self.error = message

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self._fail(f'Unsupported start tag "{tag}"')
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self._fail(f'Unexpected end tag "{tag}"')
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if "<" in data:
            self._fail('Unsupported start tag "" (a bare "<" must be written &lt;)')

    def handle_entityref(self, name: str) -> None:
        if name not in ALLOWED_ENTITIES:
            self._fail(f'Unsupported HTML entity "&{name};"')

    def check(self, text: str) -> str | None:
        self.feed(text)
        self.close()
        if self.stack:
            self._fail(f'Can\'t find end tag corresponding to start tag "{self.stack[-1]}"')
        return self.error


def html_error(text: str) -> str | None:
    """Why Telegram would refuse `text` in HTML parse mode, or None."""
    return _HtmlChecker().check(text)


def chat_type(chat_id: str) -> str:
    if chat_id.startswith("@"):
        return "channel"
    if chat_id.startswith("-100"):
        return "supergroup"
    if chat_id.startswith("-"):
        return "group"
    return "private"


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


class FakeTelegram:
    """The fake server. Its records and switches are safe to use from the test's thread."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        blocked_chats: set[str] | None = None,
        missing_chats: set[str] | None = None,
        echo: bool = False,
    ) -> None:
        self.token = token
        self.echo = echo  # print each delivered message (the fake run by hand)
        self.blocked_chats = set(blocked_chats or ())
        self.missing_chats = set(missing_chats or ())
        self.switches = _Switches()
        self.requests: list[Received] = []  # every sendMessage attempt
        self.messages: list[Received] = []  # the delivered ones, in delivery order
        self.calls: list[tuple[float, str]] = []  # (time, method) of every API call
        self.base_url: str | None = None
        self._lock = threading.Lock()
        self._message_id = 0
        self._updates: list[dict[str, Any]] = []
        self._update_id = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self._release: asyncio.Event | None = None
        self._new_update: asyncio.Event | None = None

    # --- switches (call from any thread) ---------------------------------------------------------

    def go_down(self, mode: str = "refuse") -> None:
        """Stop answering: "refuse" closes the port, "502" answers Bad Gateway."""
        if mode not in ("refuse", "502"):
            raise ValueError("mode is 'refuse' or '502'")
        self.switches.down = mode
        if mode == "refuse":
            self._call_in_loop(self._close_site())

    def come_back(self) -> None:
        was = self.switches.down
        self.switches.down = None
        if was == "refuse":
            self._call_in_loop(self._open_site())

    def rate_limit_next(self, count: int, retry_after: int = 1) -> None:
        """Answer the next `count` sendMessage calls with 429 and `retry_after` seconds."""
        self.switches.rate_limit_next = count
        self.switches.retry_after = retry_after

    def stall(self, on: bool = True) -> None:
        """Record each message as delivered, then never answer (until `stall(False)` or stop)."""
        self.switches.stall_after_receiving = on
        if not on and self._loop is not None and self._release is not None:
            self._loop.call_soon_threadsafe(self._release.set)

    def inject_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update for getUpdates; `update_id` is filled in when missing."""
        with self._lock:
            self._update_id += 1
            update = {"update_id": self._update_id, **update}
            self._updates.append(update)
        if self._loop is not None and self._new_update is not None:
            self._loop.call_soon_threadsafe(self._new_update.set)
        return update

    def texts(self) -> list[str]:
        with self._lock:
            return [m.text for m in self.messages]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self.messages.clear()
            self.calls.clear()

    # --- the API ---------------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_post("/__fake__/updates", self._control_update)
        app.router.add_get("/__fake__/messages", self._control_messages)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    @staticmethod
    def _answer(status: int, payload: dict[str, Any]) -> web.Response:
        return web.json_response(payload, status=status)

    @classmethod
    def _error(
        cls, code: int, description: str, parameters: dict[str, Any] | None = None
    ) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        return cls._answer(code, body)

    # --- the control plane (a person's stand-in for the test's method calls) ------------------

    async def _control_update(self, request: web.Request) -> web.Response:
        """`{"chat_id": 42, "text": "/status"}`: queue a message that chat typed; 400 naming a
        missing or malformed field."""
        try:
            body = await request.json()
        except ValueError:
            return self._error(
                400, 'Bad Request: body must be JSON like {"chat_id": 42, "text": ".."}'
            )
        if not isinstance(body, dict):
            return self._error(400, "Bad Request: body must be a JSON object")
        chat_id, text = body.get("chat_id"), body.get("text")
        if isinstance(chat_id, bool) or not isinstance(chat_id, int | str) or not str(chat_id):
            return self._error(400, "Bad Request: chat_id must be a number or @name")
        if not isinstance(text, str) or not text.strip():
            return self._error(400, "Bad Request: text must be a non-empty string")
        username = str(body.get("username") or "you")
        chat_key = str(chat_id)
        chat: dict[str, Any] = {"id": _chat_id_value(chat_key), "type": chat_type(chat_key)}
        if chat["type"] == "private":
            chat.update(first_name=username, username=username)
        else:
            chat["title"] = f"chat {chat_key}"
        with self._lock:
            self._message_id += 1
            message_id = self._message_id
        update = self.inject_update(
            {
                "message": {
                    "message_id": message_id,
                    "date": int(time.time()),
                    "chat": chat,
                    # In a private chat the sender is the chat; elsewhere some member.
                    "from": {
                        "id": chat["id"] if chat["type"] == "private" else 1000,
                        "is_bot": False,
                        "first_name": username,
                    },
                    "text": text,
                }
            }
        )
        return self._answer(200, {"ok": True, "result": update})

    async def _control_messages(self, request: web.Request) -> web.Response:
        with self._lock:
            delivered = [
                {"chat_id": m.chat_id, "text": m.text, "message_id": m.message_id}
                for m in self.messages
            ]
        return self._answer(200, {"ok": True, "result": delivered})

    async def _not_found(self, request: web.Request) -> web.Response:
        return self._error(404, "Not Found")

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            body = await request.json() if request.can_read_body else {}
            params.update(body or {})
        elif request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                params[key] = value if isinstance(value, str) else str(value)
        return params

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        with self._lock:
            self.calls.append((time.time(), method))
        if self.switches.latency > 0:
            await asyncio.sleep(self.switches.latency)
        if self.switches.down == "502":
            return web.Response(status=502, text="<html><body>502 Bad Gateway</body></html>")
        if request.match_info["token"] != self.token:
            return self._error(401, "Unauthorized")
        params = await self._params(request)
        handler = {
            "sendmessage": self._send_message,
            "getme": self._get_me,
            "getupdates": self._get_updates,
        }.get(method.lower())
        if handler is None:
            return self._error(404, "Not Found")
        return await handler(params)

    async def _get_me(self, params: dict[str, Any]) -> web.Response:
        bot_id = int(self.token.split(":", 1)[0]) if self.token.split(":")[0].isdigit() else 1
        return self._answer(
            200,
            {
                "ok": True,
                "result": {
                    "id": bot_id,
                    "is_bot": True,
                    "first_name": "CryptoSatX fake",
                    "username": "cryptosatx_fake_bot",
                    "can_join_groups": True,
                    "can_read_all_group_messages": False,
                    "supports_inline_queries": False,
                },
            },
        )

    async def _get_updates(self, params: dict[str, Any]) -> web.Response:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        deadline = time.monotonic() + min(timeout, 50)
        while True:
            with self._lock:
                if offset:
                    # Like Telegram: an offset confirms every update before it.
                    self._updates = [u for u in self._updates if u["update_id"] >= offset]
                pending = self._updates[:limit]
            remaining = deadline - time.monotonic()
            if pending or remaining <= 0 or self._new_update is None:
                return self._answer(200, {"ok": True, "result": pending})
            self._new_update.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), remaining)

    async def _send_message(self, params: dict[str, Any]) -> web.StreamResponse:
        chat_id = str(params.get("chat_id", ""))
        text = str(params.get("text", ""))
        parse_mode = params.get("parse_mode") or None
        silent = _truthy(params.get("disable_notification", False))

        def record(status: int, message_id: int | None = None) -> Received:
            received = Received(time.time(), chat_id, text, parse_mode, silent, status, message_id)
            with self._lock:
                self.requests.append(received)
                if message_id is not None:
                    self.messages.append(received)
            return received

        if self.switches.rate_limit_next > 0:
            self.switches.rate_limit_next -= 1
            after = self.switches.retry_after
            record(429)
            return self._error(
                429, f"Too Many Requests: retry after {after}", {"retry_after": after}
            )
        if not chat_id:
            record(400)
            return self._error(400, "Bad Request: chat_id is empty")
        if chat_id in self.missing_chats:
            record(400)
            return self._error(400, "Bad Request: chat not found")
        if chat_id in self.blocked_chats:
            record(403)
            return self._error(403, "Forbidden: bot was blocked by the user")
        if not text.strip():
            record(400)
            return self._error(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT_LENGTH:
            record(400)
            return self._error(400, "Bad Request: message is too long")
        if str(parse_mode).upper() == "HTML":
            problem = html_error(text)
            if problem is not None:
                record(400)
                return self._error(
                    400, f"Bad Request: can't parse entities: {problem} at byte offset 0"
                )
        with self._lock:
            self._message_id += 1
            message_id = self._message_id
        received = record(200 if not self.switches.stall_after_receiving else 0, message_id)
        if self.echo:
            print(f"--- delivered to chat {chat_id} ---\n{text}\n", flush=True)
        if self.switches.stall_after_receiving and self._release is not None:
            # Delivered, but the answer never leaves: the sender cannot know it went out.
            await self._release.wait()
        return self._answer(
            200,
            {
                "ok": True,
                "result": {
                    "message_id": message_id,
                    "date": int(received.at),
                    "chat": {"id": _chat_id_value(chat_id), "type": chat_type(chat_id)},
                    "text": text,
                },
            },
        )

    # --- running --------------------------------------------------------------------------------

    def _call_in_loop(self, coroutine: Any) -> None:
        loop = self._loop
        if loop is None:
            coroutine.close()
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            loop.create_task(coroutine)
        else:
            asyncio.run_coroutine_threadsafe(coroutine, loop).result(10)

    async def _open_site(self) -> None:
        assert self._runner is not None
        if self._site is None:
            self._site = web.TCPSite(self._runner, self._host, self._port, reuse_address=True)
            await self._site.start()

    async def _close_site(self) -> None:
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0: any free port); returns the value for TELEGRAM_API_URL."""
        self._loop = asyncio.get_running_loop()
        self._release = asyncio.Event()
        self._new_update = asyncio.Event()
        self._runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        self._host, self._port = host, port
        await self._open_site()
        self._port = self._runner.addresses[0][1]
        self.base_url = f"http://{host}:{self._port}"
        return self.base_url

    async def stop(self) -> None:
        if self._release is not None:
            self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._site = None

    @contextlib.contextmanager
    def running_in_thread(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Run the server on its own event loop in a thread; yields the base URL."""
        try:
            with serve_in_thread(
                self.start, self.stop, name="fake-telegram", host=host, port=port
            ) as url:
                yield url
        finally:
            self._loop = None


def _chat_id_value(chat_id: str) -> int | str:
    try:
        return int(chat_id)
    except ValueError:
        return chat_id


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A local fake of the Telegram Bot API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--quiet", action="store_true", help="do not print the messages delivered")
    args = parser.parse_args(argv)
    fake = FakeTelegram(token=args.token, echo=not args.quiet)

    async def serve() -> None:
        url = await fake.start(args.host, args.port)
        print(
            f"fake Telegram at {url}: TELEGRAM_API_URL={url} TELEGRAM_BOT_TOKEN={args.token}\n"
            f"  type into a chat: curl -X POST {url}/__fake__/updates "
            '-H \'Content-Type: application/json\' -d \'{"chat_id": 42, "text": "/status"}\'\n'
            f"  delivered so far: curl {url}/__fake__/messages",
            flush=True,
        )
        try:
            await asyncio.Event().wait()
        finally:
            await fake.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()


__all__ = ["DEFAULT_TOKEN", "FakeTelegram", "Received", "chat_type", "html_error"]
