"""The data layer: dataset URIs → ``Dataset`` (float32 (N, C, H, W) in [0, 1], int64 labels 0..C-1, train/val/test).

Dataset URIs (``load_dataset``)
-------------------------------
``builtin:NAME``
    ``fashion-mnist`` (Debian package dataset-fashion-mnist, read from /usr/share/datasets/fashion-mnist or
    ``$TRAUTOML_FASHION_MNIST_DIR``; 60,000 train + 10,000 test, 1×28×28), ``digits`` (scikit-learn's 1,797 8×8
    digits scaled to [0, 1]), ``shapes`` (5,600 generated 1×28×28 images of 8 shapes at random position, size and
    rotation on a dark noisy background), ``textures`` (3,000 generated 3×32×32 colour images of 6 periodic patterns
    with random colours).
``npz:PATH`` (or a bare ``PATH.npz``)
    Arrays ``x_train``/``y_train`` (required) and ``x_val``/``y_val``, ``x_test``/``y_test`` (optional), plus
    optional ``num_classes``, ``class_names``, ``family`` and ``layout``. Images: uint8 0..255 (other integers must
    lie in 0..255; bool is 0/1) or float already in [0, 1]. Layout: 3-D = (N, H, W) grey; 4-D = (N, C, H, W) when
    axis 1 has 1 or 3 entries, else (N, H, W, C) when the last axis does — ``layout`` ("NCHW", "NHWC", "NHW")
    overrides the guess. C must be 1 or 3. Labels: 1-D integers (integral floats accepted); ``num_classes``
    defaults to the largest label + 1. Pickled (object) arrays are refused.
``folder:PATH`` (or a bare directory)
    One sub-folder per class of PNG/JPEG/BMP images; classes are the sub-folder names, sorted. If PATH holds
    ``train/`` and ``test/`` (and optionally ``val/``) each with class folders, those are the splits. If any image is
    colour, all are read as RGB (grey images replicated); otherwise as grey. Images whose size differs from the
    most common size (ties: the largest) are resized to it, bilinear.
``torchvision:NAME?root=PATH``
    MNIST, FashionMNIST, KMNIST, CIFAR10, CIFAR100, SVHN, STL10 already on disk in torchvision's layout under
    PATH; never downloads (a missing file is an error naming it). See ``sources.read_torchvision``.

Splits: a source's own splits are kept. Without a test split, 20 % of train is carved off as test; without a val
split, 10 % of the remaining train becomes val. Both carvings are stratified and seeded.

Derivation parameters (query string; any scheme), applied in this order:

==============  =====================================================================================================
``classes=0,3`` keep these classes, relabelled 0..k-1 in the order given
``max_train=N`` cap the train split at N images (stratified)
``max_eval=N``  cap the val and the test split at N images each (stratified)
``subsample=R`` keep a stratified fraction R in (0, 1] of train and of val (test stays whole, so errors compare)
``resize=N``    resize to N×N (bilinear, antialiased when shrinking)
``rotate=1``    rotate each image by a uniform random angle in [0, 360) about its centre, black corners
                (as MNIST-rotated)
``background=`` ``noise``: dark pixels (channel mean < 0.1) become uniform noise (MNIST-background-random);
                ``images``: they show random patches of natural-looking 1/f-noise images (MNIST-background-images)
``invert=1``    x → 1 − x (last, so backgrounds are inverted too)
``seed=S``      seeds every random step above and the split carvings (default 0)
==============  =====================================================================================================

Each step draws from its own seeded stream: ``?rotate=1`` and ``?rotate=1&invert=1`` hold the same images at the
same angles, and every variant of one source with one seed shares that source's split. Unknown parameters, bad
values, and bad input of any kind raise ``DatasetError`` naming the problem.

Names: ``Dataset.name`` is the source's name followed by the derivation parameters sorted by key, e.g.
``fashion-mnist?rotate=1&subsample=0.5``; ``family`` is the source's family (``fashion-mnist``, ``digits``,
``shapes``, ``textures``, an npz file's ``family`` entry or stem, a folder's name, or the torchvision dataset);
``uri`` is the URI as given.

Streams (``load_stream``): see ``trautoml.data.streams``. Meta-features: ``statistical_metafeatures``.

Plug-ins: the schemes, builtin datasets and named streams are the tables of ``trautoml.registry``
(``DATASET_SOURCES`` of ``DatasetSource``s, ``BUILTIN_DATASETS``, ``STREAM_SOURCES``, ``STREAMS``), filled with the
built-ins when this package is imported; ``register()`` or the entry-point groups ``trautoml.dataset_sources``,
``trautoml.builtin_datasets``, ``trautoml.stream_sources`` and ``trautoml.streams`` add more.
"""
from .dataset import Dataset, DatasetError
from .loaders import DatasetSource, load_dataset
from .metafeatures import METAFEATURE_NAMES, statistical_metafeatures
from .streams import StreamItem, load_stream

__all__ = ["Dataset", "DatasetError", "DatasetSource", "load_dataset", "load_stream", "StreamItem",
           "statistical_metafeatures", "METAFEATURE_NAMES"]
