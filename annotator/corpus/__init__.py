"""Posts in and out: projects, import (ingest.py and its readers), export and its datasheet."""
