"""Atomic files (lcbook._io)."""

import pytest
import torch

from lcbook import references


def test_atomic_save_leaves_no_partial_file(tmp_path):
    target = tmp_path / "x.pt"
    references.atomic_save({"a": torch.ones(3)}, target)

    class Bad:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(Exception):
        references.atomic_save({"a": Bad()}, target)
    assert torch.equal(torch.load(target, weights_only=True)["a"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]
