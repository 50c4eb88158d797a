"""The profile switch (lcbook.profiles): read from the environment in one place, passed on explicitly."""

import pytest
import torch

import lcbook
from lcbook import profiles


def test_profile_switch(monkeypatch):
    monkeypatch.delenv("LCBOOK_PROFILE", raising=False)
    assert profiles.profile() == "quick"
    monkeypatch.setenv("LCBOOK_PROFILE", "full")
    assert profiles.profile() == "full"
    monkeypatch.setenv("LCBOOK_PROFILE", "cpu")
    assert profiles.profile() == "cpu"
    monkeypatch.setenv("LCBOOK_PROFILE", "fast")
    with pytest.raises(ValueError, match="LCBOOK_PROFILE must be 'quick', 'cpu' or 'full', got LCBOOK_PROFILE='fast'"):
        profiles.profile()


def test_choose_takes_the_profile_it_is_given(monkeypatch):
    monkeypatch.setenv("LCBOOK_PROFILE", "full")  # ignored: choose reads only its argument
    assert profiles.choose("quick", 1, 2) == 1 and profiles.choose("full", 1, 2) == 2
    assert profiles.choose("cpu", 1, 2) == 1 and profiles.choose("cpu", 1, 2, cpu=3) == 3
    with pytest.raises(ValueError, match="profile_name must be one of"):
        profiles.choose("fast", 1, 2)


def test_chapter_profile_falls_back_without_gpu(monkeypatch, capsys):
    monkeypatch.setenv("LCBOOK_PROFILE", "full")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert lcbook.chapter_profile() == "quick"
    assert "no CUDA GPU" in capsys.readouterr().out
    # the environment is read, never written: the chapter passes its PROFILE on
    assert lcbook.profile() == "full" and lcbook.choose(lcbook.chapter_profile(), 1, 2) == 1
    monkeypatch.setenv("LCBOOK_PROFILE", "full")
    assert lcbook.chapter_profile(needs_gpu=False) == "full"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert lcbook.chapter_profile() == "full"
    monkeypatch.setenv("LCBOOK_PROFILE", "quick")
    assert lcbook.chapter_profile() == "quick"
    monkeypatch.setenv("LCBOOK_PROFILE", "fast")
    with pytest.raises(ValueError, match="LCBOOK_PROFILE"):
        lcbook.chapter_profile()
