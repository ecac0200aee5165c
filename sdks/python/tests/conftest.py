"""What the real-gateway tests share: the gateway's URLs and tokens minted with its secret.

sdks/test/python.test.ts starts a nats-server and gateways and hands them over in the
environment: HOLDOVER_URL, HOLDOVER_WS_URL, HOLDOVER_SECRET (HS256), HOLDOVER_RATE_LIMITED_URL
(a gateway allowing one message per second per producer). Without them these tests are skipped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(secret: str, sub: str, scopes: Sequence[str], ttl_s: int = 3600, **claims: Any) -> str:
    """An HS256 JWT as the gateway accepts it (PROTOCOL.md, Tokens)."""
    now = int(time.time())
    payload: dict[str, Any] = {"sub": sub, "scope": " ".join(scopes), "iat": now, "exp": now + ttl_s, **claims}
    signing_input = f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


@dataclass(frozen=True)
class Gateway:
    url: str
    ws_url: str
    secret: str
    rate_limited_url: str

    def token(self, sub: str, scopes: Sequence[str] = ("receive", "publish", "admin"), **claims: Any) -> str:
        return mint(self.secret, sub, scopes, **claims)

    def depth(self, recipient: str) -> dict[str, int]:
        """GET /v1/recipients/{id}/queue → depth per priority."""
        answer = httpx.get(
            f"{self.url}/v1/recipients/{recipient}/queue",
            headers={"Authorization": f"Bearer {self.token('admin', ['admin'])}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        depth: dict[str, int] = answer.json()["depth"]
        return depth


@pytest.fixture(scope="session")
def gateway() -> Gateway:
    env: dict[str, str | None] = {
        k: os.environ.get(k)
        for k in ("HOLDOVER_URL", "HOLDOVER_WS_URL", "HOLDOVER_SECRET", "HOLDOVER_RATE_LIMITED_URL")
    }
    missing = [k for k, v in env.items() if not v]
    if missing:
        pytest.skip(f"no gateway: {', '.join(missing)} not set (sdks/test/python.test.ts sets them)")
    return Gateway(
        url=str(env["HOLDOVER_URL"]),
        ws_url=str(env["HOLDOVER_WS_URL"]),
        secret=str(env["HOLDOVER_SECRET"]),
        rate_limited_url=str(env["HOLDOVER_RATE_LIMITED_URL"]),
    )


@pytest.fixture
def recipient() -> str:
    """A recipient id no other test uses."""
    return f"py-{uuid.uuid4().hex[:12]}"
