"""The example recipes, shipped as package data (``corpusmill examples`` lists and copies them)."""
