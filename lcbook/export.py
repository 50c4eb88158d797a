"""Export a compressed model to one small file, and load it back as a plain ``nn.Module``.

File layout (version 1), little-endian; nothing in it is executed on load::

    b"LCBK" | u16 version | u32 header length | sha256 of the rest | header (zlib-compressed
    UTF-8 JSON) | payload (raw bytes)

The header names the architecture (a name registered with :func:`register_architecture`; the
book's models register themselves, and any other ``nn.Module`` exports with a builder), the
package version, every section of the payload (name, offset, bytes, how to decode it) and, per
compression task, its compression (:meth:`~lcbook.compressions.Compression.config`) and the Θ
entries that are not stored as sections (shapes, counts). Each compression writes and reads its
own sections (:meth:`~lcbook.compressions.Compression.encode` / ``decode``, with the codes of
:mod:`lcbook.compressions.coding`); this module only lays them out. For the book's compressions
the payload holds exactly what the compressed form needs, bit-packed:

* quantization: ⌈log2 K⌉-bit assignments, packed; the codebook as float32 (adaptive) or in the
  header (fixed codebooks cost no bits, as in the accounting); scaled forms: 1 or 2 bits per
  weight and a float32 scale;
* pruning: the kept values as float32 and their positions as fixed-width gaps (the width that
  :func:`lcbook.compressions.sparse_bits` chose; a gap too long for it is bridged by filler
  entries of value 0, each costing a slot, exactly as counted);
* low-rank: the two factors as float32, or the dense product when r(m+n) > m·n;
* additive: each part as above; parameters no task compresses (biases, BatchNorm) as float32;
  buffers (BatchNorm running statistics) as stored, in their own sections.

So the payload of the parameters is the package's storage accounting rounded up to whole bytes
per section, and the file is that plus the buffers and the header (a test checks it).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from ._version import __version__
from ._io import atomic_write_bytes
from .binding import Binding, Task
from .compressions.base import Compression
from .lc import LCAlgorithm
from .storage import storage_report
from .compressions.coding import (FormatError, decode_sparse, encode_sparse, f32, pack_bits,  # noqa: F401  (re-exported)
                                  unpack_bits)

MAGIC = b"LCBK"
VERSION = 1

# --- architectures ---------------------------------------------------------------------------

_ARCHITECTURES: Dict[str, Callable[[], nn.Module]] = {}


def register_architecture(name: str, builder: Callable[[], nn.Module]) -> None:
    """Make ``name`` an architecture that :func:`export` may name and :func:`load` rebuilds with
    ``builder()`` (a fresh module with the exported model's parameters and buffers). The book's
    models (:mod:`lcbook.models`) register themselves.

    Raises:
        TypeError: ``name`` not a non-empty string or ``builder`` not callable.
        ValueError: ``name`` already registered to another builder.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, got name={name!r}")
    if not callable(builder):
        raise TypeError(f"builder must be a callable that returns an nn.Module, got {type(builder).__name__}")
    old = _ARCHITECTURES.get(name)
    qual = getattr(builder, "__qualname__", "<lambda>")
    same_code = (getattr(old, "__qualname__", None) == qual and "<lambda>" not in qual and "<locals>" not in qual
                 and getattr(old, "__module__", None) == getattr(builder, "__module__", 0))  # a module reloaded
    if old is not None and old is not builder and not same_code:
        raise ValueError(f"architecture {name!r} is already registered to another builder")
    _ARCHITECTURES[name] = builder


def architectures() -> List[str]:
    """The registered architecture names, sorted."""
    return sorted(_ARCHITECTURES)


def _builder(arch, builder):
    if builder is not None:
        if not callable(builder):
            raise TypeError(f"builder must be a callable that returns an nn.Module, got {type(builder).__name__}")
        return builder
    if arch not in _ARCHITECTURES:
        return None
    return _ARCHITECTURES[arch]


# --- Θ <-> sections --------------------------------------------------------------------------


class _Writer:
    def __init__(self):
        self.buf = io.BytesIO()
        self.sections: List[Dict[str, Any]] = []

    def add(self, name: str, data: bytes, group: str, **meta) -> None:
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"section {name!r}: encode() must put bytes, got {type(data).__name__}")
        if any(s["name"] == name for s in self.sections):
            raise ValueError(f"section {name!r} written twice")
        self.sections.append({"name": name, "offset": self.buf.tell(), "bytes": len(data), "group": group, **meta})
        self.buf.write(data)


# --- the file ----------------------------------------------------------------------------------

_NP_DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16, "int64": np.int64,
              "int32": np.int32, "uint8": np.uint8, "bool": np.bool_}
_PREFIX = len(MAGIC) + 6 + 32  # magic, u16 version, u32 header length, sha256 of header + payload


def export(lc, path, arch: str, builder: Optional[Callable[[], nn.Module]] = None) -> Dict[str, int]:
    """Write the compressed model of an LC run to ``path`` (atomically).

    Args:
        lc: an :class:`lcbook.lc.LCAlgorithm` after direct compression or a run, on float32 weights.
        path: the file to write.
        arch: the architecture's name, written in the header: a registered name
            (:func:`register_architecture`; the book's models, e.g. ``"resnet20"``), or any name
            with ``builder``.
        builder: a callable that builds a fresh module of this architecture (the loader needs
            the same one, or a registered name); default: the registered builder of ``arch``.

    Returns:
        sizes in bytes: ``file``, ``header`` (prefix and JSON), ``params`` (the payload of the
        parameters: the storage accounting rounded up to whole bytes per section), ``buffers``;
        and ``accounted_bits`` (:func:`lcbook.storage.storage_report`'s total).

    Raises:
        ValueError: ``arch`` neither registered nor given a ``builder``, or not the model's
            architecture; weights or a Θ entry not float32 (e.g. after a float64 run); no Θ yet.
        TypeError: a compression that is not registered or has no file encoding (the message
            names it).
    """
    if not isinstance(lc, LCAlgorithm):
        raise TypeError(f"lc must be an LCAlgorithm, got {type(lc).__name__}")
    lc._require_theta()
    if not isinstance(arch, str) or not arch:
        raise ValueError(f"arch must be a non-empty string, got arch={arch!r}")
    build = _builder(arch, builder)
    if build is None:
        raise ValueError(f"arch must be a registered architecture {architectures()} or come with a builder, "
                         f"got arch={arch!r} and no builder")
    own = lc.model.state_dict()
    built = build()
    if not isinstance(built, nn.Module):
        raise TypeError(f"the builder of {arch!r} must return an nn.Module, got {type(built).__name__}")
    ref = built.state_dict()
    if set(own) != set(ref) or any(tuple(own[k].shape) != tuple(ref[k].shape) for k in own):
        raise ValueError(f"the model is not a {arch!r}: its parameters and buffers differ from the builder's")
    for name, p in lc.model.named_parameters():
        if p.dtype != torch.float32:
            raise ValueError(f"export stores float32 weights; parameter {name!r} is {p.dtype}")
    if Path(path).is_dir():
        raise ValueError(f"path must be a file to write, got the folder path={str(path)!r}")
    for i, b in enumerate(lc.tasks):
        b.task.compression.config()  # a TypeError naming an unregistered compression, before any work
        dt = b.task.compression.decompress(b.theta).dtype
        if dt != torch.float32:
            raise ValueError(
                f"export stores float32: task {i} ({b.task.label}) has Θ in {dt}, which the file could not "
                f"reproduce bit for bit; run LC on float32 weights and multipliers (model.float() before "
                f"building the LCAlgorithm), or compress the float32 weights again (lcbook.direct_compression "
                f"on model.float())")
    w = _Writer()
    tasks, covered = [], set()
    for i, b in enumerate(lc.tasks):
        comp = b.task.compression
        meta = comp.encode(b.theta, lambda name, data, i=i: w.add(f"task{i}.{name}", data, "params"))
        tasks.append({"params": list(b.task.params), "view": b.view, "compression": comp.config(), "theta": meta})
        covered.update(b.task.params)
    for name, p in lc.model.named_parameters():
        if name not in covered:
            w.add(f"param/{name}", f32(p), "params", dtype="float32", shape=list(p.shape))
    persistent = set(lc.model.state_dict())
    for name, buf in lc.model.named_buffers():
        if name not in persistent:  # a non-persistent buffer is rebuilt by the builder, not stored
            continue
        dt = str(buf.dtype).replace("torch.", "")
        if dt not in _NP_DTYPES:
            raise ValueError(f"buffer {name!r} has dtype {buf.dtype}, which export cannot store")
        w.add(f"buffer/{name}", buf.detach().cpu().contiguous().numpy().tobytes(), "buffers", dtype=dt,
              shape=list(buf.shape))
    payload = w.buf.getvalue()
    header = {"format": "lcbook-compressed-model", "version": VERSION, "lcbook": __version__,
              "torch": torch.__version__, "arch": arch, "tasks": tasks, "sections": w.sections,
              "payload_bytes": len(payload), "accounted_bits": storage_report(lc)["total_bits"],
              "channels_last": _is_channels_last(lc.model)}
    hjson = zlib.compress(json.dumps(header, separators=(",", ":")).encode(), 9)

    digest = hashlib.sha256(hjson + payload).digest()
    blob = MAGIC + struct.pack("<HI", VERSION, len(hjson)) + digest + hjson + payload
    atomic_write_bytes(blob, path)
    params = sum(s["bytes"] for s in w.sections if s["group"] == "params")
    return {"file": len(blob), "header": _PREFIX + len(hjson), "params": params,
            "buffers": len(payload) - params, "accounted_bits": header["accounted_bits"]}


def read_header(path) -> Dict[str, Any]:
    """The header of an export (architecture, compressions, sections); checks the file first."""
    return _read(path)[0]


_HEADER_TYPES = {"format": str, "version": int, "arch": str, "tasks": list, "sections": list, "payload_bytes": int}


def _check_header(header: Any, path) -> None:
    """A well-formed header: the fields :func:`load` reads, of the right types (a file with a
    valid checksum may still have been written by something else)."""
    if not isinstance(header, dict):
        raise FormatError(f"{str(path)!r}: the header is a JSON {type(header).__name__}, not an object")
    for key, typ in _HEADER_TYPES.items():
        if not isinstance(header.get(key), typ) or isinstance(header.get(key), bool):
            raise FormatError(f"{str(path)!r}: header field {key!r} must be a {typ.__name__}, got {header.get(key)!r:.60}")
    end = 0  # the writer lays the sections end to end, in order, over the whole payload
    names = set()
    for i, s in enumerate(header["sections"]):
        ok = isinstance(s, dict) and isinstance(s.get("name"), str) and all(
            isinstance(s.get(k), int) and not isinstance(s.get(k), bool) for k in ("offset", "bytes"))
        if not ok or s["offset"] != end or s["bytes"] < 0 or s["name"] in names:
            raise FormatError(f"{str(path)!r}: header section {i} ({s!r:.80}) is malformed, overlaps another or "
                              f"leaves a gap (sections must lie end to end from offset 0)")
        end += s["bytes"]
        names.add(s["name"])
    if end != header["payload_bytes"]:
        raise FormatError(f"{str(path)!r}: the sections cover {end} bytes, the payload has {header['payload_bytes']}")
    for i, t in enumerate(header["tasks"]):
        if not (isinstance(t, dict) and isinstance(t.get("params"), list) and isinstance(t.get("compression"), dict)
                and isinstance(t.get("theta"), dict)):
            raise FormatError(f"{str(path)!r}: header task {i} must have 'params', 'compression' and 'theta'")


def _is_channels_last(model: nn.Module) -> bool:
    """Whether the model's 4-D weights are in ``channels_last`` memory format (the loader puts
    the reloaded model in the same format, so its convolutions round the same way)."""
    four = [p for p in model.parameters() if p.ndim == 4 and p.shape[1] * p.shape[2] * p.shape[3] > 1]
    return bool(four) and all(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
                              for p in four)


def _read(path) -> Tuple[Dict[str, Any], bytes]:

    data = Path(path).read_bytes()
    if len(data) < _PREFIX or data[:4] != MAGIC:
        raise FormatError(f"{str(path)!r} is not an lcbook compressed model (no LCBK header)")
    version, hlen = struct.unpack("<HI", data[4:10])
    if version < 1:
        raise FormatError(f"{str(path)!r} has format version {version}; versions start at 1")
    if version > VERSION:
        raise FormatError(f"{str(path)!r} has format version {version}; this lcbook ({__version__}) reads "
                          f"versions ≤ {VERSION}: upgrade lcbook")
    digest, rest = data[10:_PREFIX], data[_PREFIX:]
    if len(rest) < hlen or hashlib.sha256(rest).digest() != digest:
        raise FormatError(f"{str(path)!r} is truncated or corrupted (checksum mismatch)")
    try:
        header = json.loads(zlib.decompress(rest[:hlen]))
    except (zlib.error, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise FormatError(f"{str(path)!r}: unreadable header ({e})") from None
    _check_header(header, path)
    if header["version"] != version:
        raise FormatError(f"{str(path)!r}: the header says version {header['version']}, the prefix {version}")
    payload = rest[hlen:]
    if len(payload) != header.get("payload_bytes"):
        raise FormatError(f"{str(path)!r} is truncated: {len(payload)} payload bytes, {header.get('payload_bytes')} expected")
    return header, payload


def load(path, factorized: bool = False, builder: Optional[Callable[[], nn.Module]] = None) -> nn.Module:
    """Load an export as a plain ``nn.Module`` in eval mode (weights Δ(Θ), decoded at load time).

    Nothing in the file is executed: the header is JSON, the payload raw numbers. The module's
    outputs equal those of the compressed model inside the LC run, bit for bit on the same CPU.

    Args:
        path: the file.
        factorized: replace every layer whose compression splits it into two cheaper factors
            (:meth:`~lcbook.compressions.Compression.factors`: low-rank forms whose factors are
            smaller than the matrix) by two layers that really save FLOPs: a conv
            ``(n_out, n_in, k, k)`` seen as ``(n_out, n_in·k·k)`` becomes a k×k conv into r
            channels then a 1×1 conv; seen as ``(n_out·k_h, n_in·k_w)``, a 1×k_w conv then a
            k_h×1 conv; a linear layer becomes two linear layers. Outputs then equal the dense
            ones up to float rounding.
        builder: a callable that builds a fresh module of the file's architecture; default: the
            builder registered under the header's name (:func:`register_architecture`).

    Raises:
        FormatError: not an export, a newer format version, truncated or corrupted (checksum),
            an architecture neither registered nor given a builder, a compression this lcbook
            does not know, or contents that do not fit the architecture.
    """
    header, payload = _read(path)
    arch = header.get("arch")
    build = _builder(arch, builder)
    if build is None:
        raise FormatError(f"{str(path)!r} is for architecture {arch!r}, which is not registered here "
                          f"(registered: {architectures()}): pass builder=, a callable that builds it")
    sections = {s["name"]: s for s in header["sections"]}

    def read(name, dtype=None, shape=None):
        s = sections.get(name)
        if s is None or s["offset"] + s["bytes"] > len(payload):
            raise FormatError(f"{str(path)!r}: section {name!r} is missing or out of range")
        raw = payload[s["offset"]: s["offset"] + s["bytes"]]
        if dtype is None:
            return raw
        arr = np.frombuffer(raw, dtype=_NP_DTYPES[dtype] if isinstance(dtype, str) else dtype)
        if shape is not None and arr.size != math.prod(shape):
            raise FormatError(f"{str(path)!r}: section {name!r} holds {arr.size} values, shape {tuple(shape)} expected")
        return torch.from_numpy(arr.copy()).reshape(shape if shape is not None else (-1,))

    model = build()
    if not isinstance(model, nn.Module):
        raise TypeError(f"the builder must return an nn.Module, got {type(model).__name__}")
    named = dict(model.named_parameters())
    state = {}
    factors = []
    try:
        for i, t in enumerate(header["tasks"]):
            try:
                comp = Compression.from_config(t["compression"])
            except ValueError as e:
                raise FormatError(f"{str(path)!r}: task {i}: {e}") from None
            theta = comp.decode(t["theta"], lambda name, *a, i=i, **kw: read(f"task{i}.{name}", *a, **kw))
            bound = Binding(Task(tuple(t["params"]), comp, t["view"]), named)
            delta = comp.decompress(theta).reshape(bound.lam.shape)
            state.update({n: s.contiguous() for n, s in zip(t["params"], bound.scatter(delta))})
            uv = comp.factors(theta) if factorized else None
            if uv is not None:
                factors.append((t["params"][0], bound.view, *uv))
        for s in header["sections"]:
            if s["name"].startswith(("param/", "buffer/")):
                name = s["name"].split("/", 1)[1]
                state[name] = read(s["name"], _NP_DTYPES[s["dtype"]], tuple(s["shape"]))
        # a weight tied to another (one tensor under two names) is stored once, under its first name
        first: Dict[int, str] = {}
        for name, p in model.named_parameters(remove_duplicate=False):
            if id(p) in first and name not in state and first[id(p)] in state:
                state[name] = state[first[id(p)]]
            first.setdefault(id(p), name)
        model.load_state_dict(state, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
        if isinstance(e, FormatError):
            raise
        raise FormatError(f"{str(path)!r} does not fit architecture {arch!r}: {e}") from None
    for name, view, u, v in factors:
        _factorize(model, name, view, u, v)
    if header.get("channels_last"):  # files written before the field existed were contiguous
        model.to(memory_format=torch.channels_last)
    return model.eval()


def _factorize(model: nn.Module, param: str, view: str, u: torch.Tensor, v: torch.Tensor) -> None:
    """Replace the layer owning ``param`` (W = U V in the task's view) by two smaller layers."""
    mod_name = param.rsplit(".", 1)[0]
    parent_name, _, attr = mod_name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    layer = getattr(parent, attr)
    r = u.shape[1]
    if type(layer) is nn.Linear:  # a subclass (e.g. attention's out_proj) is read by its owner: keep it
        first, second = nn.Linear(layer.in_features, r, bias=False), nn.Linear(r, layer.out_features, bias=layer.bias is not None)
        w1, w2 = v, u
    elif (type(layer) is nn.Conv2d and layer.groups == 1 and isinstance(layer.padding, tuple)
          and layer.padding_mode == "zeros"):
        o, i, kh, kw = layer.weight.shape
        (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
        if view == "matrix_hw":  # W (o·kh, i·kw): a 1×kw conv into r channels, then a kh×1 conv
            first = nn.Conv2d(i, r, (1, kw), (1, sw), (0, pw), (1, dw), bias=False)
            second = nn.Conv2d(r, o, (kh, 1), (sh, 1), (ph, 0), (dh, 1), bias=layer.bias is not None)
            w1 = v.reshape(r, i, kw).unsqueeze(2)
            w2 = u.reshape(o, kh, r).permute(0, 2, 1).unsqueeze(3)
        else:  # W (o, i·kh·kw): a kh×kw conv into r channels, then a 1×1 conv
            first = nn.Conv2d(i, r, (kh, kw), layer.stride, layer.padding, layer.dilation, bias=False)
            second = nn.Conv2d(r, o, 1, bias=layer.bias is not None)
            w1, w2 = v.reshape(r, i, kh, kw), u.reshape(o, r, 1, 1)
    else:
        return  # other layers (grouped convs, string padding, reflect/circular padding) keep the dense Δ(Θ)
    with torch.no_grad():
        first.weight.copy_(w1)
        second.weight.copy_(w2)
        if layer.bias is not None:
            second.bias.copy_(layer.bias)
    setattr(parent, attr, nn.Sequential(first, second))
