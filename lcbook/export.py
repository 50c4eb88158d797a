"""Export a compressed model to one small file, and load it back as a plain ``nn.Module``.

File layout (version 1), little-endian; nothing in it is executed on load::

    b"LCBK" | u16 version | u32 header length | sha256 of the rest | header (zlib-compressed
    UTF-8 JSON) | payload (raw bytes)

The header names the architecture (a key of :data:`lcbook.models.MODELS`), the package version,
every section of the payload (name, offset, bytes, how to decode it) and, per compression task,
its compression and the Θ entries that are not stored as sections (shapes, fixed codebooks). The
payload holds exactly what the compressed form needs, bit-packed:

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
from typing import Any, Dict, List, Tuple

import numpy as np
import torch
from torch import nn

from . import __version__, models
from ._io import atomic_write_bytes
from .compressions import (AdaptiveQuantization, AdditiveCombination, Binarization, ConstraintL0Pruning,
                           ConstraintL1Pruning, FixedCodebook, LowRank, PenaltyL0Pruning, PenaltyL1Pruning,
                           RankSelection, ScaledBinarization, ScaledTernarization)
from .compressions.base import ceil_log2, shape_of
from .compressions.pruning import sparse_layout

MAGIC = b"LCBK"
VERSION = 1
_PRUNING = (ConstraintL0Pruning, ConstraintL1Pruning, PenaltyL0Pruning, PenaltyL1Pruning)


class FormatError(ValueError):
    """The file is not a valid lcbook export (bad magic, newer version, truncated, mismatched)."""


# --- bit packing ---------------------------------------------------------------------------


def pack_bits(values: torch.Tensor, width: int) -> bytes:
    """Pack non-negative ints ``values`` (< 2**width) into ``width`` bits each, LSB first."""
    v = values.detach().cpu().to(torch.int64).numpy().astype(np.uint64)
    if width == 0 or v.size == 0:
        return b""
    bits = ((v[:, None] >> np.arange(width, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8).reshape(-1)
    return np.packbits(bits, bitorder="little").tobytes()


def unpack_bits(data: bytes, width: int, count: int) -> torch.Tensor:
    """Inverse of :func:`pack_bits`: ``count`` int64 values of ``width`` bits."""
    if width == 0 or count == 0:
        return torch.zeros(count, dtype=torch.long)
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")[: count * width]
    if bits.size != count * width:
        raise FormatError(f"packed section holds {bits.size} bits, {count * width} expected")
    v = (bits.reshape(count, width).astype(np.uint64) << np.arange(width, dtype=np.uint64)).sum(1)
    return torch.from_numpy(v.astype(np.int64))


def encode_sparse(indices: torch.Tensor, values: torch.Tensor) -> Tuple[int, int, bytes, bytes]:
    """``(width, slots, packed gaps, float32 values)`` with filler slots for long gaps."""
    if indices.numel() == 0:
        return 1, 0, b"", b""
    order = torch.argsort(indices)
    idx, vals = indices[order].to(torch.long).cpu(), values[order].detach().float().cpu()
    b = sparse_layout(idx)[0]
    cap = 2**b
    gaps = torch.diff(idx, prepend=idx.new_tensor([-1]))
    n_slots = ((gaps + cap - 1) // cap)  # slots per kept entry (fillers + itself)
    fill = n_slots - 1
    total = int(n_slots.sum())
    codes = torch.full((total,), cap - 1, dtype=torch.long)  # a filler advances by 2**b
    out_vals = torch.zeros(total, dtype=torch.float32)
    last = torch.cumsum(n_slots, 0) - 1  # slot of each real entry
    codes[last] = gaps - fill * cap - 1
    out_vals[last] = vals
    return b, total, pack_bits(codes, b), out_vals.numpy().tobytes()


def decode_sparse(width: int, slots: int, gaps: bytes, values: bytes, n: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Positions and values of the kept entries (fillers dropped)."""
    if slots == 0:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0)
    if not 1 <= width <= 62:
        raise FormatError(f"sparse section has gap width {width}, expected 1..62 bits")
    codes = unpack_bits(gaps, width, slots)
    pos = torch.cumsum(codes + 1, 0) - 1
    vals = torch.from_numpy(np.frombuffer(values, dtype=np.float32).copy())
    if vals.numel() != slots or int(pos[-1]) >= n:
        raise FormatError(f"sparse section does not fit a weight of {n} values")
    keep = vals != 0
    return pos[keep], vals[keep]


# --- compressions <-> JSON ---------------------------------------------------------------------

_CLASSES = {c.__name__: c for c in (AdaptiveQuantization, AdditiveCombination, Binarization, ConstraintL0Pruning,
                                     ConstraintL1Pruning, FixedCodebook, LowRank, PenaltyL0Pruning, PenaltyL1Pruning,
                                     RankSelection, ScaledBinarization, ScaledTernarization)}


def _describe(comp) -> Dict[str, Any]:
    if isinstance(comp, AdditiveCombination):
        return {"class": "AdditiveCombination", "parts": [_describe(p) for p in comp.parts],
                "max_sweeps": comp.max_sweeps, "tol": comp.tol}
    name = type(comp).__name__
    if _CLASSES.get(name) is not type(comp):  # unknown, or a subclass the format would not rebuild
        raise TypeError(f"cannot export a {type(comp).__qualname__}: the file format knows the compressions "
                        f"{sorted(_CLASSES)} and additive combinations of them")
    fields = {f: getattr(comp, f) for f in comp.__dataclass_fields__ if comp.__dataclass_fields__[f].init}
    return {"class": name, **{k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}}


def _build(desc: Dict[str, Any]):
    desc = dict(desc)
    name = desc.pop("class", None)
    if name not in _CLASSES:
        raise FormatError(f"unknown compression {name!r} in the header")
    if name == "AdditiveCombination":
        return AdditiveCombination(tuple(_build(p) for p in desc.pop("parts")), **desc)
    return _CLASSES[name](**{k: tuple(v) if isinstance(v, list) else v for k, v in desc.items()})


# --- Θ <-> sections --------------------------------------------------------------------------


class _Writer:
    def __init__(self):
        self.buf = io.BytesIO()
        self.sections: List[Dict[str, Any]] = []

    def add(self, name: str, data: bytes, group: str, **meta) -> None:
        self.sections.append({"name": name, "offset": self.buf.tell(), "bytes": len(data), "group": group, **meta})
        self.buf.write(data)


def _f32(t: torch.Tensor) -> bytes:
    return t.detach().to(device="cpu", dtype=torch.float32).contiguous().numpy().tobytes()


def _encode(comp, theta, key: str, w: _Writer) -> Dict[str, Any]:
    """Write Θ's sections under ``key``; returns what the header needs besides them."""
    g = "params"
    if isinstance(comp, AdditiveCombination):
        parts = []
        for i, p in enumerate(comp.parts):
            sub = {k[len(f"{i}."):]: v for k, v in theta.items() if k.startswith(f"{i}.")}
            parts.append(_encode(p, sub, f"{key}.{i}", w))
        return {"parts": parts}
    if isinstance(comp, (LowRank, RankSelection)):
        u, v = theta["U"], theta["V"]
        (m, r), n = u.shape, v.shape[1]
        if r * (m + n) > m * n:  # the dense matrix is smaller than its factors
            w.add(f"{key}.dense", _f32(comp.decompress(theta)), g)
            return {"m": m, "n": n, "r": r, "dense": True}
        w.add(f"{key}.U", _f32(u), g)
        w.add(f"{key}.V", _f32(v), g)
        return {"m": m, "n": n, "r": r, "dense": False}
    meta = {"shape": list(shape_of(theta))}
    if isinstance(comp, _PRUNING):
        width, slots, gaps, vals = encode_sparse(theta["indices"], theta["values"])
        w.add(f"{key}.gaps", gaps, g)
        w.add(f"{key}.values", vals, g)
        return {**meta, "width": width, "slots": slots}
    if isinstance(comp, AdaptiveQuantization):
        k = int(theta["codebook"].numel())
        w.add(f"{key}.codebook", _f32(theta["codebook"]), g)
        w.add(f"{key}.assignments", pack_bits(theta["assignments"], ceil_log2(max(k, 1))), g)
        return {**meta, "k": k}
    if isinstance(comp, FixedCodebook):
        w.add(f"{key}.assignments", pack_bits(theta["assignments"], ceil_log2(len(comp.values))), g)
        return meta
    if isinstance(comp, ScaledBinarization):
        w.add(f"{key}.scale", _f32(theta["scale"]), g)
        w.add(f"{key}.signs", pack_bits(theta["signs"].long(), 1), g)
        return meta
    if isinstance(comp, ScaledTernarization):
        w.add(f"{key}.scale", _f32(theta["scale"]), g)
        w.add(f"{key}.codes", pack_bits(theta["codes"].long() + 1, 2), g)
        return meta
    raise TypeError(f"cannot export a {type(comp).__name__}")


def _decode(comp, meta: Dict[str, Any], key: str, read) -> Dict[str, torch.Tensor]:
    """Rebuild the Θ that :meth:`Compression.decompress` takes."""
    if isinstance(comp, AdditiveCombination):
        theta = {}
        for i, (p, m) in enumerate(zip(comp.parts, meta["parts"])):
            theta.update({f"{i}.{k}": v for k, v in _decode(p, m, f"{key}.{i}", read).items()})
        return theta
    if isinstance(comp, (LowRank, RankSelection)):
        m, n, r = meta["m"], meta["n"], meta["r"]
        if meta["dense"]:
            return {"U": read(f"{key}.dense", np.float32, (m, n)), "V": torch.eye(n)}
        return {"U": read(f"{key}.U", np.float32, (m, r)), "V": read(f"{key}.V", np.float32, (r, n))}
    shape = tuple(meta["shape"])
    n = math.prod(shape)
    theta = {"shape": torch.tensor(shape, dtype=torch.long)}
    if isinstance(comp, _PRUNING):
        idx, vals = decode_sparse(meta["width"], meta["slots"], read(f"{key}.gaps"), read(f"{key}.values"), n)
        return {**theta, "indices": idx, "values": vals}
    if isinstance(comp, AdaptiveQuantization):
        k = meta["k"]
        return {**theta, "codebook": read(f"{key}.codebook", np.float32, (k,)),
                "assignments": unpack_bits(read(f"{key}.assignments"), ceil_log2(max(k, 1)), n)}
    if isinstance(comp, FixedCodebook):
        z = unpack_bits(read(f"{key}.assignments"), ceil_log2(len(comp.values)), n)
        return {**theta, "assignments": z, "codebook": torch.tensor(comp.values, dtype=torch.float32)}
    if isinstance(comp, ScaledBinarization):
        return {**theta, "scale": read(f"{key}.scale", np.float32, (1,)),
                "signs": unpack_bits(read(f"{key}.signs"), 1, n).bool()}
    if isinstance(comp, ScaledTernarization):
        return {**theta, "scale": read(f"{key}.scale", np.float32, (1,)),
                "codes": (unpack_bits(read(f"{key}.codes"), 2, n) - 1).to(torch.int8)}
    raise FormatError(f"cannot decode a {type(comp).__name__}")


# --- the file ----------------------------------------------------------------------------------

_NP_DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16, "int64": np.int64,
              "int32": np.int32, "uint8": np.uint8, "bool": np.bool_}
_PREFIX = len(MAGIC) + 6 + 32  # magic, u16 version, u32 header length, sha256 of header + payload


def export(lc, path, arch: str) -> Dict[str, int]:
    """Write the compressed model of an LC run to ``path`` (atomically).

    Args:
        lc: an :class:`lcbook.lc.LCAlgorithm` after direct compression or a run, on float32 weights.
        path: the file to write.
        arch: the model's name in :data:`lcbook.models.MODELS` (the loader builds it from this).

    Returns:
        sizes in bytes: ``file``, ``header`` (prefix and JSON), ``params`` (the payload of the
        parameters: the storage accounting rounded up to whole bytes per section), ``buffers``;
        and ``accounted_bits`` (:func:`lcbook.storage.storage_report`'s total).

    Raises:
        ValueError: ``arch`` unknown or not the model's architecture, weights or a Θ entry not
            float32 (e.g. after a float64 run), no Θ yet.
        TypeError: a compression the format does not know (the message names it).
    """
    from .lc import LCAlgorithm
    from .storage import storage_report

    if not isinstance(lc, LCAlgorithm):
        raise TypeError(f"lc must be an LCAlgorithm, got {type(lc).__name__}")
    lc._require_theta()
    if not isinstance(arch, str) or arch not in models.MODELS:
        raise ValueError(f"arch must be one of {sorted(models.MODELS)}, got arch={arch!r}")
    own = lc.model.state_dict()
    ref = models.build(arch).state_dict()
    if set(own) != set(ref) or any(tuple(own[k].shape) != tuple(ref[k].shape) for k in own):
        raise ValueError(f"the model is not a {arch!r}: its parameters and buffers differ from models.build({arch!r})")
    for name, p in lc.model.named_parameters():
        if p.dtype != torch.float32:
            raise ValueError(f"export stores float32 weights; parameter {name!r} is {p.dtype}")
    if Path(path).is_dir():
        raise ValueError(f"path must be a file to write, got the folder path={str(path)!r}")
    for i, b in enumerate(lc.tasks):
        _describe(b.task.compression)  # a TypeError naming an unknown compression, before any work
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
        meta = _encode(b.task.compression, b.theta, f"task{i}", w)
        tasks.append({"params": list(b.task.params), "view": b.view, "compression": _describe(b.task.compression),
                      "theta": meta})
        covered.update(b.task.params)
    for name, p in lc.model.named_parameters():
        if name not in covered:
            w.add(f"param/{name}", _f32(p), "params", dtype="float32", shape=list(p.shape))
    for name, buf in lc.model.named_buffers():
        dt = str(buf.dtype).replace("torch.", "")
        if dt not in _NP_DTYPES:
            raise ValueError(f"buffer {name!r} has dtype {buf.dtype}, which export cannot store")
        w.add(f"buffer/{name}", buf.detach().cpu().contiguous().numpy().tobytes(), "buffers", dtype=dt,
              shape=list(buf.shape))
    payload = w.buf.getvalue()
    header = {"format": "lcbook-compressed-model", "version": VERSION, "lcbook": __version__,
              "torch": torch.__version__, "arch": arch, "tasks": tasks, "sections": w.sections,
              "payload_bytes": len(payload), "accounted_bits": storage_report(lc)["total_bits"]}
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


def _read(path) -> Tuple[Dict[str, Any], bytes]:

    data = Path(path).read_bytes()
    if len(data) < _PREFIX or data[:4] != MAGIC:
        raise FormatError(f"{str(path)!r} is not an lcbook compressed model (no LCBK header)")
    version, hlen = struct.unpack("<HI", data[4:10])
    if version > VERSION:
        raise FormatError(f"{str(path)!r} has format version {version}; this lcbook ({__version__}) reads "
                          f"versions ≤ {VERSION}: upgrade lcbook")
    digest, rest = data[10:_PREFIX], data[_PREFIX:]
    if len(rest) < hlen or hashlib.sha256(rest).digest() != digest:
        raise FormatError(f"{str(path)!r} is truncated or corrupted (checksum mismatch)")
    try:
        header = json.loads(zlib.decompress(rest[:hlen]))
    except (zlib.error, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"{str(path)!r}: unreadable header ({e})") from None
    _check_header(header, path)
    payload = rest[hlen:]
    if len(payload) != header.get("payload_bytes"):
        raise FormatError(f"{str(path)!r} is truncated: {len(payload)} payload bytes, {header.get('payload_bytes')} expected")
    return header, payload


def load(path, factorized: bool = False) -> nn.Module:
    """Load an export as a plain ``nn.Module`` in eval mode (weights Δ(Θ), decoded at load time).

    Nothing in the file is executed: the header is JSON, the payload raw numbers. The module's
    outputs equal those of the compressed model inside the LC run, bit for bit on a CPU.

    Args:
        path: the file.
        factorized: replace every layer compressed by low-rank alone (``LowRank`` or
            ``RankSelection`` whose factors are smaller than the matrix) by two layers that
            really save FLOPs: a conv ``(n_out, n_in, k, k)`` seen as ``(n_out, n_in·k·k)``
            becomes a k×k conv into r channels then a 1×1 conv; seen as
            ``(n_out·k_h, n_in·k_w)``, a 1×k_w conv then a k_h×1 conv; a linear layer becomes
            two linear layers. Outputs then equal the dense ones up to float rounding.

    Raises:
        FormatError: not an export, a newer format version, truncated or corrupted (checksum),
            or contents that do not fit the named architecture.
    """
    from .lc import Task, _Bound

    header, payload = _read(path)
    arch = header.get("arch")
    if arch not in models.MODELS:
        raise FormatError(f"{str(path)!r} is for architecture {arch!r}, which this lcbook does not have")
    sections = {s["name"]: s for s in header["sections"]}

    def read(name, dtype=None, shape=None):
        s = sections.get(name)
        if s is None or s["offset"] + s["bytes"] > len(payload):
            raise FormatError(f"{str(path)!r}: section {name!r} is missing or out of range")
        raw = payload[s["offset"]: s["offset"] + s["bytes"]]
        if dtype is None:
            return raw
        arr = np.frombuffer(raw, dtype=dtype)
        if shape is not None and arr.size != math.prod(shape):
            raise FormatError(f"{str(path)!r}: section {name!r} holds {arr.size} values, shape {tuple(shape)} expected")
        return torch.from_numpy(arr.copy()).reshape(shape if shape is not None else (-1,))

    model = models.build(arch)
    named = dict(model.named_parameters())
    state = {}
    factors = []
    try:
        for i, t in enumerate(header["tasks"]):
            comp = _build(t["compression"])
            theta = _decode(comp, t["theta"], f"task{i}", read)
            bound = _Bound(Task(tuple(t["params"]), comp, t["view"]), named)
            delta = comp.decompress(theta).reshape(bound.lam.shape)
            state.update({n: s.contiguous() for n, s in zip(t["params"], bound.scatter(delta))})
            # rank 0 (rank selection may choose it) stays a dense layer of zeros: a conv with
            # zero channels in between cannot run
            if factorized and isinstance(comp, (LowRank, RankSelection)) and not t["theta"]["dense"] and t["theta"]["r"] > 0:
                factors.append((t["params"][0], t["view"], theta["U"], theta["V"]))
        for s in header["sections"]:
            if s["group"] in ("params", "buffers") and "/" in s["name"]:
                name = s["name"].split("/", 1)[1]
                state[name] = read(s["name"], _NP_DTYPES[s["dtype"]], tuple(s["shape"]))
        model.load_state_dict(state, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        if isinstance(e, FormatError):
            raise
        raise FormatError(f"{str(path)!r} does not fit architecture {arch!r}: {e}") from None
    for name, view, u, v in factors:
        _factorize(model, name, view, u, v)
    return model.eval()


def _factorize(model: nn.Module, param: str, view: str, u: torch.Tensor, v: torch.Tensor) -> None:
    """Replace the layer owning ``param`` (W = U V in the task's view) by two smaller layers."""
    mod_name = param.rsplit(".", 1)[0]
    parent_name, _, attr = mod_name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    layer = getattr(parent, attr)
    r = u.shape[1]
    if isinstance(layer, nn.Linear):
        first, second = nn.Linear(layer.in_features, r, bias=False), nn.Linear(r, layer.out_features, bias=layer.bias is not None)
        w1, w2 = v, u
    elif isinstance(layer, nn.Conv2d) and layer.groups == 1 and isinstance(layer.padding, tuple):
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
        return  # other layers (grouped convs, string padding) keep the dense Δ(Θ)
    with torch.no_grad():
        first.weight.copy_(w1)
        second.weight.copy_(w2)
        if layer.bias is not None:
            second.bias.copy_(layer.bias)
    setattr(parent, attr, nn.Sequential(first, second))
