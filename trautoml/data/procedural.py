"""Procedurally generated image families (no files needed): ``builtin:shapes`` and ``builtin:textures``, plus the
pool of natural-looking grey images that ``background=images`` crops patches from.

Everything is drawn with numpy from a seeded generator, vectorised over the batch: thousands of images in well
under a second, identical bytes in every process.
"""
from __future__ import annotations

import numpy as np

SHAPE_CLASSES = ("circle", "square", "triangle", "cross", "ring", "star", "semicircle", "bar")
TEXTURE_CLASSES = ("stripes-0", "stripes-45", "stripes-90", "stripes-135", "checker", "rings")


def shapes(n_per_class: int = 700, size: int = 28, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Grey (N, 1, size, size) uint8 images of filled geometric shapes (see ``SHAPE_CLASSES``), one class each.

    Each image draws its shape at a random position, size (30–45 % of the image) and rotation (0–360°; the classes
    are rotation-distinct, so a square and a diamond are one class), with a random brightness (0.55–1.0) on a
    dark background, antialiased edges and Gaussian noise (σ = 0.04), clipped to [0, 1].
    """
    rng = np.random.default_rng([seed, 0x5A])
    k = len(SHAPE_CLASSES)
    y = np.repeat(np.arange(k), n_per_class)
    n = len(y)
    r = rng.uniform(0.30, 0.45, n) * size / 2 * 1.6      # shape radius in pixels
    cx = rng.uniform(-1, 1, n) * (size / 2 - r * 0.9 - 1) + (size - 1) / 2
    cy = rng.uniform(-1, 1, n) * (size / 2 - r * 0.9 - 1) + (size - 1) / 2
    theta = rng.uniform(0, 2 * np.pi, n)
    yy, xx = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32), indexing="ij")
    dx = xx[None] - cx[:, None, None]
    dy = yy[None] - cy[:, None, None]
    c, s = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    u = (c * dx + s * dy).astype(np.float32)               # shape-local coordinates, pixels
    v = (-s * dx + c * dy).astype(np.float32)
    rr = r[:, None, None].astype(np.float32)
    sdf = np.empty_like(u)                                 # signed distance (pixels): < 0 inside
    for label, name in enumerate(SHAPE_CLASSES):
        m = y == label
        sdf[m] = _shape_sdf(name, u[m], v[m], rr[m])
    img = np.clip(0.5 - sdf, 0.0, 1.0)                     # one-pixel antialiased edge
    img *= rng.uniform(0.55, 1.0, n)[:, None, None].astype(np.float32)
    img += rng.normal(0, 0.04, img.shape).astype(np.float32)
    img = np.clip(img, 0.0, 1.0)
    order = rng.permutation(n)  # classes interleaved, as in a real dataset's file
    return _to_uint8(img[order, None]), y[order].astype(np.int64)


def _box(u, v, a, b):
    return np.maximum(np.abs(u) - a, np.abs(v) - b)


def _shape_sdf(name: str, u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    rad = np.sqrt(u * u + v * v)
    if name == "circle":
        return rad - r
    if name == "square":
        return _box(u, v, r * 0.8, r * 0.8)
    if name == "triangle":                                 # equilateral, circumradius r
        e0, e1, e2 = (np.cos(a) * u + np.sin(a) * v - r * 0.5 for a in np.pi / 2 + np.arange(3) * 2 * np.pi / 3)
        return np.maximum(np.maximum(e0, e1), e2)
    if name == "cross":
        return np.minimum(_box(u, v, r, r * 0.28), _box(u, v, r * 0.28, r))
    if name == "ring":
        return np.abs(rad - r * 0.75) - r * 0.25
    if name == "star":                                     # five points; radial profile, not Euclidean
        phi = np.arctan2(v, u)
        prof = r * (0.62 + 0.38 * np.cos(5 * phi))
        return (rad - prof) * 0.8
    if name == "semicircle":
        return np.maximum(rad - r, -v)
    if name == "bar":
        return _box(u, v, r, r * 0.3)
    raise ValueError(name)


def textures(n_per_class: int = 500, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Colour (N, 3, size, size) uint8 images of periodic patterns (see ``TEXTURE_CLASSES``).

    Classes differ by pattern only: stripes at 0/45/90/135° (± 8° jitter), a checkerboard (random rotation) and
    concentric rings (random centre). Each image has a random frequency (2.5–5 cycles per image), phase and two
    random colours, plus Gaussian noise (σ = 0.05), so colour carries no label information.
    """
    rng = np.random.default_rng([seed, 0x7E])
    k = len(TEXTURE_CLASSES)
    y = np.repeat(np.arange(k), n_per_class)
    n = len(y)
    yy, xx = np.meshgrid(np.linspace(-0.5, 0.5, size, dtype=np.float32),
                         np.linspace(-0.5, 0.5, size, dtype=np.float32), indexing="ij")
    freq = (2 * np.pi * rng.uniform(2.5, 5.0, n)).astype(np.float32)[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, n).astype(np.float32)[:, None, None]
    base_angle = np.array([0, 45, 90, 135, 0, 0], dtype=np.float32)[y]
    jitter = np.where(y < 4, rng.uniform(-8, 8, n), rng.uniform(0, 90, n)).astype(np.float32)
    a = np.deg2rad(base_angle + jitter)[:, None, None]
    u = np.cos(a) * xx[None] + np.sin(a) * yy[None]
    v = -np.sin(a) * xx[None] + np.cos(a) * yy[None]
    pattern = np.sin(freq * u + phase)                      # stripes
    checker = y == 4
    pattern[checker] = np.sin(freq[checker] * u[checker] + phase[checker]) * np.sin(freq[checker] * v[checker])
    rings = y == 5
    centre = rng.uniform(-0.3, 0.3, (n, 2)).astype(np.float32)
    rad = np.sqrt((xx[None] - centre[:, 0, None, None]) ** 2 + (yy[None] - centre[:, 1, None, None]) ** 2)
    pattern[rings] = np.sin(freq[rings] * rad[rings] * 1.5 + phase[rings])
    t = (pattern * 0.5 + 0.5)[:, None]                      # (N, 1, H, W) in [0, 1]
    c0 = rng.uniform(0, 1, (n, 3, 1, 1)).astype(np.float32)
    c1 = rng.uniform(0, 1, (n, 3, 1, 1)).astype(np.float32)
    low = np.abs(c1 - c0).sum(axis=1, keepdims=True) < 0.6  # keep the two colours apart
    c1 = np.where(low, 1.0 - c0, c1)
    img = c0 + (c1 - c0) * t
    img += rng.normal(0, 0.05, img.shape).astype(np.float32)
    order = rng.permutation(n)  # classes interleaved, as in a real dataset's file
    return _to_uint8(np.clip(img[order], 0.0, 1.0)), y[order].astype(np.int64)


def natural_pool(count: int = 48, size: int = 64, seed: int = 1234) -> np.ndarray:
    """(count, size, size) float32 grey images with a natural image's 1/f amplitude spectrum, in [0, 1].

    ``background=images`` crops random patches from this pool (the MNIST-background-images recipe used patches of
    photographs; 1/f noise has their second-order statistics and needs no files).
    """
    rng = np.random.default_rng([seed, 0xBA])
    f = np.fft.fftfreq(size)
    fr = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    fr[0, 0] = 1.0
    amp = 1.0 / fr ** rng.uniform(0.9, 1.3, (count, 1, 1))
    amp[:, 0, 0] = 0.0
    spectrum = amp * np.exp(2j * np.pi * rng.random((count, size, size)))
    img = np.fft.ifft2(spectrum).real
    lo = img.min(axis=(1, 2), keepdims=True)
    hi = img.max(axis=(1, 2), keepdims=True)
    return ((img - lo) / np.maximum(hi - lo, 1e-9)).astype(np.float32)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.round(x * 255.0).astype(np.uint8)
