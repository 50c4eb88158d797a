"""The profile switch (lcbook.profiles)."""

import pytest

from lcbook import references


def test_profile_switch(monkeypatch):
    monkeypatch.delenv("LCBOOK_PROFILE", raising=False)
    assert references.profile() == "quick" and references.choose(1, 2) == 1
    monkeypatch.setenv("LCBOOK_PROFILE", "full")
    assert references.profile() == "full" and references.choose(1, 2) == 2
    monkeypatch.setenv("LCBOOK_PROFILE", "cpu")
    assert references.profile() == "cpu" and references.choose(1, 2) == 1 and references.choose(1, 2, cpu=3) == 3
    monkeypatch.setenv("LCBOOK_PROFILE", "fast")
    with pytest.raises(ValueError, match="LCBOOK_PROFILE must be 'quick', 'cpu' or 'full', got LCBOOK_PROFILE='fast'"):
        references.profile()
