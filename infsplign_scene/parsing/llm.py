"""The LLM backend: a language model answers with a JSON scene graph, which is validated and
checked like any other; one retry with the error message; then a typed error (or the rules
parser, when asked). Model output is parsed with `json.loads` only, and its size is capped.

Two transports: an OpenAI-compatible HTTP endpoint (llama.cpp server, vLLM, Ollama: `base_url`,
`model`; the JSON-schema response format is asked for and dropped when the server refuses it),
and a local `transformers` causal LM loaded from a folder (safetensors, no remote code).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from functools import cache
from typing import Any, Protocol

from pydantic import ValidationError

from ..errors import ParseError, format_validation_error
from ..lexicon import grammar_dir
from ..scene import SceneGraph

MAX_REPLY_CHARS = 64_000


class LLMError(ParseError):
    """The language model gave no usable scene graph (or could not be reached)."""


class LLMClient(Protocol):
    def complete(self, messages: list[dict[str, str]], schema: dict) -> str:
        """Return the model's reply to a chat."""


@cache
def few_shot() -> dict:
    return json.loads((grammar_dir() / "llm_prompt.json").read_text(encoding="utf-8"))


def build_messages(text: str) -> list[dict[str, str]]:
    prompt = few_shot()
    messages = [{"role": "system", "content": prompt["system"]}]
    for example in prompt["examples"]:
        messages.append({"role": "user", "content": example["text"]})
        messages.append({"role": "assistant", "content": json.dumps(example["graph"])})
    messages.append({"role": "user", "content": text})
    return messages


def reply_schema() -> dict:
    """The part of the SceneGraph schema the model writes (the prompt is the user's own text)."""
    schema = SceneGraph.model_json_schema()
    schema["properties"] = {k: v for k, v in schema["properties"].items() if k in ("objects", "relations")}
    schema["required"] = ["objects", "relations"]
    return schema


class OpenAIClient:
    """POST {base_url}/chat/completions, as llama.cpp server, vLLM and Ollama offer it.

    `timeout` bounds the whole exchange (connecting, sending, the status line, headers and body),
    not each read: a server that answers a byte at a time is cut off. Redirects are not followed;
    every transport failure is an `LLMError`."""

    def __init__(self, base_url: str, model: str = "default", api_key: str | None = None, timeout: float = 60.0):
        self.url = base_url.rstrip("/") + "/chat/completions"
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise LLMError(f"the LLM server's address must be an http(s) URL, got {base_url!r}")
        self.parts = parts
        self.model = model
        self.api_key = api_key
        self.timeout = timeout

    def _exchange(self, connection: http.client.HTTPConnection, payload: bytes, headers: dict) -> tuple[int, bytes]:
        path = self.parts.path + (f"?{self.parts.query}" if self.parts.query else "")
        connection.request("POST", path, body=payload, headers=headers)
        response = connection.getresponse()
        limit, raw = MAX_REPLY_CHARS * 4, bytearray()
        while chunk := response.read1(65536):
            raw += chunk
            if len(raw) > limit:
                raise LLMError(f"the server's reply is larger than {limit} bytes")
        return response.status, bytes(raw)

    def _post(self, body: dict) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        kind = http.client.HTTPSConnection if self.parts.scheme == "https" else http.client.HTTPConnection
        connection = kind(self.parts.hostname, self.parts.port, timeout=self.timeout)
        worker = ThreadPoolExecutor(1, thread_name_prefix="infsplign-llm")
        future = worker.submit(self._exchange, connection, json.dumps(body).encode(), headers)
        try:
            return future.result(timeout=self.timeout)
        except LLMError:
            raise
        except FutureTimeout:
            raise LLMError(f"the LLM server at {self.url} gave no complete answer within {self.timeout} s") from None
        except (http.client.HTTPException, OSError, ValueError) as error:
            raise LLMError(f"cannot reach the LLM server at {self.url}: {type(error).__name__}: {error}") from None
        finally:
            if connection.sock is not None:  # wakes a worker still waiting on the socket
                with contextlib.suppress(OSError):
                    connection.sock.shutdown(socket.SHUT_RDWR)
            connection.close()
            worker.shutdown(wait=False)

    def complete(self, messages: list[dict[str, str]], schema: dict) -> str:
        body = {"model": self.model, "messages": messages, "temperature": 0}
        constrained = body | {
            "response_format": {"type": "json_schema", "json_schema": {"name": "scene_graph", "schema": schema}}
        }
        status, raw = self._post(constrained)
        if status in (400, 422):  # a server without JSON-schema output: rely on the prompt
            status, raw = self._post(body)
        if 300 <= status < 400:
            raise LLMError(f"the LLM server at {self.url} answered with a redirect (HTTP {status}); not followed")
        if status != 200:
            raise LLMError(f"the LLM server at {self.url} answered HTTP {status}")
        try:
            content = json.loads(raw.decode("utf-8"))["choices"][0]["message"]["content"]
        except (UnicodeDecodeError, ValueError, RecursionError, KeyError, IndexError, TypeError):
            raise LLMError(f"the LLM server at {self.url} did not answer in the chat-completions format") from None
        if not isinstance(content, str):
            raise LLMError("the LLM reply holds no text")
        return content


class TransformersClient:
    """A local causal LM from a folder, with its chat template when it has one."""

    def __init__(self, path: str, max_new_tokens: int = 512, device: str = "cpu"):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self.model = AutoModelForCausalLM.from_pretrained(
                path, local_files_only=True, use_safetensors=True, trust_remote_code=False
            ).to(device)
        except (OSError, ValueError) as error:
            raise LLMError(f"cannot load a causal language model from {path!r}: {error}") from None
        self.max_new_tokens = max_new_tokens
        self.device = device

    def complete(self, messages: list[dict[str, str]], schema: dict) -> str:
        import torch

        if getattr(self.tokenizer, "chat_template", None):
            prompt = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            prompt = "\n\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\n\nassistant:"
        inputs = self.tokenizer(prompt, return_tensors="pt").to(self.device)
        with torch.no_grad():
            output = self.model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
            )
        return self.tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def graph_from_reply(text: str, reply: str) -> SceneGraph:
    """The first JSON object in the reply (prose around it is ignored), validated against `text`."""
    if len(reply) > MAX_REPLY_CHARS:
        raise LLMError(f"the reply is longer than {MAX_REPLY_CHARS} characters")
    start, end = reply.find("{"), reply.rfind("}")
    if start < 0 or end < start:
        raise LLMError("the reply holds no JSON object")
    try:
        data = json.loads(reply[start : end + 1])
    except json.JSONDecodeError as error:
        raise LLMError(f"the reply is not valid JSON: {error.msg} at character {error.pos}") from None
    except (RecursionError, ValueError) as error:  # nested too deeply; an integer of thousands of digits
        raise LLMError(f"the reply is not usable JSON: {type(error).__name__}") from None
    if not isinstance(data, dict):
        raise LLMError("the reply's JSON is not an object")
    data = {k: v for k, v in data.items() if k in ("objects", "relations")} | {"prompt": text}
    try:
        return SceneGraph.model_validate(data)
    except ValidationError as error:
        raise LLMError(format_validation_error(error, "scene graph")) from None


def parse_llm(
    text: str,
    client: LLMClient | None = None,
    base_url: str | None = None,
    model: str = "default",
    fallback: str = "error",
    **client_options: Any,
) -> SceneGraph:
    """Ask the model for the scene graph of `text`; retry once with the validation error.

    fallback="rules" returns the rules parser's graph instead of raising `LLMError`."""
    if client is None:
        if base_url is None:
            raise LLMError("the llm backend needs client=... or base_url=... (an OpenAI-compatible endpoint)")
        client = OpenAIClient(base_url, model, **client_options)
    if not isinstance(text, str) or not text.strip():
        raise LLMError("empty text", str(text), 0)
    messages, schema = build_messages(text), reply_schema()
    try:
        reply = client.complete(messages, schema)
        try:
            return graph_from_reply(text, reply)
        except LLMError as first_error:
            correction = f"That answer is invalid: {first_error}. Reply with the corrected JSON only."
            messages += [
                {"role": "assistant", "content": reply[:MAX_REPLY_CHARS]},
                {"role": "user", "content": correction},
            ]
            return graph_from_reply(text, client.complete(messages, schema))
    except LLMError:
        if fallback == "rules":
            from .rules import parse_controlled

            return parse_controlled(text)
        raise
