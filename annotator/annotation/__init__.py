"""Annotators at work: their answers (annotate.py), the posts served to them, flags, adjudication, agreement."""
