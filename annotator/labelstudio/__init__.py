"""The Label Studio half of annotation: a generated labelling config, push of sampled batches as tasks with the
current model's predictions, idempotent pull of annotations, and a periodic sync job (docs/labelstudio.md)."""
