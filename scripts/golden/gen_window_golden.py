#!/usr/bin/env python3
"""Golden token windows from SAELens' own windowing (for the Rust `Windower` tests).

Writes tests/fixtures/golden/saelens_windows.json (compact JSON, under 300 KB):

  {"generator": "scripts/golden/gen_window_golden.py",
   "sae_lens_version": "...", "transformers_version": "...",
   "cases": [{"name": str, "context_size": int,
              "begin_batch_token_id": int | null, "sequence_separator_token_id": int | null,
              "documents": [str, ...],            # one document per entry, never "\\n"/"\\r"
              "document_tokens": [[int, ...], ...],  # GPT-2 ids of each document
              "windows": [[int, ...], ...],          # every window SAELens yields, in order
              "docs_ending_at_window_end": int}]}    # documents whose last token ends a window

`document_tokens` are what SAELens feeds its windowing: `tokenizer(text,
add_special_tokens=False)["input_ids"]` (= TransformerLens `to_tokens(prepend_bos=False)`),
with GPT-2's tokenizer built from the repo's assets/gpt2/vocab.json + merges.txt.
`windows` are everything `sae_lens.tokenization_and_batching.concat_and_batch_sequences`
yields for those token lists, called with `begin_sequence_token_id=None` and the case's
begin / separator ids (the final, incomplete window is never yielded).

Cases: context sizes 8, 32 and 128 with begin = separator = 50256 (SAELens with
prepend_bos true); and at context 32: begin = separator = None (SAELens 3.x with
prepend_bos false), begin None + separator 50256 (SAELens 6, prepend_bos false, its default
separator "bos"), begin 50256 + separator 13 ("." — a separator that is not BOS).

Documents are real English text: the Zen of Python (the `this` module) and prose from
Python's own documentation (`pydoc_data.topics`, shipped with CPython), whitespace
collapsed to single spaces. Each case has its own list, built while simulating the
windowing so that many documents end exactly at a window end (their word span is searched
so that their token count fills the rest of the window). Each list also holds: empty and
whitespace-only documents ("", "   ", "\\t"), documents starting with the literal text
"<|endoftext|>" (token 50256) at a window start and mid-window, one document longer than ten
windows of 128 tokens, one-token documents, a one-token document that fills the last slot
after a separator, and a document arriving when only one slot is left (the separator alone
completes that window). The simulation's windows are checked to equal SAELens' exactly.

usage (from the repo root):
  python3 -m venv /root/.cache/saecooc/golden-venv
  /root/.cache/saecooc/golden-venv/bin/pip install sae-lens transformers
  /root/.cache/saecooc/golden-venv/bin/python scripts/golden/gen_window_golden.py
(generated with sae-lens 6.54.12, transformers 5.24.0, torch 2.15.0, CPython 3.11.7; the
documentation text depends on the CPython version, the JSON records the documents.)
"""
import codecs
import contextlib
import io
import json
import os
import random
import sys

import sae_lens
import torch
import transformers
from sae_lens.tokenization_and_batching import concat_and_batch_sequences
from transformers import GPT2TokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "golden", "saelens_windows.json")
BOS = 50256
PERIOD = 13
MIN_AT_END = 5
LONG_TOKENS = 10 * 128 + 20  # longer than ten windows of 128


def load_tokenizer():
    vocab = os.path.join(ROOT, "assets", "gpt2", "vocab.json")
    merges = os.path.join(ROOT, "assets", "gpt2", "merges.txt")
    if int(transformers.__version__.split(".")[0]) >= 5:
        # transformers 5 takes the files as `vocab` / `merges` (it silently ignores the
        # 4.x keywords `vocab_file` / `merges_file` and builds an empty vocabulary).
        tok = GPT2TokenizerFast(vocab=vocab, merges=merges)
    else:
        tok = GPT2TokenizerFast(vocab_file=vocab, merges_file=merges)
    assert tok("Hello world", add_special_tokens=False)["input_ids"] == [15496, 995]
    assert tok("<|endoftext|>Hi", add_special_tokens=False)["input_ids"][0] == BOS
    return tok


def words_of_corpus():
    with contextlib.redirect_stdout(io.StringIO()):
        import this  # noqa: F401  (prints the Zen on import)
    zen = codecs.decode(this.s, "rot13")
    import pydoc_data.topics as topics

    texts = [zen]
    for key in ["execmodel", "exceptions", "naming", "truth", "compound", "import",
                "dynamic-features", "customization", "types", "specialnames"]:
        if key in topics.topics:
            texts.append(topics.topics[key])
    words = " ".join(texts).split()  # split() also drops every Unicode line break
    assert len(words) > 20000, len(words)
    return words


class Planner:
    """Builds one case's documents while simulating SAELens' windowing token by token."""

    def __init__(self, tok, words, ctx, begin, sep, seed):
        self.tok, self.words, self.ctx, self.begin, self.sep = tok, words, ctx, begin, sep
        self.rng = random.Random(seed)
        self.pos = 0  # next unused word
        self.batch = None  # the partial window: list of (token, provenance)
        self.windows = []  # complete windows, as lists of (token, provenance)
        self.docs, self.doc_tokens = [], []

    def encode(self, text):
        return self.tok(text, add_special_tokens=False)["input_ids"]

    # --- the windowing, as concat_and_batch_sequences does it (begin_sequence_token_id None)
    def push(self, text):
        ids = self.encode(text)
        if text.strip():
            assert self.tok.decode(ids) == text, (text, ids)
        assert "\n" not in text and "\r" not in text and len(text.splitlines()) <= 1, text
        i = len(self.docs)
        self.docs.append(text)
        self.doc_tokens.append(ids)
        offset = 0
        while offset < len(ids):
            first = ids[offset]
            if self.batch is None:
                prefix = [(self.begin, "begin")] if self.begin is not None and first != self.begin else []
                need = max(self.ctx - len(prefix), 0)
                part = [(t, (i, j)) for j, t in enumerate(ids[offset:offset + need], offset)]
                self.batch = prefix[:self.ctx] + part
                offset += need
            else:
                prefix = [(self.sep, "sep")] if self.sep is not None and first != self.sep else []
                need = max(self.ctx - len(self.batch) - len(prefix), 0)
                prefix_need = max(self.ctx - len(self.batch), 0)
                part = [(t, (i, j)) for j, t in enumerate(ids[offset:offset + need], offset)]
                self.batch = self.batch + prefix[:prefix_need] + part
                offset += need
            if len(self.batch) == self.ctx:
                self.windows.append(self.batch)
                self.batch = None
        return ids

    def filled(self):
        """Tokens in the partial window (0 when the next token starts a window)."""
        return 0 if self.batch is None else len(self.batch)

    def room(self, first_token=None):
        """How many document tokens fit before the current window ends (first token not
        begin/separator)."""
        if self.batch is None:
            return self.ctx - (1 if self.begin is not None and first_token != self.begin else 0)
        return self.ctx - len(self.batch) - (1 if self.sep is not None and first_token != self.sep else 0)

    # --- choosing text
    def span(self, n_tokens, max_words=None):
        """The next span of consecutive words whose tokens number exactly n_tokens."""
        for start in range(self.pos, len(self.words)):
            m = 1
            while start + m <= len(self.words):
                text = " ".join(self.words[start:start + m])
                n = len(self.encode(text))
                if n == n_tokens and BOS not in self.encode(text):
                    self.pos = start + m
                    return text
                if n > n_tokens or (max_words and m >= max_words):
                    break
                m += 1
        raise RuntimeError(f"no span of {n_tokens} tokens left")

    def random_doc(self, max_words):
        m = self.rng.randint(1, max_words)
        text = " ".join(self.words[self.pos:self.pos + m])
        self.pos += m
        return self.push(text)

    def fill(self):
        """A document that ends exactly at the current window's end; returns False when the
        window has no room for one (only a separator slot left)."""
        r = self.room()
        if r < 1:
            return False
        self.push(self.span(r))
        return True

    def fill_to(self, target):
        """Documents until the partial window holds exactly `target` tokens."""
        while self.filled() != target:
            f = self.filled()
            if f == 0:
                n = target - (1 if self.begin is not None else 0)
            else:
                n = target - f - (1 if self.sep is not None else 0)
            if n >= 1:
                self.push(self.span(n))
            elif not self.fill():
                self.push(self.span(1))

    def end_window(self):
        """Documents until the next token starts a new window."""
        while self.filled() != 0:
            if not self.fill():
                self.push(self.span(1))

    def check_coverage(self):
        """Asserts that the list exercises every situation the docstring promises."""
        for special in ["", "   ", "\t"]:
            assert special in self.docs, repr(special)
        assert max(len(t) for t in self.doc_tokens) > 10 * 128
        assert any(len(t) == 1 for t in self.doc_tokens)
        starts = [(w[0][1], w) for w in self.windows]
        bos_docs = {i for i, t in enumerate(self.doc_tokens) if t and t[0] == BOS}
        assert self.docs[min(bos_docs)].startswith("<|endoftext|>")
        # A document starting with BOS at a window start, and one mid-window.
        assert any(prov == (i, 0) for prov, _ in starts for i in bos_docs)
        assert any(w[k][1] == (i, 0) for w in self.windows for k in range(1, self.ctx)
                   for i in bos_docs)
        # The last slot: after a separator by a one-token document; by the separator alone.
        one = {i for i, t in enumerate(self.doc_tokens) if len(t) == 1}
        assert any(w[-1][1] in {(i, 0) for i in one}
                   and (self.sep is None or w[-2][1] == "sep") for w in self.windows)
        if self.sep is not None:
            assert any(w[-1][1] == "sep" for w in self.windows)

    def count_at_end(self):
        n = 0
        for i, ids in enumerate(self.doc_tokens):
            if ids and any(w[-1][1] == (i, len(ids) - 1) for w in self.windows):
                n += 1
        return n


def build_case(tok, words, ctx, begin, sep, seed):
    p = Planner(tok, words, ctx, begin, sep, seed)
    max_words = {8: 6, 32: 20, 128: 70}[ctx]
    rounds = {8: 10, 32: 8, 128: 7}[ctx]
    # Random documents, each followed by one that ends exactly at the window end.
    for r in range(rounds):
        p.random_doc(max_words)
        p.fill()
        if r == 1:
            p.push("")  # empty, at a window start
            p.push("   ")
        if r == 2:
            p.random_doc(max_words)
            p.push("")  # empty and whitespace-only, mid-window
            p.push("\t")
            p.push("   ")
            p.fill()
    # One-token documents mid-window, then a window completed by one.
    p.end_window()
    p.push(p.span(1))
    p.push(p.span(1))
    p.fill()
    # "<|endoftext|>" at a window start, then mid-window.
    p.end_window()
    p.push("<|endoftext|> " + p.span(3))
    p.push("<|endoftext|>" + " " + p.span(2))
    p.fill()
    # Exactly one slot left after the separator: a one-token document fills it.
    sep_cost = 1 if sep is not None else 0
    p.fill_to(ctx - 1 - sep_cost)
    assert p.room() == 1, (p.filled(), p.room())
    p.push(p.span(1))
    assert p.filled() == 0
    # Only one slot left: the separator alone completes the window (when there is one).
    p.fill_to(ctx - 1)
    p.random_doc(max_words)
    p.fill()
    # A document longer than ten windows of 128.
    p.random_doc(max_words)
    p.push(p.span(LONG_TOKENS, max_words=2000))
    p.fill()
    for _ in range(2):
        p.random_doc(max_words)
        p.fill()
    p.random_doc(max_words)  # leaves an incomplete window that is never yielded
    return p


def saelens_windows(doc_tokens, ctx, begin, sep):
    it = (torch.tensor(ids, dtype=torch.long) for ids in doc_tokens)
    return [w.tolist() for w in concat_and_batch_sequences(
        it, ctx, begin_batch_token_id=begin, begin_sequence_token_id=None,
        sequence_separator_token_id=sep)]


def main():
    tok = load_tokenizer()
    words = words_of_corpus()
    specs = [
        ("ctx8_begin_bos_sep_bos", 8, BOS, BOS),
        ("ctx32_begin_bos_sep_bos", 32, BOS, BOS),
        ("ctx128_begin_bos_sep_bos", 128, BOS, BOS),
        ("ctx32_begin_none_sep_none", 32, None, None),
        ("ctx32_begin_none_sep_bos", 32, None, BOS),
        ("ctx32_begin_bos_sep_period", 32, BOS, PERIOD),
    ]
    cases = []
    for n, (name, ctx, begin, sep) in enumerate(specs):
        p = build_case(tok, words, ctx, begin, sep, seed=1000 + n)
        windows = saelens_windows(p.doc_tokens, ctx, begin, sep)
        simulated = [[t for t, _ in w] for w in p.windows]
        assert windows == simulated, f"{name}: simulation differs from SAELens"
        assert all(len(w) == ctx for w in windows)
        at_end = p.count_at_end()
        assert at_end >= MIN_AT_END, (name, at_end)
        p.check_coverage()
        print(f"{name}: {len(p.docs)} documents, {len(windows)} windows, "
              f"{at_end} end at a window end", file=sys.stderr)
        cases.append({
            "name": name, "context_size": ctx,
            "begin_batch_token_id": begin, "sequence_separator_token_id": sep,
            "documents": p.docs, "document_tokens": p.doc_tokens, "windows": windows,
            "docs_ending_at_window_end": at_end,
        })
    out = {
        "generator": "scripts/golden/gen_window_golden.py",
        "sae_lens_version": sae_lens.__version__,
        "transformers_version": transformers.__version__,
        "cases": cases,
    }
    text = json.dumps(out, separators=(",", ":"), ensure_ascii=False)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    print(f"wrote {OUT} ({len(text.encode())} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
