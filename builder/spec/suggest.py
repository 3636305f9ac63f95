"""'Did you mean ...?' hints for misspelt names (keys, model names)."""

import difflib


def nearest(word, choices):
    """Return the choice closest to ``word``, or None when nothing is close enough."""
    matches = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(word, choices):
    """A sentence to append to a message: " Did you mean 'x'?" or ""."""
    match = nearest(word, choices)
    return " Did you mean '{}'?".format(match) if match else ""
