"""Checks for the book's code exercises: the reader completes a function (a C step, a storage
or MAC count), a check cell calls the matching ``check_*`` here, and the page says whether the
function is right, and if not, on which input and by how much.

Every check runs the reader's function on a few fixed inputs (seeded: the verdict depends only on
the function), compares it with an answer computed independently by the package or by the
closed form of the paper it cites, and returns a :class:`Verdict`; it never raises for a wrong,
unfinished or crashing function (an unfinished one, raising ``NotImplementedError``, is "not done
yet"). A chapter executes a hidden solution and asserts ``check_*(solution).ok``, so CI proves
that every exercise can be solved and that its check accepts a right answer.

Checks and where their answers come from:

====================  ===========================================================  ===================
check                 the reader's function                                         answer
====================  ===========================================================  ===================
penalty_gradient      ``f(w, delta, lam, mu)`` → ∇_w of −λᵀ(w−Δ) + μ/2‖w−Δ‖²        μ(w − Δ) − λ (autograd)
lloyd_step            ``f(x, codebook)`` → (assignments, new codebook)             one Lloyd iteration
hard_threshold        ``f(w, alpha, mu)`` → Δ of the ℓ0-penalty C step             :class:`PenaltyL0Pruning`
truncated_svd         ``f(W, r)`` → (U, V) with W ≈ U Vᵀ                            Eckart–Young: Σ_{i>r} σᵢ²
best_corrections      ``f(w, q, kappa)`` → s, the κ corrections of w − q           keep the κ largest |w − q|
gap_code_bits         ``f(indices)`` → bits of a sparse vector                       :func:`sparse_bits`
low_rank_macs         ``f(m, n, r, positions)`` → MACs of a rank-r layer            :meth:`LowRank.macs`
prune_then_quantize   ``f(w, kappa, k)`` → Δ of the pipeline                         top-κ + exact 1-D k-means
====================  ===========================================================  ===================

References: [P1] Carreira-Perpiñán, *Model compression as constrained optimization, with
application to neural nets. Part I: general framework*, arXiv:1707.01209. [P2] … Part II:
quantization, arXiv:1707.04319. [P5] … Part V: combining compressions, arXiv:2107.04380.
[CVPR18] Carreira-Perpiñán & Idelbayev, *"Learning-compression" algorithms for neural net
pruning*, CVPR 2018. [CVPR20] Idelbayev & Carreira-Perpiñán, *Low-rank compression of neural
nets: learning the rank of each layer*, CVPR 2020.
"""

from __future__ import annotations

import html
import math
import numbers
from dataclasses import dataclass
from typing import Callable, Iterable, List, Tuple

import torch

from .compressions import ConstraintL0Pruning, LowRank, PenaltyL0Pruning, optimal_quantization_1d, sparse_bits

__all__ = ["Verdict", "check_best_corrections", "check_gap_code_bits", "check_hard_threshold", "check_lloyd_step",
           "check_low_rank_macs", "check_penalty_gradient", "check_prune_then_quantize", "check_truncated_svd"]

_STATUS = ("correct", "wrong", "not done")


@dataclass(frozen=True)
class Verdict:
    """What a check found.

    Attributes:
        exercise: the exercise's name (the check's name without ``check_``).
        status: ``"correct"``, ``"wrong"`` or ``"not done"`` (the function raised
            ``NotImplementedError``).
        message: one or two sentences for the reader: what was tried and, if wrong, where and by
            how much.
    """

    exercise: str
    status: str
    message: str

    def __post_init__(self):
        if self.status not in _STATUS:
            raise ValueError(f"status must be one of {_STATUS}, got status={self.status!r}")
        for name in ("exercise", "message"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a string, got {name}={getattr(self, name)!r:.60}")

    @property
    def ok(self) -> bool:
        """``True`` only for a correct function."""
        return self.status == "correct"

    def __str__(self) -> str:
        mark = {"correct": "✓ correct", "wrong": "✗ not yet right", "not done": "… not done yet"}[self.status]
        message = self.message[:1].upper() + self.message[1:]
        return f"{self.exercise}: {mark}. {message}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return self.html()

    def html(self) -> str:
        """The verdict as an HTML block (what a notebook shows): a coloured mark and the message,
        escaped."""
        colour = {"correct": "#1a7f37", "wrong": "#b42318", "not done": "#6e7781"}[self.status]
        head, _, rest = str(self).partition(". ")
        return (f'<div class="lcbook-exercise" style="border-left:4px solid {colour};padding:0.3em 0.8em">'
                f'<strong style="color:{colour}">{html.escape(head)}.</strong> {html.escape(rest)}</div>')


class _Wrong(Exception):
    """Raised inside a check when the reader's output is wrong (the message says how)."""


def _describe(e: BaseException, limit: int = 300) -> str:
    """``Type: message`` of an exception, safe against a ``__str__`` that raises, and shortened."""
    try:
        text = str(e)
    except Exception:  # noqa: BLE001 - the reader's exception may be as broken as its function
        text = "(its message could not be printed)"
    text = " ".join(text.split())
    return f"{type(e).__name__}: {text[:limit]}{'…' if len(text) > limit else ''}" if text else type(e).__name__


def _run(exercise: str, fn: Callable, cases: Iterable[Tuple[str, tuple]], judge: Callable, done: str) -> Verdict:
    """Call ``fn(*args)`` on every case and ``judge(args, output)`` (which raises :class:`_Wrong`);
    the first failure decides the verdict. Only ``KeyboardInterrupt`` (how a reader stops a slow
    function) gets through; a bare ``raise NotImplementedError`` (the stub) is "not done"."""
    if not callable(fn):
        return Verdict(exercise, "wrong", f"expected a function, got {type(fn).__name__}")
    n = 0
    for label, args in cases:
        n += 1
        try:
            out = fn(*[a.clone() if torch.is_tensor(a) else a for a in args])
        except NotImplementedError as e:
            if not e.args:  # the stub's own bare raise; one raised inside torch has a message
                return Verdict(exercise, "not done", "Replace raise NotImplementedError with your code and run the "
                                                     "cell again (in the chapter opened as a notebook: Colab, or "
                                                     "Jupyter on chapters/*.ipynb).")
            return Verdict(exercise, "wrong", f"on {label} it raised {_describe(e)}")
        except (Exception, SystemExit, GeneratorExit) as e:  # the reader's code crashed or exited: say how
            return Verdict(exercise, "wrong", f"on {label} it raised {_describe(e)}")
        try:
            judge(args, out)
        except _Wrong as e:
            return Verdict(exercise, "wrong", f"on {label}: {e}")
        except Exception as e:  # noqa: BLE001 - an output the checks cannot even handle (a sparse or meta tensor, …)
            return Verdict(exercise, "wrong", f"on {label}: checking your output raised {_describe(e)}; return what "
                                              f"the docstring asks for (a dense tensor on the CPU, a plain number)")
    return Verdict(exercise, "correct", f"{done} ({n} inputs checked).")


def _whole_number(out, what: str) -> int:
    """``out`` as an int if it is a whole number (an int, an integral float, or a one-element
    tensor or array holding one), else :class:`_Wrong`."""
    if hasattr(out, "shape") and hasattr(out, "item") and not isinstance(out, numbers.Number):
        if math.prod(out.shape) != 1:
            raise _Wrong(f"return one number of {what}, got an array of shape {tuple(out.shape)}")
        out = out.item()
    if isinstance(out, bool) or not isinstance(out, numbers.Real):
        raise _Wrong(f"return a whole number of {what} (an int), got {type(out).__name__}")
    if isinstance(out, numbers.Integral):
        return int(out)
    if not (math.isfinite(float(out)) and float(out).is_integer()):
        raise _Wrong(f"return a whole number of {what}, got {float(out)!r}")
    return int(out)


def _tensor(out, name: str, shape, dtype_kind: str = "float") -> torch.Tensor:
    if not torch.is_tensor(out):
        raise _Wrong(f"{name} should be a torch tensor, got {type(out).__name__}")
    if tuple(out.shape) != tuple(shape):
        raise _Wrong(f"{name} should have shape {tuple(shape)}, got {tuple(out.shape)}")
    if dtype_kind == "int" and (out.is_floating_point() or out.is_complex()):
        raise _Wrong(f"{name} should hold integer indices, got dtype {out.dtype}")
    if dtype_kind == "float" and not out.is_floating_point():
        raise _Wrong(f"{name} should be a float tensor, got dtype {out.dtype}")
    if dtype_kind == "float" and not torch.isfinite(out).all():
        raise _Wrong(f"{name} holds inf or NaN")
    return out


def _close(name: str, got: torch.Tensor, want: torch.Tensor, tol: float = 1e-5) -> None:
    err = (got.double() - want.double()).abs()
    scale = want.double().abs().max().clamp_min(1.0)
    if err.max() > tol * scale:
        i = tuple(int(j) for j in torch.unravel_index(torch.argmax(err), err.shape)) if err.ndim else ()
        raise _Wrong(f"{name}{list(i) if i else ''} is {float(got[i]):.6g}, expected {float(want[i]):.6g}")


def _pair(out, what: str):
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise _Wrong(f"return {what} (a pair), got {type(out).__name__}")
    return out


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def check_penalty_gradient(fn: Callable) -> Verdict:
    """Check ``fn(w, delta, lam, mu)``: the gradient over ``w`` of the augmented Lagrangian's
    penalty terms ``−λᵀ(w − Δ) + μ/2 ‖w − Δ‖²`` [P1, §4], i.e. ``μ(w − Δ) − λ``, which
    the L step adds to the loss gradient. Inputs: float64 ``w``, ``delta``, ``lam`` of one shape
    (``(6,)`` and ``(3, 4)``) and ``mu`` > 0; the output must have the shape of ``w``. The answer
    is autograd's gradient of the penalty.
    """
    cases = []
    for i, (shape, mu) in enumerate([((6,), 0.1), ((3, 4), 10.0), ((5,), 1.0)]):
        g = _gen(i)
        w, d, lam = (torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(3))
        if i == 2:
            lam = torch.zeros(shape, dtype=torch.float64)  # λ = 0: the quadratic-penalty method
        cases.append((f"w of shape {shape}, μ = {mu:g}" + (", λ = 0" if i == 2 else ""), (w, d, lam, mu)))

    def judge(args, out):
        w, d, lam, mu = args
        # the answer is autograd's, also when the reader's cell runs under no_grad or inference_mode
        with torch.inference_mode(False), torch.enable_grad():
            x, d0, l0 = w.clone().requires_grad_(True), d.clone(), lam.clone()
            (-(l0 * (x - d0)).sum() + mu / 2 * ((x - d0) ** 2).sum()).backward()
        _close("the gradient", _tensor(out, "the gradient", w.shape), x.grad)

    return _run("penalty_gradient", fn, cases, judge, "Your gradient equals autograd's μ(w − Δ) − λ")


def check_lloyd_step(fn: Callable) -> Verdict:
    """Check ``fn(x, codebook)`` → ``(assignments, new_codebook)``: one iteration of Lloyd's
    algorithm for 1-D k-means (the quantization C step, [P2, §3]): each value of ``x`` ``(N,)``
    to its nearest codebook entry (``assignments`` ``(N,)`` integer indices into ``codebook``),
    then each entry to the mean of the values assigned to it (an entry with no values keeps its
    value): ``new_codebook`` ``(K,)``. ``codebook`` is sorted, values are float64 with no ties.
    """
    cases = []
    for i, (n, k) in enumerate([(50, 2), (200, 4), (30, 3)]):
        g = _gen(10 + i)
        x = torch.randn(n, generator=g, dtype=torch.float64)
        c = torch.sort(torch.randn(k, generator=g, dtype=torch.float64)).values
        if i == 2:
            c[-1] = 100.0  # far from every value: an empty cluster that must keep its entry
        cases.append((f"N = {n}, K = {k}" + (" (one entry gets no values)" if i == 2 else ""), (x, c)))

    def judge(args, out):
        x, c = args
        a, new = _pair(out, "(assignments, new_codebook)")
        a = _tensor(a, "assignments", x.shape, "int").long()
        new = _tensor(new, "new_codebook", c.shape)
        want_a = torch.argmin((x[:, None] - c[None, :]).abs(), dim=1)
        wrong = torch.nonzero(a != want_a).flatten()
        if wrong.numel():
            j = int(wrong[0])
            raise _Wrong(f"x[{j}] = {float(x[j]):.4g} was assigned to entry {int(a[j])}, but entry {int(want_a[j])} "
                         f"(value {float(c[want_a[j]]):.4g}) is nearer")
        sums = torch.zeros_like(c).index_add_(0, want_a, x)
        counts = torch.bincount(want_a, minlength=len(c)).to(x.dtype)
        want = torch.where(counts > 0, sums / counts.clamp_min(1), c)
        _close("new_codebook", new, want)

    return _run("lloyd_step", fn, cases, judge, "Nearest-entry assignments and cluster means, as Lloyd's step")


def check_hard_threshold(fn: Callable) -> Verdict:
    """Check ``fn(w, alpha, mu)`` → Δ ``(N,)``: the exact C step of the ℓ0 penalty
    ``min_θ α‖θ‖₀ + μ/2 ‖w − θ‖²`` [CVPR18, §3, Table 1]: keep ``w_i`` where ``|w_i| > √(2α/μ)``,
    0 elsewhere. Inputs: float64 ``w`` ``(N,)``, α > 0, μ > 0. The answer is
    :class:`lcbook.compressions.PenaltyL0Pruning`'s C step.
    """
    cases = []
    for i, (n, alpha, mu) in enumerate([(40, 1e-3, 1e-2), (100, 1e-2, 1.0), (25, 0.5, 0.1)]):
        w = torch.randn(n, generator=_gen(20 + i), dtype=torch.float64)
        cases.append((f"N = {n}, α = {alpha:g}, μ = {mu:g}", (w, alpha, mu)))

    def judge(args, out):
        w, alpha, mu = args
        want = PenaltyL0Pruning(alpha).compress(w, mu=mu)[0]
        got = _tensor(out, "Δ", w.shape)
        kept, want_kept = int((got != 0).sum()), int((want != 0).sum())
        if kept != want_kept:
            raise _Wrong(f"you kept {kept} weights, the threshold √(2α/μ) = {math.sqrt(2 * alpha / mu):.4g} "
                         f"keeps {want_kept}")
        _close("Δ", got, want)

    return _run("hard_threshold", fn, cases, judge, "Δ keeps exactly the weights above √(2α/μ)")


def check_truncated_svd(fn: Callable) -> Verdict:
    """Check ``fn(W, r)`` → ``(U, V)``, ``U`` ``(m, r)`` and ``V`` ``(n, r)``, such that ``U Vᵀ``
    is a best rank-r approximation of ``W`` ``(m, n)`` (the low-rank C step [CVPR20, §3]): by
    Eckart–Young its squared error ``‖W − U Vᵀ‖²_F`` is the discarded energy ``Σ_{i>r} σᵢ²``.
    Any best factorisation passes (U Vᵀ is unique when σ_r > σ_{r+1}, not U and V). float64 input.
    """
    cases = []
    for i, (m, n, r) in enumerate([(8, 5, 2), (6, 10, 3), (7, 7, 1)]):
        cases.append((f"W of shape ({m}, {n}), r = {r}", (torch.randn(m, n, generator=_gen(30 + i), dtype=torch.float64), r)))

    def judge(args, out):
        w, r = args
        u, v = _pair(out, "(U, V)")
        u = _tensor(u, "U", (w.shape[0], r))
        v = _tensor(v, "V", (w.shape[1], r))
        s = torch.linalg.svdvals(w)
        want = float((s[r:] ** 2).sum())
        got = float(((w - u.double() @ v.double().T) ** 2).sum())
        if got > want * (1 + 1e-6) + 1e-9:
            raise _Wrong(f"‖W − U Vᵀ‖² is {got:.6g}; the best rank-{r} error (the discarded σᵢ²) is {want:.6g}")

    return _run("truncated_svd", fn, cases, judge, "U Vᵀ reaches the Eckart–Young error Σ_{i>r} σᵢ²")


def check_best_corrections(fn: Callable) -> Verdict:
    """Check ``fn(w, q, kappa)`` → ``s`` ``(N,)``: the sparse part of the additive C step for a
    fixed quantized part ``q`` [P5, §3]: ``min_s ‖w − q − s‖²`` s.t. ``‖s‖₀ ≤ κ``, solved by
    keeping the κ largest entries of the residual ``w − q``. Any optimal ``s`` passes: at most κ
    nonzeros and the optimal squared error (the sum of the N − κ smallest squared residuals).
    """
    cases = []
    for i, (n, k, kappa) in enumerate([(60, 2, 5), (200, 4, 1), (30, 2, 0), (50, 3, 8)]):
        g = _gen(40 + i)
        w = torch.randn(n, generator=g, dtype=torch.float64)
        levels = torch.linspace(-1, 1, k, dtype=torch.float64)
        if i < 3:  # q: each weight's nearest level
            q = levels[torch.argmin((w[:, None] - levels[None, :]).abs(), dim=1)]
        else:  # q: levels assigned at random (early in the alternation q need not fit w)
            q = levels[torch.randint(0, k, (n,), generator=g)]
        cases.append((f"N = {n}, κ = {kappa}" + (", q not the nearest levels" if i == 3 else ""), (w, q, kappa)))

    def judge(args, out):
        w, q, kappa = args
        s = _tensor(out, "s", w.shape)
        nnz = int((s != 0).sum())
        if nnz > kappa:
            raise _Wrong(f"s has {nnz} nonzeros, at most κ = {kappa} are allowed")
        r2 = torch.sort((w - q) ** 2).values
        want = float(r2[: len(r2) - kappa].sum())
        got = float(((w - q - s.double()) ** 2).sum())
        if got > want * (1 + 1e-9) + 1e-12:
            raise _Wrong(f"‖w − q − s‖² is {got:.6g}, the best κ corrections reach {want:.6g}")

    return _run("best_corrections", fn, cases, judge, "s keeps the κ largest residuals: the optimal corrections")


def check_gap_code_bits(fn: Callable) -> Verdict:
    """Check ``fn(indices)`` → int: the bits of a sparse vector stored by relative indexing with
    fixed-width gaps (Han et al., *Deep Compression*, ICLR 2016, §3; the package's
    :func:`lcbook.compressions.sparse_bits`): with ``g_i`` the gap from the previous kept position
    (the first from position −1), ``min over b in 1..32 of Σ_i ⌈g_i / 2^b⌉ · (b + 32)``.
    ``indices``: ``(κ,)`` sorted distinct int64 positions.
    """
    cases = [("κ = 1 at position 0", (torch.tensor([0]),)),
             ("κ = 4, gaps 1, 2, 4, 8", (torch.tensor([0, 2, 6, 14]),)),
             ("κ = 3 with a gap of 10,000", (torch.tensor([5, 6, 10_006]),))]
    g = _gen(50)
    cases.append(("κ = 300 of 100,000 random positions",
                  (torch.sort(torch.randperm(100_000, generator=g)[:300]).values,)))

    def judge(args, out):
        (idx,) = args
        out = _whole_number(out, "bits")
        want = sparse_bits(idx)
        if out != want:
            raise _Wrong(f"got {out} bits, expected {want}")

    return _run("gap_code_bits", fn, cases, judge, "Your count matches the package's gap code")


def check_low_rank_macs(fn: Callable) -> Verdict:
    """Check ``fn(m, n, r, positions)`` → int: the multiply-accumulates per example of a layer
    whose ``(m, n)`` weight matrix is kept at rank r, applied at ``positions`` output positions
    (1 for a linear layer, H_out·W_out for a conv). As two factors ``U`` ``(m, r)`` and ``Vᵀ``
    ``(r, n)`` it costs ``r·n`` (for ``Vᵀ x``) plus ``m·r`` (for ``U (Vᵀ x)``) per position; when
    that is more than the dense ``m·n``, the layer is kept dense (a rank that large saves
    nothing), so the count is ``positions · min(r(m + n), m·n)``. The answer is
    :meth:`lcbook.compressions.LowRank.macs`.
    """
    cases = [("a linear layer 10 × 64, r = 2", (10, 64, 2, 1)),
             ("a 3×3 conv 64 → 64 (n = 576) at 8×8 positions, r = 16", (64, 576, 16, 64)),
             ("a 3×3 conv 16 → 16 at 32×32 positions, r = 16", (16, 144, 16, 1024))]

    def judge(args, out):
        m, n, r, pos = args
        out = _whole_number(out, "MACs")
        want = LowRank(r).macs({"U": torch.zeros(m, r), "V": torch.zeros(r, n)}, positions=pos)
        if out != want:
            raise _Wrong(f"got {out:,} MACs, expected {want:,} (the dense layer needs {m * n * pos:,}; "
                         f"the factors {r * (m + n) * pos:,})")

    return _run("low_rank_macs", fn, cases, judge, "Your count matches the two factors' MACs")


def check_prune_then_quantize(fn: Callable) -> Verdict:
    """Check ``fn(w, kappa, k)`` → Δ ``(N,)``: the sequential pipeline (Han et al., *Deep
    Compression*, ICLR 2016): keep the κ largest ``|w_i|`` and set the rest to 0 (the ℓ0 C step),
    then quantize the κ kept values with the best K-level codebook (exact 1-D k-means,
    :func:`lcbook.compressions.optimal_quantization_1d`). Δ must keep exactly the top-κ positions,
    use at most K distinct values on them, and reach the optimal squared error on them.
    """
    cases = []
    for i, (n, kappa, k) in enumerate([(80, 20, 2), (200, 50, 4), (40, 3, 4)]):
        w = torch.randn(n, generator=_gen(60 + i), dtype=torch.float64)
        cases.append((f"N = {n}, κ = {kappa}, K = {k}", (w, kappa, k)))

    def judge(args, out):
        w, kappa, k = args
        d = _tensor(out, "Δ", w.shape)
        _, th = ConstraintL0Pruning(kappa=kappa).compress(w)
        support = torch.zeros(len(w), dtype=torch.bool)
        support[th["indices"]] = True
        if bool((d[~support] != 0).any()):
            j = int(torch.nonzero((d != 0) & ~support)[0])
            raise _Wrong(f"Δ[{j}] = {float(d[j]):.4g} is nonzero, but |w[{j}]| is not among the κ = {kappa} largest")
        distinct = torch.unique(d[support]).numel()
        if distinct > k:
            raise _Wrong(f"the kept weights take {distinct} distinct values, at most K = {k} are allowed")
        kept = w[support]
        code, a = optimal_quantization_1d(kept, k)
        want = float(((kept - code[a]) ** 2).sum())
        got = float(((kept - d[support].double()) ** 2).sum())
        if got > want * (1 + 1e-6) + 1e-9:
            raise _Wrong(f"the squared error on the kept weights is {got:.6g}, the best K = {k} codebook reaches {want:.6g}")

    return _run("prune_then_quantize", fn, cases, judge, "Top-κ support, then the optimal K-level codebook on it")
