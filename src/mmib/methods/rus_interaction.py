"""``synergy: interaction`` of :class:`~mmib.methods.rus.RUSMethod` (issue 20; ``docs/methods/rus.md``, "Synergy
objective"): Z_S is the functional-ANOVA (Hoeffding) interaction term of the synergy path g(x_a, x_b) — g minus its
means over partners of either modality. In training the partners come from K random in-batch derangements
(``synergy_partners``); at evaluation from a reference bank of R clean training inputs (``synergy_bank``), buffers
saved in the checkpoint, so that Z_S of a sample never depends on the rest of its batch.

A mixin: it uses the host's ``_synergy``, ``_tokens``, ``_hidden``, ``mods`` and ``generator``."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from mmib.data.spec import DatasetSpec
from mmib.errors import MMIBError
from mmib.methods.rus_options import RUSOptions
from mmib.objectives.rus import interaction_from_partners, interaction_with_reference, random_derangements


class InteractionSynergy:
    """The interaction term of :meth:`RUSMethod._synergy` against in-batch partners or the reference bank."""

    def _init_interaction(self, spec: DatasetSpec, o: RUSOptions) -> None:
        """``synergy: interaction``: check K and R, and register the reference bank (R clean training inputs of
        each modality, buffers saved in the checkpoint; ``syn_bank_count`` of them filled, ``syn_bank_next`` the
        ring position of the next write)."""
        if isinstance(o.synergy_partners, bool) or not isinstance(o.synergy_partners, int) or o.synergy_partners < 1:
            raise MMIBError(f"method 'rus': method.synergy_partners must be an integer >= 1 (the number of in-batch "
                            f"derangements for the partner means of synergy 'interaction'), got {o.synergy_partners!r}")
        if isinstance(o.synergy_bank, bool) or not isinstance(o.synergy_bank, int) or o.synergy_bank < 2:
            raise MMIBError(f"method 'rus': method.synergy_bank must be an integer >= 2 (the number of training inputs "
                            f"kept as the reference of synergy 'interaction'), got {o.synergy_bank!r}")
        self.partners = o.synergy_partners
        self.bank_size = o.synergy_bank
        for ms in spec.modalities:
            if not ms.name.isidentifier():
                raise MMIBError(f"method 'rus': synergy 'interaction' keeps a reference bank per modality, and the "
                                f"modality name '{ms.name}' is not an identifier")
            self.register_buffer(f"syn_bank_{ms.name}", torch.zeros(self.bank_size, *ms.shape))
        self.register_buffer("syn_bank_count", torch.zeros((), dtype=torch.long))
        self.register_buffer("syn_bank_next", torch.zeros((), dtype=torch.long))

    def _synergy_pairs(self, toks: Mapping[str, torch.Tensor], hidden: Mapping[str, torch.Tensor],
                       ia: torch.Tensor, ib: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
        """g(x_a[ia[p]], x_b[ib[p]]) for every pair p: the synergy path (:meth:`_synergy`) on the first modality of
        sample ia[p] with the second modality of sample ib[p], in chunks of ``chunk`` pairs."""
        a, b = self.mods
        outs = [self._synergy({a: toks[a][ia[s:s + chunk]], b: toks[b][ib[s:s + chunk]]},
                              {a: hidden[a][ia[s:s + chunk]], b: hidden[b][ib[s:s + chunk]]})
                for s in range(0, len(ia), chunk)]
        return torch.cat(outs)

    def _interaction_in_batch(self, toks: Mapping[str, torch.Tensor],
                              hidden: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Training estimate of the interaction term of g (:func:`~mmib.objectives.rus.interaction_from_partners`):
        partners from K random derangements of the batch (drawn from the augmentation generator), 1 + K passes."""
        a = self.mods[0]
        n = toks[a].shape[0]
        dev = toks[a].device
        perms = random_derangements(n, self.partners, self.generator).to(dev)
        diag = self._synergy(toks, hidden)
        rows = torch.arange(n, device=dev).repeat(self.partners)
        mism = self._synergy_pairs(toks, hidden, rows, perms.reshape(-1)).reshape(self.partners, n, -1)
        return interaction_from_partners(diag, mism, perms)

    def _interaction_with_bank(self, toks: Mapping[str, torch.Tensor],
                               hidden: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Evaluation value of the interaction term of g against the reference bank (R training inputs, their tokens
        recomputed with the current weights; :func:`~mmib.objectives.rus.interaction_with_reference`): Z_S of a
        sample depends on that sample and the bank only, never on the rest of the batch. 1 + 2R passes per sample
        plus R² for the bank."""
        count = int(self.syn_bank_count)
        if count == 0:
            raise MMIBError("method 'rus': synergy 'interaction' computes Z_S against a reference bank of training "
                            "inputs, and the bank is empty: train the model first (the bank is filled during "
                            "training and saved in its checkpoint)")
        bank_x = {m: getattr(self, f"syn_bank_{m}")[:count] for m in self.mods}
        btoks = self._tokens(bank_x, self.mods)
        bh = {m: self._hidden(btoks, m) for m in self.mods}
        n = toks[self.mods[0]].shape[0]
        dev = toks[self.mods[0]].device
        allt = {m: torch.cat([toks[m], btoks[m]]) for m in self.mods}
        allh = {m: torch.cat([hidden[m], bh[m]]) for m in self.mods}
        q = torch.arange(n, device=dev).repeat_interleave(count)
        r = n + torch.arange(count, device=dev).repeat(n)
        diag = self._synergy(toks, hidden)
        rows = self._synergy_pairs(allt, allh, q, r).reshape(n, count, -1)
        cols = self._synergy_pairs(allt, allh, r, q).reshape(n, count, -1)
        ri = n + torch.arange(count, device=dev).repeat_interleave(count)
        rj = n + torch.arange(count, device=dev).repeat(count)
        ref = self._synergy_pairs(allt, allh, ri, rj).reshape(count, count, -1)
        return interaction_with_reference(diag, rows, cols, ref)

    @torch.no_grad()
    def _fill_bank(self, x: Mapping[str, torch.Tensor]) -> None:
        """Write the clean inputs of a training batch into the reference bank (a ring of R samples)."""
        n = x[self.mods[0]].shape[0]
        take = min(n, self.bank_size)
        start = int(self.syn_bank_next)
        pos = (start + torch.arange(take)) % self.bank_size
        for m in self.mods:
            bank = getattr(self, f"syn_bank_{m}")
            bank[pos.to(bank.device)] = x[m][:take].detach().to(bank.dtype)
        self.syn_bank_next.fill_((start + take) % self.bank_size)
        self.syn_bank_count.fill_(min(self.bank_size, int(self.syn_bank_count) + take))
