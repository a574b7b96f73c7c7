"""OpenAI-compatible chat completions over HTTP: Ollama, vLLM, llama.cpp server and the like.

Standard library only (`urllib`), so the layer gains no dependency. The chat-completions
helpers here also serve the SageMaker adapter, whose "messages" payload is the same format.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from concierge.adapters.llm.port import ModelReply, ModelRequest, estimate_tokens
from concierge.errors import (
    ConfigurationError,
    ModelInvocationError,
    ModelReplyError,
    ModelThrottledError,
    ModelTimeoutError,
)

# Rate limits and server-side trouble: worth another attempt (or the next model).
_RETRYABLE_STATUS = frozenset((429, 500, 502, 503, 504))


def chat_messages(request: ModelRequest) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": request.system},
        {"role": "user", "content": request.prompt},
    ]


def rendered_input(request: ModelRequest) -> str:
    """What the model reads, as one text: the basis of token estimates."""
    return f"{request.system}\n\n{request.prompt}"


def reply_with_usage(
    request: ModelRequest,
    spec: str,
    text: str,
    input_tokens: int | None,
    output_tokens: int | None,
) -> ModelReply:
    """A reply with the provider's token counts, estimating whichever it did not report."""
    return ModelReply(
        text=text,
        model=spec,
        input_tokens=(
            input_tokens if input_tokens is not None else estimate_tokens(rendered_input(request))
        ),
        output_tokens=output_tokens if output_tokens is not None else estimate_tokens(text),
        estimated=input_tokens is None or output_tokens is None,
    )


def token_count(value: Any) -> int | None:
    """A reported token count, or None when it is absent or not a count."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def parse_chat_completion(payload: Any, request: ModelRequest, spec: str) -> ModelReply:
    """`choices[0].message.content` and `usage` of a chat completion (non-streaming)."""
    try:
        text = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise ModelReplyError(f"{spec} returned an unexpected response shape") from exc
    if not isinstance(text, str):
        raise ModelReplyError(f"{spec} returned an unexpected response shape")
    usage = payload.get("usage")
    if not isinstance(usage, dict):
        usage = {}
    return reply_with_usage(
        request,
        spec,
        text,
        token_count(usage.get("prompt_tokens")),
        token_count(usage.get("completion_tokens")),
    )


class OpenAICompatibleModel:
    def __init__(self, model: str, base_url: str, api_key: str | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(
                f"the OpenAI-compatible base URL must be http(s): {base_url!r}"
            )
        self.model = model
        self.spec = f"openai:{model}"
        self._url = f"{base_url.rstrip('/')}/chat/completions"
        self._api_key = api_key

    def generate(self, request: ModelRequest) -> ModelReply:
        if request.timeout_s <= 0:
            # A zero socket timeout would mean non-blocking I/O, not "no time left".
            raise ModelTimeoutError(f"{self.spec} had no time left in the request budget")
        body: dict[str, Any] = {
            "model": self.model,
            "messages": chat_messages(request),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "stream": False,
        }
        if request.stop_sequences:
            body["stop"] = list(request.stop_sequences)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        # The scheme is checked in the constructor: only http(s) reaches urlopen.
        http_request = urllib.request.Request(  # noqa: S310
            self._url, data=json.dumps(body).encode("utf-8"), headers=headers, method="POST"
        )
        raw = self._post(http_request, request.timeout_s)
        try:
            payload = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelReplyError(f"{self.spec} returned a body that is not JSON") from exc
        return parse_chat_completion(payload, request, self.spec)

    def _post(self, http_request: urllib.request.Request, timeout_s: float) -> bytes:
        try:
            with urllib.request.urlopen(http_request, timeout=timeout_s) as response:  # noqa: S310
                raw: bytes = response.read()
                return raw
        except urllib.error.HTTPError as exc:
            # The body may echo the prompt back: keep only the status code.
            status = exc.code
            exc.close()
            if status in _RETRYABLE_STATUS:
                raise ModelThrottledError(
                    f"{self.spec} is throttled or unavailable (HTTP {status})"
                ) from exc
            raise ModelInvocationError(f"{self.spec} rejected the request (HTTP {status})") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise ModelTimeoutError(f"{self.spec} did not answer in time") from exc
            cause = (
                type(exc.reason).__name__ if isinstance(exc.reason, BaseException) else "URLError"
            )
            raise ModelThrottledError(f"{self.spec} unreachable: {cause}") from exc
        except TimeoutError as exc:
            raise ModelTimeoutError(f"{self.spec} did not answer in time") from exc
        except (ConnectionError, http.client.HTTPException) as exc:
            raise ModelThrottledError(f"{self.spec} unreachable: {type(exc).__name__}") from exc
