"""Text analysis shared by the quality filters: word splits (spaCy-compatible English, other
languages), the per-document cache of words/lines/paragraphs, n-gram duplicate counting and
language codes. One concept per module; see docs/filters.md for why and how they are measured."""
