"""Keyword components of TribesLibrary; each is a small class sharing one LibraryContext."""
