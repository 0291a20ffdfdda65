"""A small client for OpenAI-compatible chat-completions endpoints (hosted, vLLM, llama.cpp), standard library only.

Endpoint, model and key come from the environment. The key travels only in the `Authorization` header: it
is kept out of `repr`, log lines and exception messages (server text quoted in an error is redacted).
Rate limits (429, honouring Retry-After) and transient failures (5xx, lost connections) are retried with
bounded exponential backoff.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import math
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from neurflow_graph.errors import ConfigError, NeurflowGraphError

BASE_URL_ENV = "NEURFLOW_LLM_BASE_URL"
MODEL_ENV = "NEURFLOW_LLM_MODEL"
API_KEY_ENV = "NEURFLOW_LLM_API_KEY"
TIMEOUT_ENV = "NEURFLOW_LLM_TIMEOUT"
MAX_TRIES_ENV = "NEURFLOW_LLM_MAX_TRIES"
RETRY_DELAY_ENV = "NEURFLOW_LLM_RETRY_DELAY"
MAX_RETRY_DELAY_ENV = "NEURFLOW_LLM_MAX_RETRY_DELAY"
TEMPERATURE_ENV = "NEURFLOW_LLM_TEMPERATURE"
MAX_TOKENS_ENV = "NEURFLOW_LLM_MAX_TOKENS"

RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
"""HTTP statuses worth another try: rate limits, timeouts and server-side failures."""
FATAL_STATUSES = frozenset({301, 302, 303, 307, 308, 401, 403, 404})
"""Statuses that every later request would get too (redirect, bad key, no access, wrong URL or model): stop."""

HOW_TO_CONFIGURE = (
    f"set {BASE_URL_ENV} (e.g. https://api.openai.com/v1, or http://127.0.0.1:8000/v1 for a local vLLM or "
    f"llama.cpp server), {MODEL_ENV} (a model that accepts images) and, if the server needs one, {API_KEY_ENV}"
)

log = logging.getLogger("neurflow_graph.labels")


class LabelError(NeurflowGraphError):
    """Labelling a neuron group or a relation failed (the endpoint, the answer, or the graph)."""


class EndpointNotConfigured(ConfigError):
    """No chat-completions endpoint is configured in the environment."""


class LLMError(LabelError):
    """The endpoint refused or failed a request; `fatal` when every later request would fail the same way."""

    def __init__(self, message: str, *, status: int | None = None, fatal: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.fatal = fatal


class AnswerError(LabelError):
    """The model answered, but not with the JSON object the prompt asked for."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry: `max_tries` attempts in all, waits doubling from `initial_delay` seconds.

    A 429's Retry-After is honoured in place of the computed wait; no wait exceeds `max_delay` seconds.
    """

    max_tries: int = 5
    initial_delay: float = 1.0
    max_delay: float = 60.0

    def __post_init__(self) -> None:
        if not isinstance(self.max_tries, int) or self.max_tries < 1:
            raise ConfigError(f"max_tries must be an int >= 1, got {self.max_tries!r}")
        for name in ("initial_delay", "max_delay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"{name} must be a number of seconds >= 0, got {value!r}")

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (0 = the first retry)."""
        wait = retry_after if retry_after is not None else self.initial_delay * 2.0**retry
        return max(0.0, min(wait, self.max_delay))


@dataclass(frozen=True)
class LLMSettings:
    """Where and how to ask: endpoint base URL, model name, optional key (never shown), request knobs."""

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 120.0
    temperature: float | None = 0.0
    max_tokens: int | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"{BASE_URL_ENV} must be an http(s) URL such as https://api.openai.com/v1, got "
                f"{_safe_url(self.base_url)!r}"
            )
        if not self.model:
            raise ConfigError(f"{MODEL_ENV} is empty; name a model that accepts images, e.g. gpt-4o")
        if not (self.timeout > 0):
            raise ConfigError(f"{TIMEOUT_ENV} must be a number of seconds > 0, got {self.timeout!r}")

    @property
    def endpoint(self) -> str:
        """The chat-completions URL: `{base_url}/chat/completions` (a query string, e.g. api-version, kept)."""
        parts = urlsplit(self.base_url)
        return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + "/chat/completions", parts.query, ""))

    @property
    def safe_endpoint(self) -> str:
        """The endpoint without user info or query string, fit for messages."""
        return _safe_url(self.endpoint)

    def redact(self, text: str) -> str:
        """`text` with every occurrence of the key replaced by `***`."""
        return redact(text, self.api_key)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LLMSettings | None:
        """Settings from NEURFLOW_LLM_* variables; None when NEURFLOW_LLM_BASE_URL is unset or empty."""
        env = os.environ if environ is None else environ
        base_url = env.get(BASE_URL_ENV, "").strip()
        if not base_url:
            return None
        model = env.get(MODEL_ENV, "").strip()
        if not model:
            raise EndpointNotConfigured(f"{BASE_URL_ENV} is set but {MODEL_ENV} is not; {HOW_TO_CONFIGURE}")
        retry = RetryPolicy(
            max_tries=_env_number(env, MAX_TRIES_ENV, int, RetryPolicy.max_tries),
            initial_delay=_env_number(env, RETRY_DELAY_ENV, float, RetryPolicy.initial_delay),
            max_delay=_env_number(env, MAX_RETRY_DELAY_ENV, float, RetryPolicy.max_delay),
        )
        temperature_text = env.get(TEMPERATURE_ENV, "").strip().lower()
        temperature = None if temperature_text == "none" else _env_number(env, TEMPERATURE_ENV, float, 0.0)
        max_tokens = _env_number(env, MAX_TOKENS_ENV, int, None)
        return cls(
            base_url=base_url,
            model=model,
            api_key=env.get(API_KEY_ENV, "").strip() or None,
            timeout=_env_number(env, TIMEOUT_ENV, float, 120.0),
            temperature=temperature,
            max_tokens=max_tokens,
            retry=retry,
        )


Sleep = Callable[[float], None]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: urllib would repeat the Authorization header to wherever they point."""

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class ChatClient:
    """Sends chat-completions requests to one endpoint and returns the answer text, retrying what is transient."""

    def __init__(self, settings: LLMSettings, *, sleep: Sleep = time.sleep) -> None:
        self.settings = settings
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"ChatClient(endpoint={self.settings.safe_endpoint!r}, model={self.settings.model!r})"

    def request_body(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The JSON body sent for `messages` (model and sampling settings added)."""
        body: dict[str, Any] = {"model": self.settings.model, "messages": messages}
        if self.settings.temperature is not None:
            body["temperature"] = self.settings.temperature
        if self.settings.max_tokens is not None:
            body["max_tokens"] = self.settings.max_tokens
        return body

    def complete(self, messages: list[dict[str, Any]]) -> str:
        """The text of the first choice's message; raises LLMError when the endpoint fails after all tries."""
        data = json.dumps(self.request_body(messages)).encode("utf-8")
        policy = self.settings.retry
        for attempt in range(policy.max_tries):
            try:
                return _answer_text(self._post(data), self.settings)
            except _Transient as exc:
                if attempt + 1 >= policy.max_tries:
                    raise LLMError(
                        f"{exc.what} from {self.settings.safe_endpoint}; gave up after {policy.max_tries} tries",
                        status=exc.status,
                        fatal=exc.status is None,
                    ) from None
                wait = policy.delay(attempt, exc.retry_after)
                log.warning(
                    "%s from %s; retrying in %.2g s (try %d of %d)",
                    exc.what, self.settings.safe_endpoint, wait, attempt + 2, policy.max_tries,
                )
                self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _post(self, data: bytes) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.settings.api_key:
            headers["Authorization"] = f"Bearer {self.settings.api_key}"
        request = urllib.request.Request(self.settings.endpoint, data=data, headers=headers, method="POST")
        where = self.settings.safe_endpoint
        try:
            with _OPENER.open(request, timeout=self.settings.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
            detail = self.settings.redact(_error_detail(exc))
            exc.close()
            if status in RETRY_STATUSES:
                raise _Transient(f"HTTP {status}{detail}", status, _retry_after(exc.headers)) from None
            hint = _status_hint(status, exc.headers)
            raise LLMError(f"{where} answered HTTP {status}{detail}{hint}", status=status,
                           fatal=status in FATAL_STATUSES) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise _Transient(f"no answer ({self.settings.redact(_one_line(str(reason)))})", None, None) from None
        try:
            payload = json.loads(raw)
        except ValueError:
            raise LLMError(f"{where} answered with something other than JSON; is {BASE_URL_ENV} the API's "
                           "base URL (usually ending in /v1)?", fatal=True) from None
        if not isinstance(payload, dict):
            raise LLMError(f"{where} answered with JSON that is not a chat completion", fatal=True)
        return payload


class _Transient(Exception):
    def __init__(self, what: str, status: int | None, retry_after: float | None) -> None:
        super().__init__(what)
        self.what = what
        self.status = status
        self.retry_after = retry_after


def redact(text: str, secret: str | None) -> str:
    """`text` with every occurrence of `secret` replaced by `***` (no-op without a secret)."""
    return text.replace(secret, "***") if secret else text


def _answer_text(payload: dict[str, Any], settings: LLMSettings) -> str:
    try:
        message = payload["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        error = payload.get("error")
        detail = f": {settings.redact(_one_line(str(error)))}" if error else ""
        raise AnswerError(f"the endpoint's answer has no choices[0].message{detail}") from None
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):  # some servers answer with content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str) or not content.strip():
        refusal = message.get("refusal") if isinstance(message, dict) else None
        why = f" (refusal: {settings.redact(_one_line(str(refusal)))})" if refusal else ""
        raise AnswerError(f"the model returned no text{why}")
    return content


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        body = exc.read(4096).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):
        return ""
    try:
        parsed = json.loads(body)
        error = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
        message = error.get("message", error) if isinstance(error, dict) else error
        body = str(message)
    except ValueError:
        pass
    body = _one_line(body, 200)
    return f": {body}" if body and body not in ("{}", "[]", "null") else ""


def _status_hint(status: int, headers: Any) -> str:
    if 300 <= status < 400:
        location = headers.get("Location") if headers is not None else None
        where = f" to {_safe_url(location)}" if location else ""
        return f"; the endpoint redirects{where}: set {BASE_URL_ENV} to the final URL (redirects are not followed)"
    if status in (401, 403):
        return f"; check {API_KEY_ENV}"
    if status == 404:
        return f"; check {BASE_URL_ENV} (the base URL, usually ending in /v1) and {MODEL_ENV}"
    if status in (400, 413, 422):
        return f"; does {MODEL_ENV} accept images?"
    return ""


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _env_number(env: Mapping[str, str], name: str, kind: type, default: Any) -> Any:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        return kind(text)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise ConfigError(f"{name} must be {noun}, got {text!r}") from None


def _safe_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
