#!/usr/bin/env python3
"""Small seeded checkpoints of six encoder architectures, and Hugging Face transformers' own outputs.

Issue 16's reference files. For each architecture (bert, distilbert, mpnet, roberta, xlm-roberta,
modernbert) this script

  1. trains a small tokenizer with `tokenizers` on the text below (WordPiece for bert, distilbert
     and mpnet; byte-level BPE for roberta and modernbert; Unigram for xlm-roberta) and wraps it in
     a transformers fast tokenizer (tokenizer.json, tokenizer_config.json, special_tokens_map.json);
  2. builds the model from a small config (AutoModel.from_config, attn_implementation="eager") and
     overwrites EVERY tensor of model.state_dict() with values from the seeded generator below, so
     that the weights can be regenerated bit-exactly anywhere (Java: SeededCheckpoint) and no
     weight file needs to be kept in git;
  3. saves it with save_pretrained and reloads it with from_pretrained (proving the saved
     directory is complete), writes manifest.json (every tensor's name, shape, seed, scale,
     offset, SHA-256 of its little-endian bytes, exact sum and first values);
  4. runs the model in float32 AND float64 (model.double()) on CPU on a set of inputs: short
     texts, a right-padded batch, a ~300-token text, and long texts (modernbert ~4,000 and ~8,100
     tokens, xlm-roberta ~2,000 tokens), recording the ids, attention mask and last_hidden_state
     (all rows for short inputs; for long ones the rows 0..15, every 61st and the last 16, listed
     in "rows") and the mean over real tokens;
  5. exports the model to ONNX and runs ONNX Runtime on every input, recording max |ORT - torch|;
  6. for bert (CLS pooling) and mpnet (mean pooling) writes the sentence-transformers layout
     (modules.json, 1_Pooling/config.json, ...) and records SentenceTransformer.encode().

Output: <out>/refs/<arch>/{config.json, manifest.json, tokenizer*.json, special_tokens_map.json,
outputs.json, outputs-long.json, ...} (text, each < 2 MB) and <out>/onnx/<arch>.onnx (not for git).

THE WEIGHT GENERATOR (Java must reproduce it exactly; all integer arithmetic is mod 2^64, unsigned)
  GOLDEN = 0x9E3779B97F4A7C15
  mix(z):  z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9
           z = (z ^ (z >>> 27)) * 0x94D049BB133111EB
           return z ^ (z >>> 31)
  (i.e. splitmix64: the k-th output, k = 1, 2, ..., of a generator started at state s is
   mix(s + k * GOLDEN).)
  Tensors are numbered t = 0, 1, ... in the sorted order of their state_dict names (manifest
  "index"). Tensor t's seed is  seed_t = mix(model_seed + (t + 1) * GOLDEN)  (manifest "seed",
  unsigned decimal; model_seed is manifest "model_seed").
  Element i (0-based, row-major over the tensor's shape) is
      bits = mix(seed_t + (i + 1) * GOLDEN)
      u    = float32(bits >>> 40) * 2^-24 * 2 - 1        # exact in float32: a multiple of 2^-23 in [-1, 1)
      w    = float32(offset) + float32(scale) * u        # two float32 operations, each rounded
                                                          # to nearest even (no fused multiply-add)
  with (scale, offset) chosen per tensor by its module (manifest "scale", "offset"; both are
  to be read as float32):
      LayerNorm / RMSNorm weight         scale 0.1,  offset 1
      LayerNorm / RMSNorm bias           scale 0.05, offset 0
      Linear weight                      scale 0.2,  offset 0   (hidden 64: projections keep O(1) outputs)
      Linear bias                        scale 0.05, offset 0
      Embedding (word, position, type)   scale 0.5,  offset 0
      MPNet relative_attention_bias      scale 1.0,  offset 0   (so the bucketed bias matters)
  Tensors that share storage (tied weights) would get the value of the first name only; none of
  the base models here ties any. Non-float tensors are not generated: the manifest lists them with
  "generator": "arange" or "zeros" (none are expected in transformers 5.x base models).
  Checksums in the manifest: "sha256" of the float32 little-endian bytes (the exact test), "fsum"
  (math.fsum of the values as float64: the exactly rounded sum), "first" (the first 4 values).

Usage: python3 make_reference_models.py --out DIR [--only bert,mpnet] [--skip-onnx] [--prng-selftest]

On the device machine (one call; the `run` tool sends /work/main's tree, so copy this file into an
ignored /work/main/.devrun/ and pass carry=[".devrun"]); one process per architecture, on the CPU:
  cd .devrun && mkdir -p $OUT/w; export PYTHONUNBUFFERED=1 CUDA_VISIBLE_DEVICES=""; \
  for a in bert distilbert mpnet roberta xlm-roberta modernbert; do T=2; [ $a = modernbert ] && T=6; \
    TW_THREADS=$T timeout 400 python3 make_reference_models.py --out $OUT/w --only $a \
      > $OUT/w/log-$a.txt 2>&1 & done; wait; tail -n 25 $OUT/w/log-*.txt; \
  cd $OUT/w && tar czf $OUT/refs.tar.gz refs log-*.txt; tar czf $OUT/onnx.tar.gz onnx; rm -rf $OUT/w
Then unpack refs/<arch>/ into integration-tests/src/test/resources/reference-models/<arch>/ and
refs/prng-selftest.json next to them (summary-*.json are logs, not resources); keep the .onnx files
out of git: commit each as model-skeleton.onnx.txtpb (protobuf text), its weights emptied, made in integration-tests/ with
  java -cp target/test-classes:target/classes:$(cat cp.txt) \
    io.github.tilewise.it.reference.OnnxSkeleton ARCH onnx/ARCH.onnx \
    src/test/resources/reference-models/ARCH/model-skeleton.onnx.txtpb
(cp.txt from mvn dependency:build-classpath -Dmdep.outputFile=cp.txt -Dmdep.includeScope=test). Each architecture writes its reference files before the ONNX export and again after it
(with the ORT differences), so a timeout during the export still leaves usable references.
Needs numpy; everything but --prng-selftest needs torch, transformers, tokenizers, safetensors,
onnx, onnxruntime and (optionally) sentence-transformers.
"""

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import sys
import time
import traceback

import numpy as np

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB


# --------------------------------------------------------------------------------------------
# The seeded generator
# --------------------------------------------------------------------------------------------


def mix64(z):
    """splitmix64's finaliser on a Python int (mod 2^64)."""
    z &= MASK64
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def tensor_seed(model_seed, index):
    """Seed of tensor number `index` (0-based): the (index+1)-th output of splitmix64(model_seed)."""
    return mix64(model_seed + (index + 1) * GOLDEN)


def uniform_f32(seed, n):
    """n float32 values u_i in [-1, 1): u_i from mix(seed + (i+1)*GOLDEN), see the header."""
    with np.errstate(over="ignore"):
        k = np.arange(1, n + 1, dtype=np.uint64)
        z = np.uint64(seed) + k * np.uint64(GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
        z = z ^ (z >> np.uint64(31))
    top = (z >> np.uint64(40)).astype(np.float32)  # < 2^24: exact
    u = top * np.float32(2.0**-24)
    u = u * np.float32(2.0)
    u = u - np.float32(1.0)
    return u


def seeded_values(seed, shape, scale, offset):
    n = int(np.prod(shape)) if len(shape) else 1
    u = uniform_f32(seed, n)
    w = np.float32(scale) * u  # float32 * float32 -> float32
    w = np.float32(offset) + w  # float32 + float32 -> float32
    assert w.dtype == np.float32
    return w.reshape(shape)


def checksums(a):
    a = np.ascontiguousarray(a, dtype="<f4")
    flat = a.reshape(-1)
    return {
        "sha256": hashlib.sha256(a.tobytes()).hexdigest(),
        "fsum": math.fsum(float(x) for x in flat),
        "first": [float(x) for x in flat[:4]],
    }


def prng_selftest():
    """Plain-Python check of the vectorised generator, and a few fixed values for the Java test."""
    seed = tensor_seed(12345, 0)
    vals = seeded_values(seed, (7,), 0.2, 0.0)
    for i in range(7):
        bits = mix64(seed + (i + 1) * GOLDEN)
        u = np.float32(bits >> 40) * np.float32(2.0**-24) * np.float32(2.0) - np.float32(1.0)
        w = np.float32(0.0) + np.float32(0.2) * u
        assert w == vals[i], (i, w, vals[i])
    print("prng selftest ok: seed", seed, "values", [float(v) for v in vals])
    return {"model_seed": 12345, "index": 0, "seed": str(seed), "scale": 0.2, "offset": 0.0,
            "values": [float(v) for v in vals]}


# --------------------------------------------------------------------------------------------
# Text (written for this file) for the tokenizers and the inputs
# --------------------------------------------------------------------------------------------

PARAGRAPHS = [
    "The river ran low that autumn, and the old mill stood silent for the first time in forty years. "
    "Children walked along the dry stones where the water used to roar, looking for coins and lost "
    "keys, and the miller sat on his bench and watched them with a patient smile.",
    "A long document is simply a short document that kept going. Each sentence leans on the one "
    "before it, each paragraph carries a thread from the last, and a model that reads only the "
    "first five hundred words misses the ending, which is often where the point was made.",
    "In the laboratory the instruments hummed through the night. Temperature, pressure and the slow "
    "drift of the voltage were written to disk every second, and in the morning the engineers "
    "compared the curves with the predictions of the model and argued about the differences.",
    "Memory is the quiet limit of every computation. A matrix of scores for eight thousand tokens "
    "holds sixty-four million numbers, and a careful kernel never writes it down at all: it walks "
    "through the keys tile by tile and keeps only a running maximum, a running sum and the output.",
    "The market opened early on Saturday. Farmers brought apples, pears, cabbages and honey; a baker "
    "sold warm bread from a cart; and a musician played the violin near the fountain while dogs "
    "chased pigeons between the stalls and the church bell counted the hours.",
    "Rotary embeddings turn a position into an angle. Two tokens that are close together see a small "
    "rotation between their queries and keys, two tokens far apart see a large one, and the "
    "attention score depends on the distance between them rather than on where they stand.",
    "She opened the letter slowly, read it twice, and folded it back into its envelope. Outside the "
    "window the snow kept falling on the quiet street, covering the footprints of the postman and "
    "the tracks of a small cat that had crossed the garden before dawn.",
    "Sliding windows let each token look only at its neighbours. A layer with a window of one hundred "
    "and twenty-eight tokens costs the same at the start of a book as at its end, and a few global "
    "layers in between carry the long-range information across the whole text.",
    "Numbers such as 3.14159, 2026, 42 and 1,000,000 appear in text too, with symbols like %, $, "
    "#, @ and &, e-mail addresses such as reader@example.org, and words in CAPITALS or with "
    "hyphenated-compound-forms that a tokenizer must split sensibly.",
]

MULTILINGUAL = [
    "Le chat dort sur le canapé pendant que la pluie tombe doucement sur la ville.",
    "Der schnelle braune Fuchs springt über den faulen Hund, und die Straße ist nass.",
    "El río bajaba tranquilo y los niños jugaban en la orilla hasta el atardecer.",
    "Η θάλασσα ήταν ήρεμη και ο ουρανός καθαρός όλη την ημέρα.",
    "Москва — большой город, и зимой там часто идёт снег.",
    "東京の朝はとても静かで、駅には人が少なかった。",
    "今天天气很好，我们去公园散步吧。",
    "Çok güzel bir gün, deniz kenarında yürüyüş yaptık.",
    "Ich möchte einen Kaffee und ein Stück Kuchen, bitte.",
    "Il était une fois un petit garçon qui rêvait de voler au-dessus des nuages.",
]


def corpus(multilingual):
    lines = list(PARAGRAPHS)
    if multilingual:
        lines += MULTILINGUAL * 3
    rng = random.Random(7)
    sentences = [s.strip() + "." for p in PARAGRAPHS for s in p.split(". ") if s.strip()]
    for _ in range(300):
        lines.append(" ".join(rng.sample(sentences, 3)))
    return lines


def all_sentences(multilingual):
    out = [s.strip().rstrip(".") + "." for p in PARAGRAPHS for s in p.split(". ") if s.strip()]
    if multilingual:
        out += MULTILINGUAL
    return out


SHORT_TEXTS = [
    "the",  # one token between the specials (checked below)
    "The old mill stood silent.",
    PARAGRAPHS[1],
    "Numbers like 3.14 and 2026, an e-mail reader@example.org, and CAPITALS!",
]
ONE_TOKEN_CANDIDATES = ["the", "The", "a", "and", "of", "I", "x", "."]
MULTI_SHORT = "Le chat dort sur le canapé. Москва — большой город. 東京の朝はとても静か。"
BATCH_TEXTS = [
    PARAGRAPHS[3],
    "A short one.",
    PARAGRAPHS[0][:120],
    "the",
]


# --------------------------------------------------------------------------------------------
# Architectures
# --------------------------------------------------------------------------------------------

ARCHS = {
    "bert": dict(model_seed=1001, tokenizer="wordpiece", max_pos=512, positions_offset=0),
    "distilbert": dict(model_seed=1002, tokenizer="wordpiece", max_pos=512, positions_offset=0),
    "mpnet": dict(model_seed=1003, tokenizer="wordpiece-mpnet", max_pos=514, positions_offset=2),
    "roberta": dict(model_seed=1004, tokenizer="bpe-roberta", max_pos=514, positions_offset=2),
    "xlm-roberta": dict(model_seed=1005, tokenizer="unigram", max_pos=2050, positions_offset=2),
    "modernbert": dict(model_seed=1006, tokenizer="bpe-modernbert", max_pos=8192, positions_offset=0),
}
HIDDEN, HEADS, INTER = 64, 4, 128


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def build_tokenizer(kind, vocab_size=800):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    multilingual = kind == "unigram"
    lines = corpus(multilingual)
    if kind.startswith("wordpiece"):
        if kind == "wordpiece-mpnet":
            specials = ["<s>", "<pad>", "</s>", "<unk>"]
            names = dict(bos="<s>", cls="<s>", pad="<pad>", eos="</s>", sep="</s>", unk="<unk>", mask="<mask>")
            unk = "<unk>"
        else:
            specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
            names = dict(cls="[CLS]", pad="[PAD]", sep="[SEP]", unk="[UNK]", mask="[MASK]")
            unk = "[UNK]"
        tok = Tokenizer(models.WordPiece(unk_token=unk))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
        tok.train_from_iterator(lines, trainer)
        if kind == "wordpiece-mpnet":
            tok.add_special_tokens(["<mask>"])  # MPNet's mask is the last id, as in the real vocab
    elif kind in ("bpe-roberta", "bpe-modernbert"):
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        if kind == "bpe-roberta":
            specials = ["<s>", "<pad>", "</s>", "<unk>"]
            names = dict(bos="<s>", cls="<s>", pad="<pad>", eos="</s>", sep="</s>", unk="<unk>", mask="<mask>")
        else:
            specials = []
            names = dict(cls="[CLS]", pad="[PAD]", sep="[SEP]", unk="[UNK]", mask="[MASK]")
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(lines, trainer)
        if kind == "bpe-roberta":
            tok.add_special_tokens(["<mask>"])
        else:
            # ModernBERT's real vocabulary has its specials at the end ([CLS] 50281 ... ): so here.
            tok.add_special_tokens(["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"])
    elif kind == "unigram":
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
        tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
        specials = ["<s>", "<pad>", "</s>", "<unk>"]
        names = dict(bos="<s>", cls="<s>", pad="<pad>", eos="</s>", sep="</s>", unk="<unk>", mask="<mask>")
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>", show_progress=False
        )
        tok.train_from_iterator(lines, trainer)
        tok.add_special_tokens(["<mask>"])
    else:
        raise ValueError(kind)

    ids = {k: tok.token_to_id(v) for k, v in names.items()}
    assert all(v is not None for v in ids.values()), ids
    cls, sep = names["cls"], names["sep"]
    if kind in ("bpe-roberta", "wordpiece-mpnet", "unigram"):
        pair = f"{cls} $A {sep} {sep} $B {sep}"
    else:
        pair = f"{cls} $A {sep} $B:1 {sep}:1"
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", pair=pair, special_tokens=[(cls, ids["cls"]), (sep, ids["sep"])]
    )
    return tok, names, ids, multilingual


def wrap_tokenizer(tok, names, max_len):
    try:
        from transformers import PreTrainedTokenizerFast as Fast
    except ImportError:  # transformers 5 renamed the class
        from transformers.tokenization_utils_tokenizers import TokenizersBackend as Fast
    kw = {f"{k}_token": v for k, v in names.items()}
    return Fast(tokenizer_object=tok, model_max_length=max_len, **kw)


def make_config(arch, vocab, ids, max_pos):
    from transformers import AutoConfig

    common = dict(vocab_size=vocab)
    if arch == "bert":
        return AutoConfig.for_model(
            "bert", hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=HEADS,
            intermediate_size=INTER, max_position_embeddings=max_pos, type_vocab_size=2,
            pad_token_id=ids["pad"], hidden_act="gelu", layer_norm_eps=1e-12, **common)
    if arch == "distilbert":
        return AutoConfig.for_model(
            "distilbert", dim=HIDDEN, n_layers=2, n_heads=HEADS, hidden_dim=INTER,
            max_position_embeddings=max_pos, pad_token_id=ids["pad"], activation="gelu",
            sinusoidal_pos_embds=False, **common)
    if arch == "mpnet":
        return AutoConfig.for_model(
            "mpnet", hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=HEADS,
            intermediate_size=INTER, max_position_embeddings=max_pos,
            relative_attention_num_buckets=32, pad_token_id=ids["pad"], bos_token_id=ids["bos"],
            eos_token_id=ids["eos"], hidden_act="gelu", layer_norm_eps=1e-5, **common)
    if arch in ("roberta", "xlm-roberta"):
        return AutoConfig.for_model(
            arch, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=HEADS,
            intermediate_size=INTER, max_position_embeddings=max_pos, type_vocab_size=1,
            pad_token_id=ids["pad"], bos_token_id=ids["bos"], eos_token_id=ids["eos"],
            hidden_act="gelu", layer_norm_eps=1e-5, **common)
    if arch == "modernbert":
        return AutoConfig.for_model(
            "modernbert", hidden_size=HIDDEN, num_hidden_layers=3, num_attention_heads=HEADS,
            intermediate_size=INTER, max_position_embeddings=max_pos,
            layer_types=["full_attention", "sliding_attention", "sliding_attention"],
            global_attn_every_n_layers=3, local_attention=64,
            rope_parameters={
                "full_attention": {"rope_type": "default", "rope_theta": 160000.0},
                "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
            },
            pad_token_id=ids["pad"], cls_token_id=ids["cls"], sep_token_id=ids["sep"],
            bos_token_id=ids["cls"], eos_token_id=ids["sep"], hidden_activation="gelu",
            norm_eps=1e-5, norm_bias=False, attention_bias=False, mlp_bias=False,
            reference_compile=False, **common)
    raise ValueError(arch)


def legacy_modernbert_config(cfg_dict):
    """The config.json shape of the checkpoints on the Hub (global/local rope theta, no layer_types)."""
    d = dict(cfg_dict)
    for k in ("rope_parameters", "layer_types", "transformers_version", "dtype", "torch_dtype"):
        d.pop(k, None)
    d["global_rope_theta"] = 160000.0
    d["local_rope_theta"] = 10000.0
    d["global_attn_every_n_layers"] = 3
    d["local_attention"] = 64
    return d


# --------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------


def scale_for(name, module):
    import torch.nn as nn

    leaf = name.rsplit(".", 1)[-1]
    mtype = type(module).__name__
    is_norm = isinstance(module, nn.LayerNorm) or "RMSNorm" in mtype or "LayerNorm" in mtype
    if is_norm:
        return (0.1, 1.0) if leaf == "weight" else (0.05, 0.0)
    if "relative_attention_bias" in name:
        return (1.0, 0.0)
    if isinstance(module, nn.Embedding):
        return (0.5, 0.0)
    if isinstance(module, nn.Linear):
        return (0.2, 0.0) if leaf == "weight" else (0.05, 0.0)
    raise ValueError(f"no scale rule for {name} ({mtype})")


def fill_weights(model, model_seed):
    import torch

    modules = dict(model.named_modules())
    sd = model.state_dict(keep_vars=True)
    names = sorted(sd.keys())
    seen = {}
    entries = []
    for t, name in enumerate(names):
        tensor = sd[name]
        mod_name = name.rsplit(".", 1)[0] if "." in name else ""
        module = modules.get(mod_name)
        entry = {"index": t, "name": name, "shape": list(tensor.shape), "module": type(module).__name__}
        if not tensor.dtype.is_floating_point:
            n = tensor.numel()
            flat = tensor.detach().reshape(-1).cpu()
            if torch.equal(flat, torch.arange(n, dtype=flat.dtype)):
                entry.update(dtype="I64", generator="arange")
            elif torch.count_nonzero(flat) == 0:
                entry.update(dtype="I64", generator="zeros")
            else:
                raise ValueError(f"non-float tensor {name} is neither arange nor zeros")
            entries.append(entry)
            continue
        ptr = tensor.data_ptr()
        if ptr in seen:
            entry.update(dtype="F32", tied_to=seen[ptr])
            entries.append(entry)
            continue
        seen[ptr] = name
        scale, offset = scale_for(name, module)
        seed = tensor_seed(model_seed, t)
        values = seeded_values(seed, tuple(tensor.shape), scale, offset)
        with torch.no_grad():
            tensor.data.copy_(torch.from_numpy(values).to(tensor.dtype))
        entry.update(dtype="F32", seed=str(seed), seed_hex=f"0x{seed:016x}", scale=scale, offset=offset,
                     **checksums(values))
        entries.append(entry)
    return entries


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


def sig(x, digits):
    return float(f"{x:.{digits}g}")


def rows_for(n):
    if n <= 160:
        return list(range(n))
    s = set(range(16)) | set(range(0, n, 61)) | set(range(n - 16, n))
    return sorted(s)


def run_model(model, arch, ids, mask):
    import torch

    kw = dict(input_ids=torch.tensor(ids, dtype=torch.long), attention_mask=torch.tensor(mask, dtype=torch.long))
    if arch == "bert":
        kw["token_type_ids"] = torch.zeros_like(kw["input_ids"])
    with torch.no_grad():
        out = model(**kw)
    return out.last_hidden_state.detach().cpu().double().numpy()


def mean_pool(h, mask):
    m = np.asarray(mask, dtype=np.float64)[:, :, None]
    return (h * m).sum(1) / m.sum(1)


def encode_case(name, kind, texts, hf_tok, raw_tok, pad_id, limit=None):
    """Token ids from the transformers tokenizer, checked against the raw tokenizers one."""
    enc = []
    match = True
    for t in texts:
        a = hf_tok(t, add_special_tokens=True)["input_ids"]
        b = raw_tok.encode(t).ids
        match = match and (list(a) == list(b))
        enc.append(list(a))
    n = max(len(e) for e in enc)
    ids = [e + [pad_id] * (n - len(e)) for e in enc]
    mask = [[1] * len(e) + [0] * (n - len(e)) for e in enc]
    return {"name": name, "kind": kind, "texts": texts, "input_ids": ids, "attention_mask": mask,
            "lengths": [len(e) for e in enc], "tokenizer_ids_match": match}


def long_text(hf_tok, target, limit, multilingual, seed):
    rng = random.Random(seed)
    sents = all_sentences(multilingual)
    text = ""
    while True:
        s = rng.choice(sents)
        cand = (text + " " + s).strip()
        n = len(hf_tok(cand)["input_ids"])
        if n > limit:
            if text:
                return text
            raise ValueError("limit too small")
        text = cand
        if n >= target:
            return text


def record_outputs(case, h32, h64, ort=None):
    n = h32.shape[1]
    rows = rows_for(n)
    full = rows == list(range(n))
    mask = case["attention_mask"]
    rec = dict(case)
    rec["seq_len"] = n
    rec["rows"] = "all" if full else rows
    def rows_of(h, b, digits):
        return [[sig(v, digits) for v in h[b, r]] if mask[b][r] else None for r in rows]

    rec["fp32"] = {
        "last_hidden_state": [rows_of(h32, b, 7) for b in range(h32.shape[0])],
        "mean_pooled": [[sig(v, 8) for v in row] for row in mean_pool(h32, mask)],
    }
    rec["fp64"] = {
        "last_hidden_state": [rows_of(h64, b, 9) for b in range(h64.shape[0])],
        "mean_pooled": [[sig(v, 10) for v in row] for row in mean_pool(h64, mask)],
    }
    m = np.asarray(mask, dtype=bool)
    rec["max_abs_fp32_vs_fp64"] = float(np.abs(h32 - h64)[m].max())
    rec["max_abs_value"] = float(np.abs(h64[m]).max())
    if ort is not None:
        rec["ort_max_abs_vs_fp32"] = ort
    return rec


def ort_check(onnx_path, cases, h32s):
    import onnxruntime as ort

    so = ort.SessionOptions()
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    res = {}
    for case in cases:
        feed = {}
        for nm in names:
            if nm == "input_ids":
                feed[nm] = np.asarray(case["input_ids"], dtype=np.int64)
            elif nm == "attention_mask":
                feed[nm] = np.asarray(case["attention_mask"], dtype=np.int64)
            else:
                feed[nm] = np.zeros_like(np.asarray(case["input_ids"], dtype=np.int64))
        out = sess.run(None, feed)[0].astype(np.float64)
        m = np.asarray(case["attention_mask"], dtype=bool)
        res[case["name"]] = float(np.abs(out - h32s[case["name"]])[m].max())
    return res


def export_onnx(model, arch, path, example, check):
    """Exports with the dynamo exporter, else the TorchScript one; keeps the first whose ORT run
    agrees with torch within 1e-3 on every input (check(path) returns the per-input max |diff|)."""
    import onnx
    import torch

    class Wrap(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    w = Wrap(model).eval()
    ids = torch.tensor(example["input_ids"], dtype=torch.long)
    mask = torch.tensor(example["attention_mask"], dtype=torch.long)
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
            "last_hidden_state": {0: "batch", 1: "sequence"}}
    errors = []
    best = None
    for dynamo in (True, False):
        name = "dynamo" if dynamo else "torchscript"
        try:
            t0 = time.time()
            tmp = path + "." + name
            torch.onnx.export(w, (ids, mask), tmp, input_names=["input_ids", "attention_mask"],
                              output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=18,
                              dynamo=dynamo)
            m = onnx.load(tmp)  # pulls in external data if the exporter wrote any
            for f in os.listdir(os.path.dirname(path)):
                if f.startswith(os.path.basename(tmp)):
                    os.remove(os.path.join(os.path.dirname(path), f))
            cand = path + ".cand"
            onnx.save(m, cand, save_as_external_data=False)
            onnx.checker.check_model(cand)
            diffs = check(cand)
            worst = max(diffs.values())
            log(arch, "onnx", name, f"{time.time() - t0:.1f}s", "worst ORT diff", worst)
            if best is None or worst < best["worst"]:
                os.replace(cand, path)
                best = {"exporter": name, "opset": 18, "worst": worst, "ort_max_abs_vs_fp32": diffs,
                        "bytes": os.path.getsize(path),
                        "inputs": [i.name for i in m.graph.input], "outputs": [o.name for o in m.graph.output]}
            else:
                os.remove(cand)
            if worst < 1e-3:
                break
        except Exception as e:  # noqa: BLE001 - try the other exporter
            errors.append(f"{name}: {type(e).__name__}: {str(e)[:800]}")
            log("onnx export failed", arch, errors[-1])
    res = best or {"exporter": None}
    res["errors"] = errors
    return res


def window_probe(model, case):
    """Which key offsets a sliding layer attends to (eager attention weights, row in the middle)."""
    import torch

    ids = torch.tensor(case["input_ids"], dtype=torch.long)
    mask = torch.tensor(case["attention_mask"], dtype=torch.long)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, output_attentions=True)
    res = {}
    for layer, att in enumerate(out.attentions):
        a = att[0, 0].double().numpy()  # head 0: [q, k]
        n = a.shape[0]
        i = n // 2
        nz = np.nonzero(a[i] > 0)[0] - i
        res[f"layer{layer}"] = {"row": int(i), "seq_len": int(n), "min_offset": int(nz.min()),
                                "max_offset": int(nz.max()), "count": int(nz.size)}
    return res


def sentence_transformers_case(hf_dir, st_dir, pooling, texts, ref_out):
    from sentence_transformers import SentenceTransformer, models as stm

    tr = stm.Transformer(hf_dir)
    pool = stm.Pooling(tr.get_word_embedding_dimension(), pooling_mode=pooling)
    st = SentenceTransformer(modules=[tr, pool], device="cpu")
    st.save(st_dir)
    emb = st.encode(texts, batch_size=len(texts), convert_to_numpy=True, normalize_embeddings=False)
    emb = np.asarray(emb, dtype=np.float64)
    return {"pooling": pooling, "texts": texts,
            "embeddings": [[sig(v, 8) for v in row] for row in emb],
            "max_abs_vs_transformers_pooled": float(np.abs(emb - ref_out).max())}


def make_arch(arch, out_root, skip_onnx):
    import torch
    import transformers
    from safetensors.numpy import load_file
    from transformers import AutoModel

    spec = ARCHS[arch]
    d = os.path.join(out_root, "refs", arch)
    work = os.path.join(out_root, "work", arch)
    for p in (d, work):
        shutil.rmtree(p, ignore_errors=True)
        os.makedirs(p)
    summary = {"arch": arch}

    max_tokens = spec["max_pos"] - spec["positions_offset"]
    tok, names, ids, multilingual = build_tokenizer(spec["tokenizer"])
    hf_tok = wrap_tokenizer(tok, names, max_tokens)
    hf_dir = os.path.join(work, "hf")
    hf_tok.save_pretrained(hf_dir)
    from tokenizers import Tokenizer

    raw_tok = Tokenizer.from_file(os.path.join(hf_dir, "tokenizer.json"))
    vocab = raw_tok.get_vocab_size(with_added_tokens=True)
    log(arch, "tokenizer", spec["tokenizer"], "vocab", vocab, "specials", ids)

    cfg = make_config(arch, vocab, ids, spec["max_pos"])
    model = AutoModel.from_config(cfg, attn_implementation="eager").float().eval()
    entries = fill_weights(model, spec["model_seed"])
    model.save_pretrained(hf_dir)

    # The saved file's tensor names (save_pretrained may rename): match them by content.
    saved = {}
    for fn in sorted(os.listdir(hf_dir)):
        if fn.endswith(".safetensors"):
            saved.update(load_file(os.path.join(hf_dir, fn)))
    by_sha = {e["sha256"]: e for e in entries if "sha256" in e}
    for key, arr in saved.items():
        if arr.dtype != np.float32:
            continue
        e = by_sha.get(checksums(arr)["sha256"])
        if e is None:
            summary.setdefault("saved_keys_matching_no_generated_tensor", []).append(key)
            log("WARNING", arch, "saved tensor", key, "matches no generated tensor")
            continue
        e["file_key"] = key
    missing = [e["name"] for e in entries if "sha256" in e and "file_key" not in e]
    if missing:
        summary["generated_tensors_not_saved"] = missing
        log("WARNING", arch, "generated tensors not in model.safetensors:", missing)

    try:
        reloaded, info = AutoModel.from_pretrained(hf_dir, attn_implementation="eager", output_loading_info=True)
        summary["loading_info"] = {k: sorted(map(str, v)) for k, v in info.items() if v}
    except Exception as e:  # noqa: BLE001
        summary["loading_info"] = {"error": f"{type(e).__name__}: {e}"[:500]}
        reloaded = AutoModel.from_pretrained(hf_dir, attn_implementation="eager")
    reloaded = reloaded.float().eval()

    # Inputs.
    pad = ids["pad"]
    word = next((w for w in ONE_TOKEN_CANDIDATES if len(hf_tok(w)["input_ids"]) == 3), "a")
    short_texts = [word] + SHORT_TEXTS[1:]
    batch_texts = BATCH_TEXTS[:3] + [word]
    summary["one_token_text"] = word
    cases = []
    for i, t in enumerate(short_texts):
        cases.append(encode_case(f"short-{i}", "single", [t], hf_tok, raw_tok, pad))
    if multilingual:
        cases.append(encode_case("short-multilingual", "single", [MULTI_SHORT], hf_tok, raw_tok, pad))
    cases.append(encode_case("batch-padded", "batch", batch_texts, hf_tok, raw_tok, pad))
    longs = [("medium-300", 300, 1)]
    if arch == "xlm-roberta":
        longs.append(("long-2000", 2000, 2))
    if arch == "modernbert":
        longs += [("long-4000", 4000, 3), ("long-8100", 8100, 4)]
    for nm, target, seed in longs:
        text = long_text(hf_tok, target, max_tokens, multilingual, seed)
        cases.append(encode_case(nm, "single", [text], hf_tok, raw_tok, pad))
    for c in cases:
        if not c["tokenizer_ids_match"]:
            log("WARNING", arch, c["name"], "transformers and tokenizers ids differ")
        assert max(c["lengths"]) <= max_tokens, (c["name"], c["lengths"])

    # float32 and float64 runs.
    h32s, h64s = {}, {}
    t0 = time.time()
    for c in cases:
        h32s[c["name"]] = run_model(model, arch, c["input_ids"], c["attention_mask"])
    r = run_model(reloaded, arch, cases[1]["input_ids"], cases[1]["attention_mask"])
    summary["reloaded_max_abs_diff"] = float(np.abs(r - h32s[cases[1]["name"]]).max())
    model64 = AutoModel.from_config(cfg, attn_implementation="eager").eval()
    model64.load_state_dict(model.state_dict())
    model64 = model64.double()
    for c in cases:
        h64s[c["name"]] = run_model(model64, arch, c["input_ids"], c["attention_mask"])
    log(arch, "forward passes", f"{time.time() - t0:.1f}s")

    # A padded batch row must equal the same text run alone (real tokens only).
    bc = next(c for c in cases if c["kind"] == "batch")
    worst = 0.0
    for b, t in enumerate(bc["texts"]):
        single = encode_case("x", "single", [t], hf_tok, raw_tok, pad)
        hs = run_model(model, arch, single["input_ids"], single["attention_mask"])
        n = bc["lengths"][b]
        worst = max(worst, float(np.abs(hs[0, :n] - h32s[bc["name"]][b, :n]).max()))
    summary["batch_row_vs_single_max_abs"] = worst

    # Architecture-specific evidence.
    if arch == "modernbert":
        try:
            probe = encode_case("probe", "single", [PARAGRAPHS[3] + " " + PARAGRAPHS[7]], hf_tok, raw_tok, pad)
            summary["window_probe"] = window_probe(model, probe)
        except Exception as e:  # noqa: BLE001
            summary["window_probe"] = {"error": f"{type(e).__name__}: {e}"[:500]}
        try:
            legacy = legacy_modernbert_config(json.loads(open(os.path.join(hf_dir, "config.json")).read()))
            with open(os.path.join(d, "config-legacy.json"), "w") as f:
                json.dump(legacy, f, indent=2, sort_keys=True)
            lcfg = transformers.ModernBertConfig.from_dict(legacy)
            lm = AutoModel.from_config(lcfg, attn_implementation="eager").eval()
            lm.load_state_dict(model.state_dict())
            lc = next(c for c in cases if c["name"] == "medium-300")
            hl = run_model(lm, arch, lc["input_ids"], lc["attention_mask"])
            summary["legacy_config"] = {
                "layer_types": list(lcfg.layer_types), "rope_parameters": lcfg.rope_parameters,
                "max_abs_vs_new_config": float(np.abs(hl - h32s[lc["name"]]).max())}
        except Exception as e:  # noqa: BLE001
            summary["legacy_config"] = {"error": f"{type(e).__name__}: {e}"[:500]}

    # Sentence-transformers layout.
    st_pool = {"mpnet": "mean", "bert": "cls"}.get(arch)
    if st_pool:
        try:
            st_dir = os.path.join(work, "st")
            texts = short_texts + batch_texts[:2]
            enc = [hf_tok(t)["input_ids"] for t in texts]
            ref = []
            for e in enc:
                h = run_model(model, arch, [e], [[1] * len(e)])[0]
                ref.append(h.mean(0) if st_pool == "mean" else h[0])
            summary["sentence_transformers"] = sentence_transformers_case(
                hf_dir, st_dir, st_pool, texts, np.asarray(ref))
            for rel in ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json",
                        os.path.join("1_Pooling", "config.json")):
                src = os.path.join(st_dir, rel)
                if os.path.exists(src):
                    os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)
                    shutil.copy(src, os.path.join(d, rel))
        except Exception as e:  # noqa: BLE001
            summary["sentence_transformers"] = {"error": f"{type(e).__name__}: {e}"[:1000]}
            traceback.print_exc()

    def write_files(ort_diffs):
        # Files.
        for fn in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            if os.path.exists(os.path.join(hf_dir, fn)):
                shutil.copy(os.path.join(hf_dir, fn), os.path.join(d, fn))
        aux = sorted(os.path.relpath(os.path.join(r, f), d) for r, _, fs in os.walk(d) for f in fs
                     if not f.endswith(".tmp") and f != "manifest.json")
        aux = sorted(set(aux) | {fn for fn in ("outputs.json", "outputs-batch.json", "outputs-long.json")})
        manifest = {
            "arch": arch, "model_seed": spec["model_seed"], "generator": "splitmix64, see make_reference_models.py",
            "transformers_version": transformers.__version__, "torch_version": torch.__version__,
            "files": aux, "tensors": entries,
            "safetensors_keys": sorted(saved.keys()),
        }
        with open(os.path.join(d, "manifest.json.tmp"), "w") as f:
            json.dump(manifest, f, indent=1)
        os.replace(os.path.join(d, "manifest.json.tmp"), os.path.join(d, "manifest.json"))

        meta = {
            "arch": arch, "transformers_version": transformers.__version__, "torch_version": torch.__version__,
            "attn_implementation": "eager", "device": "cpu",
            "special_token_ids": ids, "max_tokens": max_tokens, "tokenizer_class": type(hf_tok).__name__,
            "compare": "last_hidden_state rows where attention_mask == 1; 'rows' lists the recorded "
                       "sequence positions ('all' = every position); fp32 rounded to 7 and fp64 to 9 "
                       "significant digits; mean_pooled is over all real tokens of the full sequence",
            "summary": summary,
        }
        groups = {"outputs.json": [], "outputs-batch.json": [], "outputs-long.json": []}
        for c in cases:
            ort = ort_diffs.get(c["name"]) if ort_diffs else None
            rec = record_outputs(c, h32s[c["name"]], h64s[c["name"]], ort)
            fn = "outputs-batch.json" if c["kind"] == "batch" else (
                "outputs.json" if c["name"].startswith("short") else "outputs-long.json")
            groups[fn].append(rec)
        summary["max_abs_fp32_vs_fp64"] = max(
            float(np.abs(h32s[c["name"]] - h64s[c["name"]])[np.asarray(c["attention_mask"], bool)].max())
            for c in cases)
        for fn, recs in groups.items():
            if not recs:
                continue
            with open(os.path.join(d, fn + ".tmp"), "w") as f:
                json.dump(dict(meta, cases=recs), f, separators=(",", ":"), default=str)
            os.replace(os.path.join(d, fn + ".tmp"), os.path.join(d, fn))
            size = os.path.getsize(os.path.join(d, fn))
            log(arch, fn, size, "bytes")
            if size >= 2_000_000:
                log("WARNING", arch, fn, "is over 2 MB")

    ort_diffs = None
    write_files(None)
    log(arch, "reference files written")
    # ONNX.
    if not skip_onnx:
        onnx_path = os.path.join(out_root, "onnx", f"{arch}.onnx")
        os.makedirs(os.path.dirname(onnx_path), exist_ok=True)
        try:
            summary["onnx"] = export_onnx(model, arch, onnx_path, bc, lambda p: ort_check(p, cases, h32s))
            ort_diffs = summary["onnx"].get("ort_max_abs_vs_fp32")
        except Exception as e:  # noqa: BLE001
            summary["onnx"] = {"error": f"{type(e).__name__}: {e}"[:1000]}
            traceback.print_exc()

    write_files(ort_diffs)
    log(arch, "summary", json.dumps(summary, default=str)[:3000])
    return summary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=False, default="out")
    ap.add_argument("--only", default=",".join(ARCHS))
    ap.add_argument("--skip-onnx", action="store_true")
    ap.add_argument("--prng-selftest", action="store_true")
    a = ap.parse_args()
    st = prng_selftest()
    if a.prng_selftest:
        return
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("TW_THREADS", min(16, os.cpu_count() or 1))))
    os.makedirs(os.path.join(a.out, "refs"), exist_ok=True)
    with open(os.path.join(a.out, "refs", "prng-selftest.json"), "w") as f:
        json.dump(st, f, indent=1)
    results = {}
    for arch in a.only.split(","):
        t0 = time.time()
        try:
            results[arch] = make_arch(arch, a.out, a.skip_onnx)
        except Exception as e:  # noqa: BLE001 - keep going with the other architectures
            traceback.print_exc()
            results[arch] = {"error": f"{type(e).__name__}: {e}"[:2000]}
        log(arch, f"done in {time.time() - t0:.1f}s")
    with open(os.path.join(a.out, "refs", f"summary-{a.only.replace(',', '_')}.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    print(json.dumps({k: ("error" in v) for k, v in results.items()}))


if __name__ == "__main__":
    main()
