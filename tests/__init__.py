"""The test suite (a package, so `tests.helpers` is ours and not the `tests` package flair installs)."""
