"""Composite methods: they run other methods, chosen by capability flags, never by name."""
