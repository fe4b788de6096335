"""Experiments on the study's labelled tweets: the others protocol with the fast model, the labelling simulation."""
