"""The LLM backend: a language model answers with a JSON scene graph, which is validated and
checked like any other; one retry with the error message; then a typed error (or the rules
parser, when asked). Model output is parsed with `json.loads` only, and its size is capped.

Two transports: an OpenAI-compatible HTTP endpoint (llama.cpp server, vLLM, Ollama: `base_url`,
`model`; the JSON-schema response format is asked for and dropped when the server refuses it),
and a local `transformers` causal LM loaded from a folder (safetensors, no remote code).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
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
    """POST {base_url}/chat/completions, as llama.cpp server, vLLM and Ollama offer it."""

    def __init__(self, base_url: str, model: str = "default", api_key: str | None = None, timeout: float = 60.0):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout = timeout

    def _post(self, body: dict) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            raw = response.read(MAX_REPLY_CHARS * 4 + 1)
        if len(raw) > MAX_REPLY_CHARS * 4:
            raise LLMError(f"the server's reply is larger than {MAX_REPLY_CHARS * 4} bytes")
        return json.loads(raw)

    def complete(self, messages: list[dict[str, str]], schema: dict) -> str:
        body = {"model": self.model, "messages": messages, "temperature": 0}
        constrained = body | {
            "response_format": {"type": "json_schema", "json_schema": {"name": "scene_graph", "schema": schema}}
        }
        try:
            try:
                answer = self._post(constrained)
            except urllib.error.HTTPError as error:
                if error.code not in (400, 422):
                    raise
                answer = self._post(body)  # a server without JSON-schema output: rely on the prompt
            content = answer["choices"][0]["message"]["content"]
        except urllib.error.HTTPError as error:
            raise LLMError(f"the LLM server at {self.url} answered HTTP {error.code}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise LLMError(f"cannot reach the LLM server at {self.url}: {error}") from None
        except (KeyError, IndexError, TypeError, json.JSONDecodeError):
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
