"""Each AlignZeg component's contract: MRPE, FES (Manifold Mixup), BDS, PBC."""

import pytest
import torch

from zsseg_bench.projects.alignzeg.gepc import ProposalClassifier, manifold_mixup, mask_pool
from zsseg_bench.projects.alignzeg.mrpe import MRPEDecoder
from zsseg_bench.projects.alignzeg.pbc import correct_seen_scores

pytestmark = pytest.mark.usefixtures("one_thread")


def _decoder(mutual: bool) -> MRPEDecoder:
    torch.manual_seed(0)
    return MRPEDecoder(feature_dim=16, num_queries=4, hidden_dim=16, nheads=2,
                       dim_feedforward=32, num_layers=2, dropout=0.0, mutual=mutual).eval()


def test_mrpe_updates_queries_and_features_and_fixed_decoder_does_not():
    features = torch.randn(2, 16, 6, 5)
    mutual, fixed = _decoder(True), _decoder(False)
    out = mutual(features)
    assert len(out) == 2
    states, masks, pixel = out[-1]
    assert states.shape == (2, 4, 16) and masks.shape == (2, 4, 6, 5)
    assert pixel.shape == (2, 16, 6, 5)
    assert not torch.allclose(pixel, features)  # features refined by the queries
    assert not torch.allclose(out[0][2], out[1][2])  # ... at every layer
    # the features depend on the queries: other query embeddings, other features
    with torch.no_grad():
        mutual.query_feat.weight.add_(1.0)
    assert not torch.allclose(mutual(features)[-1][2], pixel)
    # without MRPE the masks come from the fixed input features
    _, fixed_masks, fixed_pixel = fixed(features)[-1]
    assert torch.equal(fixed_pixel, features)
    assert fixed_masks.shape == masks.shape


def test_mixup_features_lie_between_their_sources_with_mixed_targets():
    torch.manual_seed(0)
    x = torch.randn(6, 8)
    pooled = torch.randn(6, 3)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    (mx, mp), soft, a, b = manifold_mixup([x, pooled], labels, num_classes=4, alpha=2.0,
                                          num_per_real=4)
    assert len(a) > 0 and bool((labels[a] != labels[b]).all())  # pairs of different classes
    lam = soft[torch.arange(len(a)), labels[a]]
    assert bool(((lam > 0) & (lam < 1)).all())
    torch.testing.assert_close(mx, lam[:, None] * x[a] + (1 - lam[:, None]) * x[b])
    torch.testing.assert_close(mp, lam[:, None] * pooled[a] + (1 - lam[:, None]) * pooled[b])
    torch.testing.assert_close(soft[torch.arange(len(a)), labels[b]], 1 - lam)
    torch.testing.assert_close(soft.sum(-1), torch.ones(len(a)))
    assert float(soft[:, 3].abs().max()) == 0.0  # no mass on a class not mixed
    # a single class: nothing to mix
    (none,), soft0, _, _ = manifold_mixup([x], torch.zeros(6, dtype=torch.long), 4, 2.0)
    assert none.shape == (0, 8) and soft0.shape == (0, 4)


def test_background_score_uses_every_prototype():
    torch.manual_seed(0)
    clf = ProposalClassifier(hidden_dim=8, embed_dim=6, embed_hidden_dim=16, embed_layers=2,
                             num_background=4, temperature=0.1, clip_pool=False)
    feats = torch.randn(3, 6)
    text = torch.nn.functional.normalize(torch.randn(5, 6), dim=-1)
    logits = clf.logits(feats, text)
    assert logits.shape == (3, 6)
    z = torch.nn.functional.normalize(feats, dim=-1)
    per_prototype = z @ torch.nn.functional.normalize(clf.background, dim=-1).T / 0.1
    torch.testing.assert_close(logits[:, -1], per_prototype.logsumexp(-1))
    for m in range(4):  # moving any one prototype changes the background score
        with torch.no_grad():
            clf.background[m].mul_(-1)
        assert not torch.allclose(clf.logits(feats, text)[:, -1], logits[:, -1])
        with torch.no_grad():
            clf.background[m].mul_(-1)
    clf.logits(feats, text)[:, -1].sum().backward()
    assert bool((clf.background.grad.abs().sum(-1) > 0).all())  # every prototype learns
    assert float(clf.background_regularisation().detach()) >= 0.0


def test_pbc_lowers_only_flagged_proposals_seen_scores():
    torch.manual_seed(0)
    probs = torch.rand(2, 3, 5)
    unseen_prob = torch.tensor([[0.9, 0.1, 0.6], [0.2, 0.8, 0.4]])
    is_seen = torch.tensor([True, True, False, True, False])
    out = correct_seen_scores(probs, unseen_prob, is_seen, threshold=0.5, factor=0.25)
    flagged = unseen_prob > 0.5
    torch.testing.assert_close(out[..., ~is_seen], probs[..., ~is_seen])  # unseen never touched
    torch.testing.assert_close(out[~flagged], probs[~flagged])  # unflagged never touched
    torch.testing.assert_close(out[flagged][:, is_seen], 0.25 * probs[flagged][:, is_seen])


def test_mask_pool_is_the_mask_weighted_mean():
    dense = torch.randn(1, 3, 2, 2)
    logits = torch.full((1, 1, 4, 4), -30.0)
    logits[..., :2, :2] = 30.0  # the top-left CLIP patch only
    torch.testing.assert_close(mask_pool(dense, logits)[0, 0], dense[0, :, 0, 0], atol=1e-5,
                               rtol=0)
