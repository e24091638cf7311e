"""The projection kernels shared by OVA-IB and GRAM (issue 23): the small tuple algebra on Gram entries that
both objectives build on, cut along its seams.

- :mod:`.factor`: per-row Gram matrices, Cholesky factors of the tuple Gram matrices (entry by entry for small k);
- :mod:`.layout`: cache blocks, coefficient layouts, kernel names, the multi-anchor inputs, profiler labels;
- :mod:`.fused`: the elementwise algebra as ``torch.compile``d kernels (``kernel="compiled"``);
- :mod:`.scores`: the OVA-IB projection score (score-only autograd Function, retrieval);
- :mod:`.pairs`: the one-vs-rest machinery of the fused sweeps (pair matmuls, tuple factors, backward);
- :mod:`.one_vs_all`: OVA-IB's fused one-vs-all sweep (loss and gradient of every anchor in one pass);
- :mod:`.volumes`: the GRAM volume (score-only autograd Function, retrieval);
- :mod:`.all_anchors`: GRAM's fused sweep over all anchors.

The losses (:class:`mmib.objectives.ova_ib.OVAIBLoss`, :class:`mmib.objectives.gram.GRAMLoss`) and their public
functions stay in :mod:`mmib.objectives.ova_ib` and :mod:`mmib.objectives.gram`.
"""
