"""The exercise checks accept right answers, refuse the usual wrong ones, and never raise."""

import math

import pytest
import torch

from lcbook import exercises as ex
from lcbook.compressions import optimal_quantization_1d


def test_penalty_gradient():
    assert ex.check_penalty_gradient(lambda w, d, lam, mu: mu * (w - d) - lam).ok
    v = ex.check_penalty_gradient(lambda w, d, lam, mu: mu * (w - d))  # forgot λ
    assert v.status == "wrong" and "shape (6,)" in v.message
    v = ex.check_penalty_gradient(lambda w, d, lam, mu: (mu * (w - d) - lam).sum())
    assert v.status == "wrong" and "shape" in v.message


def lloyd(x, c):
    a = torch.argmin((x[:, None] - c[None, :]).abs(), dim=1)
    new = c.clone()
    for j in range(len(c)):
        if (a == j).any():
            new[j] = x[a == j].mean()
    return a, new


def test_lloyd_step():
    assert ex.check_lloyd_step(lloyd).ok
    # An empty cluster set to 0 instead of keeping its entry: wrong on the third input only.
    def empty_to_zero(x, c):
        a, new = lloyd(x, c)
        counts = torch.bincount(a, minlength=len(c))
        return a, torch.where(counts > 0, new, torch.zeros_like(new))
    v = ex.check_lloyd_step(empty_to_zero)
    assert v.status == "wrong" and "gets no values" in v.message
    v = ex.check_lloyd_step(lambda x, c: (torch.argmax((x[:, None] - c[None, :]).abs(), dim=1), c))
    assert v.status == "wrong" and "nearer" in v.message
    assert ex.check_lloyd_step(lambda x, c: lloyd(x, c)[1]).status == "wrong"  # not a pair


def test_hard_threshold():
    assert ex.check_hard_threshold(lambda w, a, mu: torch.where(w.abs() > math.sqrt(2 * a / mu), w, 0 * w)).ok
    v = ex.check_hard_threshold(lambda w, a, mu: torch.where(w.abs() > a / mu, w, 0 * w))  # the ℓ1 threshold
    assert v.status == "wrong" and "keeps" in v.message


def test_truncated_svd():
    def svd(w, r):
        u, s, vh = torch.linalg.svd(w, full_matrices=False)
        return u[:, :r] * s[:r], vh[:r].T
    assert ex.check_truncated_svd(svd).ok
    # Any best factorisation passes: U with orthonormal columns and V scaled instead.
    def other(w, r):
        u, s, vh = torch.linalg.svd(w, full_matrices=False)
        return -u[:, :r], -(vh[:r].T * s[:r])
    assert ex.check_truncated_svd(other).ok
    v = ex.check_truncated_svd(lambda w, r: (torch.linalg.svd(w, full_matrices=False)[0][:, :r],
                                             torch.linalg.svd(w, full_matrices=False)[2][:r].T))  # forgot σ
    assert v.status == "wrong" and "Eckart" not in v.message and "best rank" in v.message
    v = ex.check_truncated_svd(lambda w, r: (torch.zeros(w.shape[0], r, dtype=w.dtype), torch.zeros(r, w.shape[1], dtype=w.dtype)))
    assert v.status == "wrong" and "V should have shape" in v.message


def corrections(w, q, kappa):
    r = w - q
    s = torch.zeros_like(w)
    if kappa:
        i = torch.topk(r.abs(), kappa).indices
        s[i] = r[i]
    return s


def test_best_corrections():
    assert ex.check_best_corrections(corrections).ok
    v = ex.check_best_corrections(lambda w, q, kappa: corrections(w, q, kappa + 1))
    assert v.status == "wrong" and "nonzeros" in v.message
    def largest_weights(w, q, kappa):  # corrects the largest |w|, not the largest residuals
        s = torch.zeros_like(w)
        if kappa:
            i = torch.topk(w.abs(), kappa).indices
            s[i] = (w - q)[i]
        return s
    v = ex.check_best_corrections(largest_weights)
    assert v.status == "wrong" and "best κ corrections" in v.message


def gap_bits(idx):
    gaps = torch.diff(idx, prepend=torch.tensor([-1]))
    return min(int(sum(math.ceil(int(g) / 2**b) for g in gaps)) * (b + 32) for b in range(1, 33))


def test_gap_code_bits():
    assert ex.check_gap_code_bits(gap_bits).ok
    assert ex.check_gap_code_bits(lambda idx: torch.tensor(gap_bits(idx))).ok  # a 0-d tensor is a number too
    v = ex.check_gap_code_bits(lambda idx: len(idx) * (32 + math.ceil(math.log2(100_000))))  # plain indices
    assert v.status == "wrong" and "expected" in v.message
    assert ex.check_gap_code_bits(lambda idx: float(gap_bits(idx)) + 0.5).status == "wrong"
    assert ex.check_gap_code_bits(lambda idx: True).status == "wrong"


def test_low_rank_macs():
    assert ex.check_low_rank_macs(lambda m, n, r, p: p * min(r * (m + n), m * n)).ok
    v = ex.check_low_rank_macs(lambda m, n, r, p: p * r * (m + n))  # forgot that a large rank stays dense
    assert v.status == "wrong" and "the factors" in v.message
    v = ex.check_low_rank_macs(lambda m, n, r, p: min(r * (m + n), m * n))  # forgot the positions
    assert v.status == "wrong" and "dense layer" in v.message


def ptq(w, kappa, k):
    d = torch.zeros_like(w)
    i = torch.topk(w.abs(), kappa).indices
    code, a = optimal_quantization_1d(w[i], k)
    d[i] = code[a]
    return d


def test_prune_then_quantize():
    assert ex.check_prune_then_quantize(ptq).ok
    def quantize_all_then_prune(w, kappa, k):
        code, a = optimal_quantization_1d(w, k)
        q = code[a]
        d = torch.zeros_like(w)
        i = torch.topk(w.abs(), kappa).indices
        d[i] = q[i]
        return d
    v = ex.check_prune_then_quantize(quantize_all_then_prune)
    assert v.status == "wrong" and ("squared error" in v.message or "distinct" in v.message)
    v = ex.check_prune_then_quantize(lambda w, kappa, k: w.clone())
    assert v.status == "wrong" and "nonzero" in v.message


@pytest.mark.parametrize("check", [getattr(ex, n) for n in ex.__all__ if n.startswith("check_")])
def test_every_check_says_not_done_wrong_or_correct_and_never_raises(check):
    def todo(*args):
        raise NotImplementedError
    assert check(todo).status == "not done"
    v = check(lambda *args: 1 / 0)
    assert v.status == "wrong" and "ZeroDivisionError" in v.message
    assert check(None).status == "wrong" and "function" in check(None).message
    assert check(lambda *args: None).status == "wrong"
    assert not check(todo).ok


def test_the_reader_gets_fresh_inputs_every_call():
    """A function that modifies its input in place cannot change the next case or the answer."""
    def in_place(w, d, lam, mu):
        g = mu * (w - d) - lam
        w.zero_(); d.zero_(); lam.zero_()
        return g
    assert ex.check_penalty_gradient(in_place).ok


def test_verdict_renders_and_validates():
    v = ex.check_low_rank_macs(lambda m, n, r, p: p * min(r * (m + n), m * n))
    assert str(v).startswith("low_rank_macs: ✓ correct.") and "inputs checked" in str(v)
    page = ex.Verdict("x", "wrong", "on input 1: <script>alert(1)</script>").html()
    assert "<script>" not in page and "&lt;script&gt;" in page
    with pytest.raises(ValueError, match="status must be one of"):
        ex.Verdict("x", "maybe", "")


def test_outputs_the_checks_cannot_handle_are_wrong_answers_not_crashes():
    class Weird(int):
        def __ne__(self, other):
            raise ZeroDivisionError

    class Unprintable:
        def __repr__(self):
            raise RuntimeError("no repr")

    class BadMessage(Exception):
        def __str__(self):
            raise ZeroDivisionError

    def raises_bad_message(*args):
        raise BadMessage()

    cases = [(ex.check_best_corrections, lambda w, q, k: torch.zeros_like(w).to_sparse()),
             (ex.check_penalty_gradient, lambda w, *a: torch.empty_like(w, device="meta")),
             (ex.check_gap_code_bits, lambda i: Weird(33)),
             (ex.check_gap_code_bits, lambda i: Unprintable()),
             (ex.check_penalty_gradient, raises_bad_message)]
    for check, fn in cases:
        v = check(fn)
        assert v.status == "wrong", (check.__name__, v)
    assert "could not be printed" in ex.check_penalty_gradient(raises_bad_message).message


def test_whole_numbers_of_any_common_type_are_accepted_by_both_counting_checks():
    import numpy as np
    for wrap in (int, np.int64, float, np.float64, lambda v: torch.tensor(v), lambda v: torch.tensor(float(v)),
                 lambda v: np.array(v), lambda v: torch.tensor([v])):
        assert ex.check_gap_code_bits(lambda idx: wrap(gap_bits(idx))).ok, wrap
        assert ex.check_low_rank_macs(lambda m, n, r, p: wrap(p * min(r * (m + n), m * n))).ok, wrap
    assert "shape" in ex.check_gap_code_bits(lambda idx: torch.tensor([gap_bits(idx)] * 2)).message


def test_checks_work_under_no_grad_and_exits_are_wrong_answers():
    right = lambda w, d, lam, mu: mu * (w - d) - lam  # noqa: E731
    with torch.no_grad():
        assert ex.check_penalty_gradient(right).ok
    with torch.inference_mode():
        assert ex.check_penalty_gradient(right).ok
    def exits(*args):
        raise SystemExit(3)
    assert ex.check_penalty_gradient(exits).status == "wrong"
    def interrupted(*args):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):  # how a reader stops a slow function: not swallowed
        ex.check_penalty_gradient(interrupted)
    def torch_not_implemented(w, q, k):
        return (w.to_sparse() != 0).float()  # torch raises NotImplementedError with a message
    assert ex.check_best_corrections(torch_not_implemented).status == "wrong"
    with pytest.raises(TypeError, match="message must be a string"):
        ex.Verdict("x", "wrong", None)
