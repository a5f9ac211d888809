"""A local stand-in for the three group-robot platforms, checking each request as the platform
documents it: WeCom's key in the webhook address and a markdown body; DingTalk's access token,
millisecond `timestamp` and `sign` query parameters (HmacSHA256 of "timestamp\\nsecret" keyed by
the secret, base64, URL-encoded) and a markdown body; Feishu/Lark's seconds `timestamp` and
`sign` in the JSON body (HmacSHA256 keyed by "timestamp\\nsecret" over nothing, base64) and a
text body. Requests it would refuse get the platform's own error answer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

KEY, TOKEN, HOOK = "wecom-key-1", "ding-token-1", "feishu-hook-1"
DING_SECRET, FEISHU_SECRET = "SECding0123456789", "feishu-secret-abc"


class ChatPeer:
    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.received: list[tuple[str, dict]] = []  # (platform, body) of accepted posts
        self.refused: list[tuple[str, str]] = []  # (platform, why)
        self.fail_next: dict[str, int] = {}  # platform → how many 5xx answers to give first
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, answer = peer.handle(self.path, self.headers, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def urls(self) -> dict[str, str]:
        return {"wecom": f"{self.base}/cgi-bin/webhook/send?key={KEY}",
                "dingtalk": f"{self.base}/robot/send?access_token={TOKEN}",
                "feishu": f"{self.base}/open-apis/bot/v2/hook/{HOOK}"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, path: str, headers, raw: bytes) -> tuple[int, dict]:
        url = urlsplit(path)
        query = parse_qs(url.query)
        platform = {"/cgi-bin/webhook/send": "wecom", "/robot/send": "dingtalk",
                    f"/open-apis/bot/v2/hook/{HOOK}": "feishu"}.get(url.path, "")
        if self.fail_next.get(platform):
            self.fail_next[platform] -= 1
            return 502, {"error": "bad gateway"}
        if not headers.get("Content-Type", "").startswith("application/json"):
            return self._refuse(platform, "not JSON")
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            return self._refuse(platform, "body not JSON")
        now = self.clock().timestamp()
        if platform == "wecom":
            if query.get("key") != [KEY]:
                return 200, {"errcode": 93000, "errmsg": "invalid webhook url"}
            content = body.get("markdown", {}).get("content", "")
            if body.get("msgtype") != "markdown" or not content or len(content.encode()) > 4096:
                return self._refuse(platform, "markdown.content missing or over 4096 bytes",
                                    {"errcode": 40058})
        elif platform == "dingtalk":
            stamp, sign = query.get("timestamp", [""])[0], query.get("sign", [""])[0]
            expected = base64.b64encode(hmac.new(DING_SECRET.encode(),
                                                 f"{stamp}\n{DING_SECRET}".encode(),
                                                 hashlib.sha256).digest()).decode()
            if query.get("access_token") != [TOKEN]:
                return self._refuse(platform, "token", {"errcode": 300001})
            if not stamp.isdigit() or abs(int(stamp) / 1000 - now) > 3600:
                return self._refuse(platform, "timestamp", {"errcode": 310000})
            if sign != expected:  # the query was URL-decoded once, as the platform does
                return self._refuse(platform, "sign", {"errcode": 310000})
            markdown = body.get("markdown", {})
            if body.get("msgtype") != "markdown" or not markdown.get("title") or not markdown.get(
                    "text"):
                return self._refuse(platform, "markdown title/text", {"errcode": 40035})
        elif platform == "feishu":
            stamp, sign = str(body.get("timestamp", "")), body.get("sign", "")
            expected = base64.b64encode(hmac.new(f"{stamp}\n{FEISHU_SECRET}".encode(), b"",
                                                 hashlib.sha256).digest()).decode()
            if not stamp.isdigit() or abs(int(stamp) - now) > 3600 or sign != expected:
                return self._refuse(platform, "sign", {"code": 19021, "msg": "sign match fail"})
            if body.get("msg_type") != "text" or not body.get("content", {}).get("text"):
                return self._refuse(platform, "text", {"code": 9499, "msg": "bad request"})
            self.received.append((platform, body))
            return 200, {"code": 0, "msg": "success", "data": {}}
        else:
            return 404, {"error": "no such hook"}
        self.received.append((platform, body))
        return 200, {"errcode": 0, "errmsg": "ok"}

    def _refuse(self, platform: str, why: str, answer: dict | None = None) -> tuple[int, dict]:
        self.refused.append((platform, why))
        return 200, answer or {"errcode": 40000, "errmsg": why}

    def texts(self, platform: str) -> list[str]:
        out = []
        for name, body in self.received:
            if name == platform:
                out.append(body.get("markdown", {}).get("content")
                           or body.get("markdown", {}).get("text")
                           or body.get("content", {}).get("text", ""))
        return out
