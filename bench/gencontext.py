#!/usr/bin/env python3
"""Deterministic benchmark context: DIR gets 10,000 small files (0.2-8 KB) in 100
directories plus 16 files of 10 MB (about 200 MB in all) and a Dockerfile-free tree.
Contents come from a seeded PRNG, so every run (and every machine) gets the same bytes.
Usage: gencontext.py DIR"""
import os
import random
import sys

root = sys.argv[1]
rng = random.Random(20261127)
os.makedirs(root, exist_ok=True)
for d in range(100):
    dd = os.path.join(root, f"d{d:03}")
    os.makedirs(dd, exist_ok=True)
    for f in range(100):
        size = rng.randint(200, 8192)
        with open(os.path.join(dd, f"f{f:03}.txt"), "wb") as fh:
            fh.write(rng.randbytes(size))
big = os.path.join(root, "big")
os.makedirs(big, exist_ok=True)
for i in range(16):
    with open(os.path.join(big, f"blob{i:02}.bin"), "wb") as fh:
        fh.write(rng.randbytes(10 * 1024 * 1024))
