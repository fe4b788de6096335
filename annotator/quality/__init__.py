"""Labels a researcher can trust: control posts, qualification rounds, guidelines per language, and excluding
an annotator's labels. The aggregation itself (the reliability model) lives in core/reliability.py and
db/consensus.py, since the worker trains on it too."""
