#!/usr/bin/env python3
"""transformers' own ONNX export of a ModernBERT-base-shaped encoder, carried without its weights.

The long-document benchmark's ONNX Runtime peer (issue 16) should run the export transformers
makes of the very model Tilewise runs. A ModernBERT-base-shaped export is about 600 MB, more than
the GPU machine may return, so this script (on that machine) builds the model with the seeded
weights of make_reference_models.py (same generator, model_seed 2001), exports it with torch.onnx
(dynamo, opset 18), checks ONNX Runtime against torch on a short input, and writes

  <out>/modernbert-base/config.json     the model's config
  <out>/modernbert-base/manifest.json   every tensor's seed, scale, offset, SHA-256 (as the refs)
  <out>/modernbert-base/model-skeleton.onnx.txtpb
                                        the export with every weight's raw_data emptied and its
                                        doc_string set to "tilewise-seeded:<tensor>" (":T" when the
                                        exporter stored it transposed), node metadata dropped

Java rebuilds the full export from the seed: OnnxSkeleton fill modernbert-base DIR (integration
tests' classpath), then the benchmark runs model=DIR onnx=DIR/model.onnx.

Shape: 22 layers, hidden 768, 12 heads, intermediate 1,152 (GeGLU), vocabulary 50,368, 8,192
positions, local attention 128 (±64) in two layers of three, rope theta 160,000 / 10,000, no biases
- ModernBERT-base's config.

Usage (device machine, CPU; copy this file and make_reference_models.py into an ignored .devrun/
and pass carry=[".devrun"]): cd .devrun && TW_THREADS=16 python3 make_base_export.py --out $OUT/w,
then bring back $OUT/w/modernbert-base/ (tar) into
integration-tests/src/test/resources/reference-models/modernbert-base/.

Status: written 2026-12-07 and NOT YET RUN (no device machine could be started for it).
"""

import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_reference_models as ref  # noqa: E402

MODEL_SEED = 2001
TAG = "tilewise-seeded:"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    import onnx
    import onnxruntime as ort
    import torch
    import transformers
    from transformers import AutoConfig, AutoModel

    torch.set_num_threads(int(os.environ.get("TW_THREADS", min(16, os.cpu_count() or 1))))
    d = os.path.join(a.out, "modernbert-base")
    os.makedirs(d, exist_ok=True)
    cfg = AutoConfig.for_model(
        "modernbert", vocab_size=50368, hidden_size=768, num_hidden_layers=22, num_attention_heads=12,
        intermediate_size=1152, max_position_embeddings=8192,
        layer_types=["full_attention" if i % 3 == 0 else "sliding_attention" for i in range(22)],
        global_attn_every_n_layers=3, local_attention=128,
        rope_parameters={
            "full_attention": {"rope_type": "default", "rope_theta": 160000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
        },
        pad_token_id=50283, cls_token_id=50281, sep_token_id=50282, bos_token_id=50281,
        eos_token_id=50282, hidden_activation="gelu", norm_eps=1e-5, norm_bias=False,
        attention_bias=False, mlp_bias=False, reference_compile=False)
    model = AutoModel.from_config(cfg, attn_implementation="eager").float().eval()
    t0 = time.time()
    entries = ref.fill_weights(model, MODEL_SEED)
    for e in entries:
        if "sha256" in e:
            e["file_key"] = e["name"]
    ref.log("weights", f"{time.time() - t0:.1f}s", len(entries), "tensors")
    cfg.to_json_file(os.path.join(d, "config.json"))
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump({"arch": "modernbert-base", "model_seed": MODEL_SEED,
                   "generator": "splitmix64, see make_reference_models.py",
                   "transformers_version": transformers.__version__, "torch_version": torch.__version__,
                   "files": ["config.json"], "tensors": entries}, f, indent=1)

    class Wrap(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    ids = torch.randint(5, 50000, (1, 300), generator=torch.Generator().manual_seed(7))
    mask = torch.ones_like(ids)
    full = os.path.join(a.out, "modernbert-base-full.onnx")
    t0 = time.time()
    torch.onnx.export(Wrap(model).eval(), (ids, mask), full, input_names=["input_ids", "attention_mask"],
                      output_names=["last_hidden_state"],
                      dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                                    "attention_mask": {0: "batch", 1: "sequence"},
                                    "last_hidden_state": {0: "batch", 1: "sequence"}},
                      opset_version=18, dynamo=True)
    m = onnx.load(full)
    onnx.save(m, full, save_as_external_data=False)
    ref.log("export", f"{time.time() - t0:.1f}s", os.path.getsize(full), "bytes")
    with torch.no_grad():
        want = model(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()
    got = ort.InferenceSession(full, providers=["CPUExecutionProvider"]).run(
        None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    ref.log("ORT vs torch max |diff|", float(np.abs(got - want).max()))

    # Strip: every initializer whose bytes are a generated tensor, as stored or transposed.
    sd = model.state_dict()
    by_sha = {}
    for e in entries:
        if "sha256" not in e:
            continue
        w = sd[e["name"]].numpy().astype("<f4")
        by_sha[hashlib.sha256(w.tobytes()).hexdigest()] = e["name"]
        if w.ndim == 2:
            by_sha[hashlib.sha256(np.ascontiguousarray(w.T).tobytes()).hexdigest()] = e["name"] + ":T"
    found = set()
    for t in m.graph.initializer:
        if t.data_type != onnx.TensorProto.FLOAT or not t.raw_data:
            continue
        name = by_sha.get(hashlib.sha256(t.raw_data).hexdigest())
        if name:
            t.raw_data = b""
            t.doc_string = TAG + name
            found.add(name.replace(":T", ""))
    for n in m.graph.node:
        n.doc_string = ""
        del n.metadata_props[:]
    missing = sorted(e["name"] for e in entries if "sha256" in e and e["name"] not in found)
    ref.log("stripped", len(found), "tensors; not in the export:", missing)
    from google.protobuf import text_format

    skeleton = os.path.join(d, "model-skeleton.onnx.txtpb")  # protobuf text: the graph, no weights
    with open(skeleton, "w") as f:
        f.write(text_format.MessageToString(m))
    ref.log("skeleton", os.path.getsize(skeleton), "bytes")
    os.remove(full)


if __name__ == "__main__":
    main()
