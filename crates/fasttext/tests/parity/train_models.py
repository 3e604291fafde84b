"""Trains tiny supervised fastText models of every kind the Rust reader must agree on.

Usage: python train_models.py OUT_DIR TWO_LABELS.txt MANY_LABELS.txt TEXTS.txt
TEXTS.txt: the texts the models will be tested on, one a line. Prints {"made": [model files written to OUT_DIR], "skipped": [...]} as JSON. Uses
fastText's Python package (fasttext-numpy2-wheel 0.9.2), which writes the format the C++
0.9.2 reads.
"""

import json
import os
import sys

import fasttext
import numpy as np

out, two, many, texts = sys.argv[1:5]
made, skipped = [], []


def finite(m, sample):
    """The model computes finite hidden vectors (sentence vectors) on `sample`."""
    try:
        for line in sample:
            if not np.isfinite(m.get_sentence_vector(line)).all():
                return False
    except RuntimeError:
        return False
    return True


with open(texts, encoding="utf-8") as f:
    SAMPLE = [line.rstrip("\n") for line in f]


def make(names, train, quantize=None):
    """Trains (and quantizes) one model, saving it under names[0] (and names[1]).

    This wheel now and then ends a tiny training with "Encountered NaN", or leaves NaN
    weights in a model or its quantized copy: such tries are repeated with other seeds.
    One training thread makes each seed's result reproducible; with two (hogwild), a CI
    run on a loaded machine once got NaN from all 20 seeds of three models. A model that
    computes NaN must not reach the C++, whose predict then throws an exception nobody
    catches.
    """
    for seed in range(1, 21):
        try:
            m = fasttext.train_supervised(**{**train, "seed": seed, "thread": 1, "verbose": 0})
        except RuntimeError:
            continue
        weights = [m.get_input_matrix(), m.get_output_matrix()]
        if not (all(np.isfinite(w).all() for w in weights) and finite(m, SAMPLE)):
            continue
        if quantize is not None:
            m.save_model(os.path.join(out, names[0]))
            try:
                m.quantize(**quantize)
            except RuntimeError:
                continue
            if not finite(m, SAMPLE):
                continue
            m.save_model(os.path.join(out, names[1]))
        else:
            m.save_model(os.path.join(out, names[0]))
        made.extend(names)
        return
    skipped.extend(names)


small = dict(dim=10, epoch=5, lr=0.5, minn=2, maxn=4, bucket=20000)

# Every loss with word bigrams, dense, then quantized with norms and a cutoff (so the
# dictionary is pruned: pruneidx) and nsubq 5.
for loss in ["softmax", "hs", "ova", "ns"]:
    make(
        [f"{loss}-w2.bin", f"{loss}-w2-q.ftz"],
        dict(input=two, loss=loss, wordNgrams=2, **small),
        dict(input=two, qnorm=True, cutoff=1000, retrain=False),
    )

# Odd dim (the last sub-quantizer has one value), no norm quantization, no cutoff (a
# quantized input without pruneidx), word trigrams, other n-gram lengths.
make(
    ["softmax-dim9-w3.bin", "softmax-dim9-w3-q.ftz"],
    dict(input=two, loss="softmax", dim=9, epoch=5, lr=0.5, minn=3, maxn=5, bucket=20000, wordNgrams=3),
    dict(input=two, qnorm=False, retrain=False),
)

# lid.176's shape (dim 16: eight pairs) without and with norms.
for loss, qnorm in [("ova", False), ("hs", True)]:
    tag = "qn" if qnorm else "q"
    make(
        [f"{loss}-dim16.bin", f"{loss}-dim16-{tag}.ftz"],
        dict(input=two, loss=loss, dim=16, epoch=5, minn=2, maxn=4, bucket=20000),
        dict(input=two, qnorm=qnorm, cutoff=1500, retrain=False),
    )

# Words only: maxn 0 and wordNgrams 1 make fastText set bucket to 0.
make(["softmax-words-only.bin"], dict(input=two, loss="softmax", dim=8, maxn=0, epoch=5))

# 300 labels: quantized output matrix too (needs 256 rows).
for loss in ["softmax", "hs"]:
    make(
        [f"{loss}-many.bin", f"{loss}-many-qout.ftz"],
        dict(input=many, loss=loss, wordNgrams=2, **small),
        dict(input=many, qnorm=True, qout=True, cutoff=2000, retrain=False),
    )

# Word vectors: not a classifier, to be refused.
fasttext.train_unsupervised(input=two, model="cbow", dim=8, epoch=1, minCount=1, thread=2, verbose=0).save_model(
    os.path.join(out, "cbow.bin")
)
made.append("cbow.bin")

print(json.dumps({"made": made, "skipped": skipped}))
