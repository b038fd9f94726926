"""The musicnn extractor: the pretrained MSD_musicnn network's embeddings and tag scores, over numpy.

Modules: :mod:`.names` (feature names), :mod:`.extractor` (the pure feature functions),
:mod:`.network` (the forward pass), :mod:`.convolutions` (its front-end convolutions as matrix products),
:mod:`.weights` (the installed checkpoint, verified), :mod:`.checkpoint` (the tensor-bundle reader),
:mod:`.errors` (:class:`MusicnnError`).
Importing this package loads nothing heavy.
"""
