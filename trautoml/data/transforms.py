"""Array operations the loaders share: stratified selection and splits, and the image transforms behind the
URI's derivation parameters (rotate, resize, background, invert).

All image arrays here are float32 (N, C, H, W) in [0, 1] unless said otherwise. Every function is vectorised over
the batch (no per-image Python loop), so deriving a variant of 60,000 images takes about a second.
"""
from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------------------------------------- selection


def stratified_take(y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``k`` samples of ``y`` drawn so each class keeps its share (largest-remainder rounding).

    Every class present keeps at least one sample when ``k`` is at least the number of classes, so a small
    subsample never silently drops a class. The indices come back sorted (the original order is kept).
    """
    n = len(y)
    k = int(min(max(k, 0), n))
    if k == n:
        return np.arange(n)
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    quota = counts * (k / n)
    take = np.floor(quota).astype(np.int64)
    if k >= len(classes):
        take = np.maximum(take, 1)
    # hand out (or claw back) the remainder by largest fractional part; ties by class order
    left = k - int(take.sum())
    if left > 0:
        order = np.argsort(-(quota - np.floor(quota)), kind="stable")
        for c in order:
            if left == 0:
                break
            if take[c] < counts[c]:
                take[c] += 1
                left -= 1
    while left < 0:  # the one-per-class floor overshot: take back from the largest classes
        take[np.argmax(take)] -= 1
        left += 1
    chosen = []
    for c in range(len(classes)):
        members = np.flatnonzero(inverse == c)
        chosen.append(rng.permutation(members)[: take[c]])
    return np.sort(np.concatenate(chosen)) if chosen else np.arange(0)


def stratified_split(y: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(kept, carved) index arrays: ``carved`` holds ``round(fraction · n)`` samples (at least 1), stratified."""
    n = len(y)
    k = int(round(fraction * n))
    k = min(max(k, 1), max(n - 1, 0))
    carved = stratified_take(y, k, rng)
    mask = np.ones(n, dtype=bool)
    mask[carved] = False
    return np.flatnonzero(mask), carved


# ---------------------------------------------------------------------------------------------- resampling


def _resample_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of a triangle (bilinear) filter widened by the scale when shrinking (antialiased,
    as PIL's BILINEAR resize does), pixel centres aligned."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale - 0.5
    src = np.arange(n_in)
    w = np.maximum(0.0, 1.0 - np.abs(src[None, :] - centres[:, None]) / support)
    w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
    return w.astype(np.float32)


def resize(x: np.ndarray, height: int, width: int | None = None) -> np.ndarray:
    """Bilinear (antialiased when shrinking) resize of a (N, C, H, W) batch to (height, width)."""
    width = height if width is None else width
    if x.shape[2:] == (height, width):
        return x
    rh = _resample_matrix(x.shape[2], height)
    rw = _resample_matrix(x.shape[3], width)
    out = np.matmul(np.matmul(rh, x), rw.T)
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def rotate(x: np.ndarray, angles_deg: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Rotate each image by its own angle (degrees, clockwise as displayed, row 0 at the top) about its centre;
    bilinear, zero fill
    (as MNIST-rotated: the corners that come from outside the image are black)."""
    n, c, h, w = x.shape
    out = np.empty_like(x)
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float32) - (h - 1) / 2,
                         np.arange(w, dtype=np.float32) - (w - 1) / 2, indexing="ij")
    # zero border (1 before, 2 after) so clipped out-of-image coordinates read zeros: no masks needed
    padded = np.pad(x, ((0, 0), (0, 0), (1, 2), (1, 2)))
    ph, pw = h + 3, w + 3
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        t = np.deg2rad(np.asarray(angles_deg[s:e], dtype=np.float32))[:, None, None]
        cos, sin = np.cos(t), np.sin(t)
        # inverse mapping: output pixel → source pixel, in padded coordinates
        sx = np.clip(cos * xx + sin * yy + (w - 1) / 2, -1, w) + 1
        sy = np.clip(-sin * xx + cos * yy + (h - 1) / 2, -1, h) + 1
        x0 = np.floor(sx)
        y0 = np.floor(sy)
        fx, fy = sx - x0, sy - y0
        base = (np.arange(e - s)[:, None, None] * ph + y0.astype(np.int64)) * pw + x0.astype(np.int64)
        w00, w01, w10, w11 = (1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx
        for ch in range(c):
            src = padded[s:e, ch].ravel()
            out[s:e, ch] = (src[base] * w00 + src[base + 1] * w01 + src[base + pw] * w10
                            + src[base + pw + 1] * w11)
    return out


# ---------------------------------------------------------------------------------------------- backgrounds

#: pixels whose (channel-mean) intensity is below this count as background for ``background=noise|images``
BACKGROUND_THRESHOLD = 0.1


def replace_background(x: np.ndarray, backgrounds: np.ndarray, threshold: float = BACKGROUND_THRESHOLD) -> np.ndarray:
    """Where an image is dark (channel mean < threshold), show ``backgrounds`` instead (as MNIST-background-random
    and -images). The foreground is kept as it is. Shapes must match (N, C, H, W)."""
    mask = x.mean(axis=1, keepdims=True) < threshold
    return np.where(mask, backgrounds, x).astype(np.float32, copy=False)


def random_patches(pool: np.ndarray, n: int, height: int, width: int, channels: int,
                   rng: np.random.Generator) -> np.ndarray:
    """``n`` random (height, width) crops from a (P, S, S) grey pool (resized when the pool is too small),
    replicated over ``channels``; each crop also randomly flipped / transposed."""
    p, s, _ = pool.shape
    if s < max(height, width):
        pool = resize(pool[:, None], max(height, width))[:, 0]
        s = pool.shape[1]
    which = rng.integers(0, p, size=n)
    oy = rng.integers(0, s - height + 1, size=n)
    ox = rng.integers(0, s - width + 1, size=n)
    rows = oy[:, None] + np.arange(height)[None, :]
    cols = ox[:, None] + np.arange(width)[None, :]
    patches = pool[which[:, None, None], rows[:, :, None], cols[:, None, :]]
    flip = rng.random(n) < 0.5
    patches[flip] = patches[flip, :, ::-1]
    if height == width:
        tr = rng.random(n) < 0.5
        patches[tr] = np.swapaxes(patches[tr], 1, 2)
    return np.repeat(patches[:, None], channels, axis=1).astype(np.float32, copy=False)
