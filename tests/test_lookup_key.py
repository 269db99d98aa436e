"""The look-up key: made once, kept beside the ledger, so codes and site bytes survive a rebuild."""

from __future__ import annotations

import pytest

from scoring.errors import InputError
from scoring.ledger import get_state, memory_db, set_state
from scoring.publish import KEY_FILE, lookup_secret


def test_a_rebuilt_ledger_finds_the_same_key(tmp_path):
    """Found in review: each new database drew a new random key, so rebuilding the
    ledger from the same inputs changed every resident's code and every look-up file."""
    private = tmp_path / "private"
    first = lookup_secret(memory_db(), private)
    assert (private / KEY_FILE).read_text().strip() == first.hex()
    assert (private / KEY_FILE).stat().st_mode & 0o077 == 0  # private to its owner
    rebuilt = memory_db()
    assert lookup_secret(rebuilt, private) == first
    assert get_state(rebuilt, "lookup_secret") == first.hex()


def test_a_ledger_made_before_the_key_file_keeps_its_key(tmp_path):
    db = memory_db()
    set_state(db, "lookup_secret", "ab" * 32)
    assert lookup_secret(db, tmp_path / "private") == bytes.fromhex("ab" * 32)
    assert (tmp_path / "private" / KEY_FILE).read_text().strip() == "ab" * 32


def test_a_damaged_key_file_is_an_error_that_says_what_to_do(tmp_path):
    (tmp_path / KEY_FILE).write_text("not a key\n")
    with pytest.raises(InputError, match="not a look-up key .* restore it from a backup"):
        lookup_secret(memory_db(), tmp_path)


def test_a_key_file_of_another_ledger_is_refused_not_adopted(tmp_path):
    """Found in review: a trial ledger publishing first beside the production one
    wrote its key, which then silently replaced production's (every code handed
    out would stop working)."""
    production = memory_db()
    set_state(production, "lookup_secret", "aa" * 32)  # published before the key file
    lookup_secret(memory_db(), tmp_path)  # a trial ledger in the same folder: its own key
    with pytest.raises(InputError, match="not the look-up key this ledger published with"):
        lookup_secret(production, tmp_path)
    assert get_state(production, "lookup_secret") == "aa" * 32


def test_the_key_is_never_written_inside_the_site(tmp_path):
    site = tmp_path / "site"
    with pytest.raises(InputError, match="inside the site folder"):
        lookup_secret(memory_db(), site / "private", site)
    assert not (site / "private" / KEY_FILE).exists()


def test_the_key_file_is_private_from_the_start(tmp_path, monkeypatch):
    import os

    from scoring.publish import write_key

    seen = []
    real_open = os.open
    monkeypatch.setattr(
        os, "open", lambda *a: seen.append((a[1], a[2] if len(a) > 2 else None)) or real_open(*a)
    )
    write_key(tmp_path / KEY_FILE, "cd" * 32)
    # every file it creates is 0600 from its creation (it also opens the folder, to fsync it)
    assert [mode for flags, mode in seen if flags & os.O_CREAT] == [0o600]
    assert (tmp_path / KEY_FILE).stat().st_mode & 0o777 == 0o600
