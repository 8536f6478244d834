"""Search from a predefined model (paper 002 §1 ii, §3.3): reuse a backbone's bottom layers, search only the head.

The paper reuses GoogLeNet's architecture and weights up to inception (4e) and searches a chain for the higher
layers. Here the user names the backbone, where it is cut, and whether the reused part is frozen or fine-tuned;
the backend searches heads (layers on top of the cut, plus training hyper-parameters).

Model space ``predefined`` (entry point in pyproject.toml), arch::

    {"backbone": {"kind": "torchvision", "name": "resnet18", "weights": "/path/resnet18.pth", "cut": "layer2"}
               | {"kind": "file", "path": "/path/state_dict.pt", "spec": {ModelSpec dict}, "cut": 6,
                  "input_shape": [C, H, W], "num_classes": K}
               | {"kind": "mlflow", "model_uri": "runs:/<run>/model", "tracking_uri": "sqlite:///...", "cut": ...},
     "freeze": true | false,
     "head": {a ``cnn`` arch: "layers": [conv/pool/fc ...], "activation", "norm", "dropout"},
     "resize": null | side,            # optional: bilinear resize of the input to side x side first
     "normalize": null | "imagenet"}   # optional: default "imagenet" for torchvision backbones, else null

- Nothing is downloaded. A torchvision backbone is constructed with ``weights=None`` and, when ``weights`` names a
  file, loaded from it with ``torch.load(..., weights_only=True)`` (a checkpoint dict holding ``state_dict`` or
  ``model`` is unwrapped, a DataParallel ``module.`` prefix stripped); no ``weights`` means a randomly initialised
  backbone (architecture only). A ``file`` backbone is built from its ModelSpec (any registered model space) for
  the ``input_shape`` / ``num_classes`` it was trained with (default: the current dataset's shape, 2 classes --
  only the layers kept need to match) and loaded from the state dict. An ``mlflow`` backbone is a module logged
  with ``mlflow.pytorch``, read from the store at ``tracking_uri`` (default: MLflow's current one). trautoml
  logs its models in MLflow's traced ``pt2`` format, whose layers cannot be cut; such a model is rebuilt from its
  spec (the backbone's ``spec``, else the ``model_spec.json`` its run holds, as trautoml logs it) and loaded with
  the traced model's weights, which keep the original parameter names. A pickled module is cut as it is.
- ``cut``: a child name (inclusive), dotted to cut inside a child ("layer3", "features.10", "inception4e"), or an
  int: the number of leading top-level children kept. The kept children run in registration order, which is the
  forward pass of chain models (ResNet, VGG, AlexNet, GoogLeNet, MobileNet, a ``cnn`` Sequential, ...).
  Only the kept layers' weights are loaded; every one of them must be in the file with the right shape.
- Input: channels are duplicated (grey into a colour backbone), averaged (colour into a grey one) or, for other
  mismatches, mapped by a trainable 1x1 convolution; ``normalize="imagenet"`` standardises with ImageNet's
  mean/std (what torchvision weights expect; images here are in [0, 1]).
- ``freeze``: the backbone's parameters get ``requires_grad=False`` (the training loop optimises only the
  parameters that require gradients), its BatchNorm layers become `FrozenBatchNorm` (fixed statistics, which
  neither train mode nor the training loop's BatchNorm re-estimation touch) and it stays in eval mode while the
  model trains: its weights and statistics are exactly those loaded.
- The head is built by ``trautoml.models.cnn.build_cnn`` on the backbone's output shape (a ``cnn`` arch: its
  conv/pool layers, then flatten -- adaptive-pooled above MAX_FLAT_FEATURES -- fc layers and the classifier).

`PredefinedSearch` samples heads (`sample_head`: 0-2 convs, optional pooling, 0-2 fc layers, activation, norm,
dropout) and training hyper-parameters (`trautoml.models.cnn.sample_train_params` with ``init_scale`` fixed to
1: the training loop's init scaling would multiply the reused weights too) and hands the scheduling to the
random-search or Hyperband backend through their ``space=`` sampler hook, so both keep their own budget rules.
"""
from __future__ import annotations

import copy
import dataclasses
import random
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trautoml.models.cnn import (ACTIVATIONS, DROPOUTS, NORMS, build_cnn, sample_train_params, validate_cnn_arch)
from trautoml.models.spec import ModelSpec, build_module
from trautoml.models.transfer import InputAdapter
from trautoml.registry import BACKENDS
from trautoml.tracking import mlflow_store

from .base import SearchBackend, SearchResult, SearchTask

SPACE = "predefined"
KINDS = ("torchvision", "file", "mlflow")
ARCH_FIELDS = {"backbone", "freeze", "head", "resize", "normalize"}
#: "use the builder's default" for ``normalize`` (None is a value: no normalisation).
BUILDER_DEFAULT = object()

# Head sampling ranges (`sample_head`).
HEAD_FILTERS = (32, 64, 128)
HEAD_KERNELS = (1, 3)
HEAD_UNITS = (64, 128, 256)


# ------------------------------------------------------------------------------------------------- validation

def validate_backbone(backbone: Any) -> dict:
    """Check a backbone description; raise ValueError / FileNotFoundError naming the problem."""
    if not isinstance(backbone, dict):
        raise ValueError(f"backbone must be a dict, got {backbone!r}")
    kind = backbone.get("kind")
    if kind not in KINDS:
        raise ValueError(f"backbone.kind must be one of {KINDS}, got {kind!r}")
    cut = backbone.get("cut")
    if isinstance(cut, bool) or not ((isinstance(cut, str) and cut) or (isinstance(cut, int) and cut >= 1)):
        raise ValueError(f"backbone.cut must be a child name ('layer2', 'features.10') or a positive int, got {cut!r}")
    if kind == "torchvision":
        if not isinstance(backbone.get("name"), str):
            raise ValueError(f"backbone.name must name a torchvision model, got {backbone.get('name')!r}")
        weights = backbone.get("weights")
        if weights is not None and not Path(weights).is_file():
            raise FileNotFoundError(f"backbone weights file {weights!r} does not exist (nothing is downloaded: "
                                    "save the state dict locally and name it here)")
    elif kind == "file":
        path = backbone.get("path")
        if not isinstance(path, str) or not Path(path).is_file():
            raise FileNotFoundError(f"backbone state-dict file {path!r} does not exist")
        ModelSpec.from_dict(backbone.get("spec"))  # raises ValueError on a malformed spec
    else:
        if not isinstance(backbone.get("model_uri"), str):
            raise ValueError(f"backbone.model_uri must be an MLflow model URI, got {backbone.get('model_uri')!r}")
        if backbone.get("spec") is not None:
            ModelSpec.from_dict(backbone["spec"])
    return backbone


def validate_predefined_arch(arch: Any) -> None:
    """Raise ValueError (FileNotFoundError for a missing backbone file) naming the first bad field of a
    ``predefined`` arch: only ``ARCH_FIELDS``, a valid ``backbone`` (see `validate_backbone`), a boolean ``freeze``,
    a ``cnn`` ``head``, ``resize`` null or a positive int, ``normalize`` null or ``"imagenet"``."""
    if not isinstance(arch, dict):
        raise ValueError(f"a {SPACE} arch must be a dict, got {type(arch).__name__}")
    unknown = set(arch) - ARCH_FIELDS
    if unknown:
        raise ValueError(f"unknown {SPACE} arch field(s): {', '.join(sorted(unknown))}")
    validate_backbone(arch.get("backbone"))
    if not isinstance(arch.get("freeze"), bool):
        raise ValueError(f"freeze must be true or false, got {arch.get('freeze')!r}")
    validate_cnn_arch(arch.get("head"))
    resize = arch.get("resize")
    if resize is not None and (isinstance(resize, bool) or not isinstance(resize, int) or resize < 1):
        raise ValueError(f"resize must be null or a positive int, got {resize!r}")
    if arch.get("normalize") not in (None, "imagenet"):
        raise ValueError(f"normalize must be null or 'imagenet', got {arch.get('normalize')!r}")


# --------------------------------------------------------------------------------------------------- backbone

def _state_dict_from(path: str) -> dict[str, torch.Tensor]:
    obj = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: expected a state dict (parameter name -> tensor)")
    return {k[7:] if k.startswith("module.") else k: v for k, v in obj.items()}


def _mlflow_source_run(client, model_uri: str) -> str | None:
    """The run that logged ``model_uri`` (runs:/RUN/..., models:/m-ID, models:/NAME/VERSION), when known."""
    if model_uri.startswith("runs:/"):
        return model_uri[len("runs:/"):].split("/", 1)[0]
    if model_uri.startswith("models:/"):
        ref = model_uri[len("models:/"):].strip("/")
        if ref.startswith("m-") and "/" not in ref:
            return client.get_logged_model(ref).source_run_id
        name, _, version = ref.partition("/")
        if version.isdigit():
            return client.get_model_version(name, version).run_id
    return None


@lru_cache(maxsize=8)
def _mlflow_model(model_uri: str, tracking_uri: str | None) -> tuple[nn.Module, dict | None]:
    """The logged module and, when its run holds one, the ``model_spec.json`` trautoml logs beside it."""
    import json
    import tempfile

    import mlflow
    import mlflow.pytorch

    with mlflow_store(tracking_uri):
        module = mlflow.pytorch.load_model(mlflow.artifacts.download_artifacts(artifact_uri=model_uri),
                                           map_location="cpu")
        client = mlflow.MlflowClient()
        spec = None
        run_id = _mlflow_source_run(client, model_uri)
        if run_id is not None:
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    spec = json.loads(Path(client.download_artifacts(run_id, "model_spec.json", tmp)).read_text())
                except Exception:  # noqa: BLE001 - a run without a spec: the module must be cut as it is
                    spec = None
    return module, spec


def truncate(module: nn.Module, cut: str | int) -> nn.Sequential:
    """The leading children of ``module`` up to ``cut`` as a Sequential that keeps the children's names."""
    children = list(module.named_children())
    names = [n for n, _ in children]
    if isinstance(cut, int):
        if not 1 <= cut <= len(children):
            raise ValueError(f"cut={cut} but the backbone has {len(children)} top-level children: {names}")
        return nn.Sequential(OrderedDict(children[:cut]))
    head, _, rest = cut.partition(".")
    if head not in names:
        raise ValueError(f"cut {cut!r}: no child {head!r}; children are {names}")
    i = names.index(head)
    kept = OrderedDict(children[:i])
    kept[head] = truncate(children[i][1], rest) if rest else children[i][1]
    return nn.Sequential(kept)


def _build_original(spec: dict, backbone: dict, input_shape: tuple[int, int, int]) -> nn.Module:
    """The backbone's full module from its spec, for the shape and class count it was trained with."""
    shape = tuple(backbone.get("input_shape") or input_shape)
    return build_module(ModelSpec.from_dict(spec), shape, int(backbone.get("num_classes", 2)))


def load_trunk(backbone: dict, input_shape: tuple[int, int, int]) -> nn.Sequential:
    """The backbone cut at ``backbone['cut']``, with its (kept) weights loaded; no download ever happens."""
    validate_backbone(backbone)
    kind = backbone["kind"]
    state: dict[str, torch.Tensor] | None = None
    if kind == "torchvision":
        import torchvision

        try:
            full = torchvision.models.get_model(backbone["name"], weights=None)
        except ValueError as exc:
            raise ValueError(f"backbone.name {backbone['name']!r}: {exc}") from None
        if backbone.get("weights") is not None:
            state = _state_dict_from(backbone["weights"])
    elif kind == "file":
        full = _build_original(backbone["spec"], backbone, input_shape)
        state = _state_dict_from(backbone["path"])
    else:
        full, logged_spec = _mlflow_model(backbone["model_uri"], backbone.get("tracking_uri"))
        spec_d = backbone.get("spec") or (logged_spec if isinstance(full, torch.fx.GraphModule) else None)
        if isinstance(full, torch.fx.GraphModule) and spec_d is None:
            raise ValueError(f"{backbone['model_uri']} is a traced (pt2) model whose layers cannot be cut and its "
                             "run has no model_spec.json: give the backbone's 'spec'")
        if spec_d is not None:
            # A traced model keeps the original parameter names: rebuild the module from its spec, load them.
            state = {k: v.detach().clone() for k, v in full.state_dict().items()}
            full = _build_original(spec_d, backbone, input_shape)
        else:
            full = copy.deepcopy(full)  # the loaded module is cached: every model gets its own copy
    trunk = truncate(full, backbone["cut"])
    if state is not None:
        own = trunk.state_dict()
        missing = [k for k in own if k not in state]
        if missing:
            raise ValueError(f"backbone weights lack {len(missing)} tensor(s) of the kept layers, e.g. "
                             f"{missing[:5]}; is the file for this architecture?")
        wrong = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}" for k, v in own.items()
                 if state[k].shape != v.shape]
        if wrong:
            raise ValueError(f"backbone weights do not fit the kept layers ({len(wrong)} shape mismatch(es), e.g. "
                             f"{wrong[:3]}); for a 'file' backbone set its input_shape")
        trunk.load_state_dict({k: state[k] for k in own})
    return trunk


def _first_conv_channels(module: nn.Module) -> int | None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return None


class FrozenBatchNorm(nn.Module):
    """A BatchNorm with fixed statistics and affine parameters, all buffers: y = (x - mean) / sqrt(var + eps) * w + b.

    A frozen backbone's BatchNorm layers become these, so nothing can move them: not the optimiser (no
    parameters), not train mode, not a training loop that re-estimates BatchNorm statistics (it looks for
    ``_BatchNorm`` modules). Same state-dict names as the layer it replaces, minus ``num_batches_tracked``.
    """

    weight: torch.Tensor  # the buffers registered below
    bias: torch.Tensor
    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm):
        super().__init__()
        if bn.running_mean is None or bn.running_var is None:
            raise ValueError("a BatchNorm without running statistics (track_running_stats=False) cannot be frozen")
        n = bn.num_features
        self.eps = float(bn.eps)
        self.register_buffer("weight", bn.weight.detach().clone() if bn.affine else torch.ones(n))
        self.register_buffer("bias", bn.bias.detach().clone() if bn.affine else torch.zeros(n))
        self.register_buffer("running_mean", bn.running_mean.detach().clone())
        self.register_buffer("running_var", bn.running_var.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` normalised with the fixed statistics and scaled and shifted by the fixed affine parameters (per
        channel, axis 1)."""
        shape = (1, -1) + (1,) * (x.dim() - 2)
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        return x * scale.view(shape) + (self.bias - self.running_mean * scale).view(shape)

    def extra_repr(self) -> str:
        """The channel count and eps, for ``repr``."""
        return f"{self.weight.numel()}, eps={self.eps}"


def freeze_batchnorm(module: nn.Module) -> None:
    """Replace every BatchNorm (with running statistics) under ``module`` by a `FrozenBatchNorm`, in place."""
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and child.track_running_stats:
            setattr(module, name, FrozenBatchNorm(child))
        else:
            freeze_batchnorm(child)


class PredefinedNet(nn.Module):
    """adapter → trunk (reused, frozen or fine-tuned) → head (searched)."""

    def __init__(self, adapter: InputAdapter, trunk: nn.Module, head: nn.Module, freeze: bool, flat: bool):
        super().__init__()
        self.adapter, self.trunk, self.head = adapter, trunk, head
        self.freeze, self.flat = freeze, flat
        if freeze:
            freeze_batchnorm(trunk)
            for p in trunk.parameters():
                p.requires_grad_(False)
            trunk.eval()

    def train(self, mode: bool = True) -> PredefinedNet:
        """Set train (``mode`` True) or eval mode, as ``nn.Module.train`` does, except that a frozen trunk stays in eval
        mode. Returns the network."""
        super().train(mode)
        if self.freeze:
            self.trunk.eval()  # frozen: dropout (if any) off, the backbone computes what it was trained to
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logits for images ``x``: adapter, trunk (without gradients when it is frozen and the adapter learns
        nothing), its output flattened to (N, features, 1, 1) for a flat trunk, then the head."""
        x = self.adapter(x)
        if self.freeze and self.adapter.proj is None:
            with torch.no_grad():
                x = self.trunk(x)
        else:
            x = self.trunk(x)
        if self.flat:
            x = x.reshape(x.shape[0], -1, 1, 1)
        return self.head(x)


def build_predefined(arch: dict, input_shape, num_classes: int) -> nn.Module:
    """Build the ``predefined`` model of ``arch`` for inputs (C, H, W) and ``num_classes`` outputs."""
    validate_predefined_arch(arch)
    c, h, w = (int(s) for s in input_shape)
    backbone = arch["backbone"]
    trunk = load_trunk(backbone, (c, h, w))
    want = _first_conv_channels(trunk) or c
    normalize = arch.get("normalize", "imagenet" if backbone["kind"] == "torchvision" else None)
    adapter = InputAdapter(c, want, arch.get("resize"), normalize)
    rh, rw = (arch["resize"], arch["resize"]) if arch.get("resize") else (h, w)
    trunk.eval()
    try:
        with torch.no_grad():
            out = trunk(adapter(torch.zeros(2, c, h, w)))
    except RuntimeError as exc:
        raise ValueError(f"the backbone cut at {backbone['cut']!r} does not run on {rh}x{rw} inputs ({exc}); "
                         "cut it lower or set 'resize'") from None
    flat = out.dim() == 2
    if out.dim() not in (2, 4):
        raise ValueError(f"the backbone cut at {backbone['cut']!r} outputs shape {tuple(out.shape[1:])}; "
                         "cut it where it yields a (C, H, W) feature map or a feature vector")
    feat_shape = (out.shape[1], 1, 1) if flat else tuple(out.shape[1:])
    head = build_cnn(arch["head"], feat_shape, num_classes)
    model = PredefinedNet(adapter, trunk, head, bool(arch["freeze"]), flat)
    model.train()
    return model


# ----------------------------------------------------------------------------------------------------- search

def sample_head(rng: random.Random) -> dict:
    """A head: 0-2 convs (32-128 filters, kernel 1/3, each followed by a 2x2 max pool with p=0.3), 0-2 fc
    layers (non-increasing widths), activation, norm and dropout. Pools that do not fit the map are skipped by
    the builder, so a head fits any backbone output."""
    layers: list[dict] = []
    for _ in range(rng.choice((0, 1, 1, 2))):
        layers.append({"type": "conv", "filters": rng.choice(HEAD_FILTERS), "kernel": rng.choice(HEAD_KERNELS),
                       "stride": 1})
        if rng.random() < 0.3:
            layers.append({"type": "pool", "op": "max", "size": 2, "stride": 2})
    units = sorted((rng.choice(HEAD_UNITS) for _ in range(rng.choice((0, 1, 1, 2)))), reverse=True)
    layers += [{"type": "fc", "units": u} for u in units]
    return {"layers": layers, "activation": rng.choice(ACTIVATIONS), "norm": rng.choice(NORMS),
            "dropout": rng.choice(DROPOUTS)}


def make_predefined_task_space(backbone: dict, freeze: bool, *, resize: int | None = None,
                               normalize: Any = BUILDER_DEFAULT):
    """A sampler ``rng -> ModelSpec`` of ``predefined`` specs on this backbone, for any backend that accepts
    ``space=<sampler>`` (random search, Hyperband). ``normalize`` defaults to the builder's default."""
    validate_backbone(backbone)
    backbone = dict(backbone)
    extra: dict[str, Any] = {}
    if resize is not None:
        extra["resize"] = int(resize)
    if normalize is not BUILDER_DEFAULT:
        extra["normalize"] = normalize

    def predefined(rng: random.Random) -> ModelSpec:
        train = {**sample_train_params(rng), "init_scale": 1.0}
        arch = {"backbone": backbone, "freeze": bool(freeze), "head": sample_head(rng), **extra}
        return ModelSpec(SPACE, arch, train)

    return predefined


class PredefinedSearch(SearchBackend):
    """Search heads (and training hyper-parameters) on a fixed, reused backbone.

    ``inner``: "random" or "hyperband" -- the backend that schedules the trials; ``inner_options`` go to its
    constructor (e.g. ``eta`` for Hyperband). Warm-start specs are kept when they are ``predefined`` specs on the
    same backbone and freeze setting (a group's earlier head); others cannot be trained on this backbone and are
    dropped.
    """

    name = "predefined"

    def __init__(self, backbone: dict, freeze: bool = True, inner: str = "random", *, resize: int | None = None,
                 normalize: Any = BUILDER_DEFAULT, **inner_options):
        cls = BACKENDS.get(inner)  # ValueError naming the registered backends
        if not getattr(cls, "samples_any_space", False):
            raise ValueError(f"inner backend {inner!r} cannot search a given sampler (it does not declare "
                             "samples_any_space); use random or hyperband")
        self.backbone, self.freeze, self.inner_name = dict(backbone), bool(freeze), inner
        self.sample = make_predefined_task_space(self.backbone, self.freeze, resize=resize, normalize=normalize)
        self.inner = cls(space=self.sample, **inner_options)

    def search(self, task: SearchTask) -> SearchResult:
        ds = task.dataset
        # Fail fast, in this process and with a clear message, on a backbone that cannot serve this dataset.
        build_predefined(self.sample(random.Random(0)).arch, ds.input_shape, ds.num_classes)
        warm = [s for s in task.warm_start if s.space == SPACE and s.arch.get("backbone") == self.backbone
                and s.arch.get("freeze") == self.freeze]
        result = self.inner.search(dataclasses.replace(task, warm_start=warm))
        result.info.update({"mechanism": "predefined", "inner": self.inner_name, "backbone": self.backbone,
                            "freeze": self.freeze})
        return result
