"""Convert Gemma 3 270M from its GGUF file into a Hugging Face folder that vLLM loads.

Run by ``vllm_setup.py`` with the vLLM venv's python (it needs torch, transformers and gguf,
none of which llmtop's own venv has): ``python vllm_convert.py MODEL.gguf OUT_DIR``.

Four things the plain ``from_pretrained(..., gguf_file=...)`` + ``save_pretrained`` recipe
gets wrong here, each fixed below:

* transformers 5.x refuses to save a model it loaded from GGUF: the weights are copied into a
  fresh model built from the same config (less its GGUF ``quantization_config``, which vLLM
  rejects), which saves normally;
* the GGUF is the base model and carries no chat template, so vLLM refuses chat requests:
  Gemma 3's turn format is added (written here, ``CHAT_TEMPLATE``);
* the GGUF names only ``<eos>`` as the end; Gemma 3 also ends a turn with ``<end_of_turn>``
  (id 106), which its chat template writes: both become stop tokens, so a model that ends
  its answer stops as Gemma 3 does (``ignore_eos``/``min_tokens`` override both);
* the converted tokenizer does not put ``<bos>`` first, and Gemma's output degrades without
  it: it is told to, and the result is checked.

The folder is written beside the target and renamed into place, so a half-written model is
never mistaken for a finished one.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- set ns = namespace(system='') -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}"
    "{%- set ns.system = ns.system + message['content'] + '\\n\\n' -%}"
    "{%- else -%}"
    "{{ '<start_of_turn>' + ('model' if message['role'] == 'assistant' else 'user') + '\\n' }}"
    "{{ ns.system + message['content'] | trim }}{{ '<end_of_turn>\\n' }}"
    "{%- set ns.system = '' -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}"
)
"""Gemma 3's turns (``<start_of_turn>user``/``model`` ... ``<end_of_turn>``); Gemma has no
system role, so a system message is put before the first user turn's text. It starts with
``<bos>`` itself: vLLM renders chat prompts without adding special tokens."""


def convert(gguf: Path, out: Path) -> None:
    """Write the Hugging Face folder for ``gguf`` at ``out``."""
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    loaded = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16
    )
    config = loaded.config
    # The GGUF loader records its quantization in the config; the copy holds plain bfloat16
    # weights, and vLLM refuses the folder while the config names a method it does not have.
    del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    fresh.load_state_dict(loaded.state_dict())
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    fresh.generation_config.eos_token_id = [tokenizer.eos_token_id, end_of_turn]
    fresh.save_pretrained(staging)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.add_bos_token = True
    tokenizer.save_pretrained(staging)
    check = AutoTokenizer.from_pretrained(staging)
    ids = check("Hello")["input_ids"]
    if ids[0] != check.bos_token_id:
        raise SystemExit(f"the converted tokenizer does not start with <bos>: {ids}")
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)


if __name__ == "__main__":
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
