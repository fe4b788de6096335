"""Which posts to label next: the sampler, its strategies and the project's sampling settings."""
