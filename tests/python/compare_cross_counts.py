"""Compares the co-occurrence counts of two builds (scripts/arm-check.sh: x86-64 native against
aarch64 under qemu) on the same inputs.

usage: compare_cross_counts.py NATIVE_DIR OTHER_DIR --thresholds T... --delta D

Both n_batches_{N} results folders must hold cooc outputs for each threshold t and t + D. For
each t, the count matrices C (feature_acts_cooc_total) must be equal, or differ only where
activations lie within D of the threshold: a latent's activation on a token may land on either
side of t in the two builds only if it is within D of t (floating-point sums in another order
differ far less than D = 1e-5), and then the build where it is active has it in (t, t + D]. So
with near(k) = Σ over the two builds of (C_t[k,k] − C_{t+D}[k,k]) (tokens where latent k is in
(t, t + D]), every difference must satisfy |ΔC[i,j]| ≤ near(i) + near(j) (|ΔC[k,k]| ≤ near(k)),
and each build's C_{t+D} diagonal must not exceed the other's C_t diagonal. Equal counts also
require byte-equal Jaccard and per-latent files. A negative control then changes one count of
a latent with no near-threshold token and checks that the comparison rejects it.
Exits 1 on a difference that near-threshold activations do not explain.
"""

import argparse
import json
import pathlib
import sys

import numpy as np


def tags(folder: pathlib.Path) -> dict:
    """Threshold value → file tag, from the folder's run.json."""
    run = json.loads((folder / "run.json").read_text())
    return {float(t["threshold"]): t["tag"] for t in run["thresholds"]}, run["tokens_counted"]


def load(folder: pathlib.Path, kind: str, tag: str) -> np.ndarray:
    return np.load(folder / f"feature_acts_cooc_{kind}_threshold_{tag}.npz")["arr_0"]


def tag_of(table: dict, t: float, folder) -> str:
    for value, tag in table.items():
        if abs(value - t) <= 1e-12 * max(1.0, abs(t)):
            return tag
    sys.exit(f"{folder}: no cooc outputs for threshold {t} (run.json has {sorted(table)})")


def unexplained(c_a, c_b, up_a, up_b) -> list:
    """The entries where |C_a − C_b| exceeds what near-threshold tokens can explain."""
    near = up_a + up_b
    bound = near[:, None] + near[None, :]
    np.fill_diagonal(bound, near)
    diff = np.abs(c_a.astype(np.int64) - c_b.astype(np.int64))
    return [(int(i), int(j)) for i, j in zip(*np.nonzero(diff > bound)) if i <= j]


def compare(dirs, tables, t: float, delta: float) -> bool:
    (a, b), (ta, tb) = dirs, tables
    tag, tag_up = tag_of(ta, t, a), tag_of(ta, t + delta, a)
    if (tag, tag_up) != (tag_of(tb, t, b), tag_of(tb, t + delta, b)):
        print(f"t={t}: the two runs tag their files differently")
        return False
    c_a, c_b = load(a, "total", tag), load(b, "total", tag)
    up_a = np.diag(c_a).astype(np.int64) - np.diag(load(a, "total", tag_up)).astype(np.int64)
    up_b = np.diag(c_b).astype(np.int64) - np.diag(load(b, "total", tag_up)).astype(np.int64)
    assert (up_a >= 0).all() and (up_b >= 0).all(), "a higher threshold fired more"
    near_tokens = int(up_a.sum() + up_b.sum())
    if np.array_equal(c_a, c_b):
        for kind in ("jaccard", "activations"):
            fa = a / f"feature_acts_cooc_{kind}_threshold_{tag}.npz"
            fb = b / f"feature_acts_cooc_{kind}_threshold_{tag}.npz"
            if not np.array_equal(np.load(fa)["arr_0"], np.load(fb)["arr_0"]):
                print(f"t={t}: counts equal but {fa.name} differs")
                return False
        print(f"t={t}: counts equal ({c_a.shape[0]}² entries, {int(np.trace(c_a))} activations "
              f"counted; {near_tokens} latent-token activations within {delta} above t in the two runs)")
        return True
    ok = True
    for name, c_up, c_other in (("native", load(a, "total", tag_up), c_b),
                                ("other", load(b, "total", tag_up), c_a)):
        over = np.nonzero(np.diag(c_up) > np.diag(c_other))[0]
        if len(over):
            print(f"t={t}: {name}'s counts at t+{delta} exceed the other build's at t for latents "
                  f"{over[:10].tolist()}: the builds' activations differ by more than {delta}")
            ok = False
    bad = unexplained(c_a, c_b, up_a, up_b)
    differing = np.argwhere(np.triu(c_a != c_b))
    latents = sorted({int(k) for pair in differing for k in pair})
    print(f"t={t}: {len(differing)} counts differ, over latents {latents[:20]}"
          f"{' …' if len(latents) > 20 else ''}; near-threshold tokens of those latents "
          f"(native + other): {[int(up_a[k] + up_b[k]) for k in latents[:20]]}")
    for i, j in bad[:10]:
        print(f"  C[{i},{j}]: native {c_a[i, j]:.0f}, other {c_b[i, j]:.0f}, but only "
              f"{int(up_a[i] + up_b[i])} + {int(up_a[j] + up_b[j])} near-threshold tokens")
    if bad:
        print(f"t={t}: {len(bad)} differing counts are NOT explained by activations within {delta}")
        return False
    print(f"t={t}: every differing count is explained by activations within {delta} of t")
    return ok


def negative_control(a: pathlib.Path, tag: str, tag_up: str) -> bool:
    """A count changed at a latent with no near-threshold token must be rejected."""
    c = load(a, "total", tag)
    up = np.diag(c).astype(np.int64) - np.diag(load(a, "total", tag_up)).astype(np.int64)
    quiet = np.nonzero((up == 0) & (np.diag(c) > 0))[0]
    if len(quiet) == 0:
        print("negative control: no latent without near-threshold tokens; skipped")
        return True
    k = int(quiet[0])
    changed = c.copy()
    changed[k, k] += 1
    rejected = unexplained(c, changed, up, up) == [(k, k)]
    print(f"negative control: one extra count at latent {k} is "
          f"{'rejected' if rejected else 'NOT rejected'}")
    return rejected


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("native", type=pathlib.Path)
    p.add_argument("other", type=pathlib.Path)
    p.add_argument("--thresholds", type=float, nargs="+", required=True)
    p.add_argument("--delta", type=float, required=True)
    args = p.parse_args()
    (ta, tokens_a), (tb, tokens_b) = tags(args.native), tags(args.other)
    if tokens_a != tokens_b:
        print(f"tokens counted differ: native {tokens_a}, other {tokens_b}")
        return 1
    ok = all([compare((args.native, args.other), (ta, tb), t, args.delta) for t in args.thresholds])
    t = args.thresholds[-1]
    ok = negative_control(args.native, tag_of(ta, t, args.native),
                          tag_of(ta, t + args.delta, args.native)) and ok
    print("cross-build counts:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
